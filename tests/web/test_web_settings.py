"""The settings page and ``iort serve --dicom-settings`` (issue 16): the DICOM settings and the
department device data in effect, shown to any logged-in user, never edited on the page."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pydicom
import pytest
from fastapi.testclient import TestClient
from web_testkit import (
    DEPARTMENT_SOURCE,
    REPO,
    DemoPlan,
    api_client,
    build_app,
    seed_case,
    seed_plan,
)

from openiort.web.config import WebConfigError

DEPARTMENT_HDR = REPO / "tests" / "data" / "department_hdr_source" / "source.yaml"
SETTINGS_YAML = """\
organisation_uid_root: "1.2.826.0.1.3680043.10.999"
institution_name: "City Hospital"
department_name: "Radiation Oncology"
station_name: "IORT-PLAN-1"
treatment_machines:
  xray: "INTRABEAM 1"
"""


@pytest.fixture
def settings_file(tmp_path: Path) -> Path:
    path = tmp_path / "dicom.yaml"
    path.write_text(SETTINGS_YAML, "utf-8")
    return path


def test_settings_page_shows_dicom_settings_and_device_data(
    tmp_path: Path, demo_plan: DemoPlan, settings_file: Path
) -> None:
    app = build_app(
        tmp_path / "web",
        demo_plan,
        dicom_settings=settings_file,
        xray_source_data=DEPARTMENT_SOURCE,
    )
    with TestClient(app):
        client = api_client(app, "view")  # any logged-in user, the viewer included
        page = client.get("/settings")
        assert page.status_code == 200
        text = page.text
        for shown in (
            str(settings_file),
            "1.2.826.0.1.3680043.10.999",
            "City Hospital",
            "Radiation Oncology",
            "IORT-PLAN-1",
            "INTRABEAM 1",
            str(DEPARTMENT_SOURCE),
            'href="/settings" aria-current="page"',
        ):
            assert shown in text, shown
        # no example x-ray source; the electron machine and HDR source are the examples
        assert text.count("example: plans cannot be approved") == 2
        assert "<form" not in text.split("<main>")[1].split("</main>")[0]  # shows, never edits
        # anonymous: to the login page
        anonymous = TestClient(app).get("/settings", follow_redirects=False)
        assert anonymous.status_code == 303
        assert anonymous.headers["location"].startswith("/login")


def test_settings_page_defaults_and_hdr_record(tmp_path: Path, demo_plan: DemoPlan) -> None:
    if not DEPARTMENT_HDR.is_file():
        pytest.skip("no department HDR source record in tests/data")
    app = build_app(tmp_path / "web", demo_plan, hdr_source_data=DEPARTMENT_HDR)
    with TestClient(app):
        text = api_client(app, "phys").get("/settings").text
    assert "defaults" in text
    assert "none: 2.25 UUID-derived UIDs" in text
    assert "HDR source (current)" in text
    assert str(DEPARTMENT_HDR) in text


def test_dicom_download_uses_the_servers_settings(
    tmp_path: Path, demo_plan: DemoPlan, settings_file: Path
) -> None:
    app = build_app(tmp_path / "web", demo_plan, dicom_settings=settings_file)
    with TestClient(app):
        case_id = seed_case(app, demo_plan.case_data)
        plan_id = seed_plan(app, demo_plan, case_id)
        r = api_client(app, "phys").get(f"/plans/{plan_id}/dicom.zip")
        assert r.status_code == 200
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        rp = pydicom.dcmread(io.BytesIO(zf.read("dicom/RP.dcm")))
    assert rp.SOPInstanceUID.startswith("1.2.826.0.1.3680043.10.999.")
    assert rp.InstitutionName == "City Hospital"


def test_bad_settings_file_refused_at_start(tmp_path: Path, demo_plan: DemoPlan) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text('organisation_uid_root: "1.02.x"\n', "utf-8")
    with pytest.raises(WebConfigError, match="organisation_uid_root"):
        build_app(tmp_path / "web", demo_plan, dicom_settings=bad)


def test_settings_from_the_environment_and_serve_option(
    tmp_path: Path,
    demo_plan: DemoPlan,
    settings_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from openiort.cli import app as cli

    monkeypatch.setenv("OPENIORT_DICOM_SETTINGS", str(settings_file))
    app = build_app(tmp_path / "web", demo_plan)
    with TestClient(app):
        text = api_client(app, "surg").get("/settings").text
    assert str(settings_file) in text and "City Hospital" in text
    help_text = CliRunner().invoke(cli, ["serve", "--help"], env={"COLUMNS": "200"}).output
    assert "--dicom-settings" in help_text
