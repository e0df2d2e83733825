"""Files derived from a sealed plan are hashed when made and checked before they are served:
a replaced cached PDF is made again from the checked sources, a scaled viewer dose array is
refused (issue 17, item 2)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from fastapi import FastAPI
from web_testkit import DemoPlan, api_client, seed_case, seed_plan, web_of

from openiort.report.pdf import TreatmentChart, print_html
from openiort.web import downloads
from openiort.web.artifacts import MANIFEST_NAME, PlanFiles, PlanFilesError


def _replace(path: Path, data: bytes) -> None:
    """Write a new file over ``path`` (the seeded files are hard links shared by the tests)."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def test_a_replaced_cached_pdf_is_not_served(
    app: FastAPI, demo_plan: DemoPlan, monkeypatch: pytest.MonkeyPatch
) -> None:
    printed: list[str] = []

    def fake_print(report_html: str, chart: TreatmentChart | None = None) -> bytes:
        printed.append("made")
        return print_html(report_html, chart).encode("utf-8")

    monkeypatch.setattr(downloads, "html_report_to_pdf", fake_print)
    plan_id = seed_plan(app, demo_plan, seed_case(app, demo_plan.case_data), "approved")
    client = api_client(app, "view")
    genuine = client.get(f"/plans/{plan_id}/report.pdf").content
    (cached,) = (web_of(app).files.plan_dir(plan_id) / "cache").glob("report-*.pdf")
    _replace(cached, b"%PDF-1.7 a forged approved report")
    served = client.get(f"/plans/{plan_id}/report.pdf").content
    assert served == genuine and printed == ["made", "made"]


def test_a_scaled_viewer_dose_array_is_refused(app: FastAPI, demo_plan: DemoPlan) -> None:
    plan_id = seed_plan(app, demo_plan, seed_case(app, demo_plan.case_data), "approved")
    client = api_client(app, "view")
    assert client.get(f"/plans/{plan_id}").status_code == 200  # manifest made at first use
    dose_file = web_of(app).files.plan_dir(plan_id) / "viewer" / "dose_gy.npy"
    scaled = np.load(dose_file) * np.float32(0.1)
    buffer = io.BytesIO()
    np.save(buffer, scaled, allow_pickle=False)
    _replace(dose_file, buffer.getvalue())
    page = client.get(f"/plans/{plan_id}")
    assert page.status_code == 409
    assert "viewer/dose_gy.npy on disk does not match" in page.text
    # Signing the altered file into the manifest needs the seal key.
    manifest = dose_file.parent.parent / MANIFEST_NAME
    text = manifest.read_text().replace('"viewer/dose_gy.npy": "', '"viewer/dose_gy.npy": "0')
    manifest.write_text(text)
    page = client.get(f"/plans/{plan_id}")
    assert page.status_code == 409 and "signed list of its files was altered" in page.text


def test_cached_files_are_recorded_and_remade_when_changed(tmp_path: Path) -> None:
    files = PlanFiles(tmp_path, key=b"k" * 32)
    files.plan_dir(7).mkdir()
    made: list[int] = []

    def make(path: Path) -> None:
        made.append(1)
        path.write_bytes(b"derived")

    path = files.cached(7, "x.zip", make)
    assert files.manifest(7) == {"cache/x.zip": files.manifest(7)["cache/x.zip"]}  # type: ignore[index]
    assert files.cached(7, "x.zip", make) == path and len(made) == 1
    _replace(path, b"forged")
    assert files.cached(7, "x.zip", make).read_bytes() == b"derived" and len(made) == 2
    with pytest.raises(PlanFilesError, match="is missing"):
        files.verify_files(7, ["nothing.npy"])
