"""The web app's building blocks: case form, rate limiter, sessions, safe logging, DVH plot,
dose slices, PDF printing, and the ``serve`` command."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import io
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import pypdf
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner
from web_testkit import DemoPlan

from openiort.case import Case, implausible_values, parse_case
from openiort.delivery import HdrDelivery, HdrDwell, XrayDelivery
from openiort.report.html import render_report
from openiort.report.pdf import (
    ChartPatient,
    ChartStep,
    PdfError,
    TreatmentChart,
    case_chart,
    html_report_to_pdf,
    print_html,
    report_pdf,
)
from openiort.web import caseform, commands
from openiort.web.auth import safe_next
from openiort.web.config import WebConfig, WebConfigError, session_secret
from openiort.web.dvhplot import dvh_svg, nice_step
from openiort.web.formatting import audit_text, verdict_class
from openiort.web.ratelimit import LoginRateLimiter
from openiort.web.safelog import code_locations
from openiort.web.sessions import SessionData, SessionManager, same_origin, tokens_match
from openiort.web.slices import AXES, ViewerError, load_viewer, render_slice_png

# ------------------------------------------------------------------------ case form


def test_case_form_covers_every_case_field() -> None:
    def leaves(model: Any, prefix: str) -> set[str]:
        names = set()
        for name in model.model_fields:
            names.add(f"{prefix}.{name}")
        return names

    expected: set[str] = set()
    for block, _, _ in caseform.BLOCKS:
        expected |= leaves(caseform._block_model(block), block)
    assert set(caseform.FIELDS) == expected
    assert set(caseform.FIELDS) >= {"patient.id", "anatomy.cavity_diameter_mm", "intent.technique"}


def test_case_form_round_trip(demo_plan: DemoPlan) -> None:
    values = caseform.case_data_to_form(demo_plan.case_data)
    data, problems = caseform.read_form(values)
    assert problems == []
    assert parse_case(data) == demo_plan.case


def test_case_form_limits_from_the_model() -> None:
    f = caseform.FIELDS["anatomy.cavity_diameter_mm"]
    assert (f.kind, f.minimum, f.maximum, f.unit) == ("number", 10.0, 80.0, "mm")
    assert caseform.FIELDS["intent.technique"].required
    assert caseform.FIELDS["patient.brca_mutation"].options == (("true", "yes"), ("false", "no"))
    assert caseform.FIELDS["anatomy.cavity_centre_mm"].value_type == "vector"


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("patient.age_years", "62.5", "not a whole number"),
        ("anatomy.skin_distance_mm", "ten", "not a number"),
        ("anatomy.skin_distance_mm", "nan", "not a finite number"),
        ("patient.brca_mutation", "maybe", "choose yes, no"),
        ("anatomy.cavity_centre_mm", "1, 2", "give 3 numbers"),
    ],
)
def test_case_form_unreadable_values(name: str, raw: str, message: str) -> None:
    data, problems = caseform.read_form({"patient.id": "X", "intent.technique": "xray", name: raw})
    assert len(problems) == 1 and problems[0].startswith(f"{name}: ") and message in problems[0]
    block, key = name.split(".")
    assert key not in data.get(block, {})


def test_confirmation_of_implausible_values(demo_plan: DemoPlan) -> None:
    data = copy.deepcopy(demo_plan.case_data)
    data["anatomy"]["skin_distance_mm"] = 0.5
    found = implausible_values(parse_case(data))
    assert caseform.confirmation([]) is None
    box = caseform.confirmation(found)
    assert box is not None and box["token"] == "anatomy.skin_distance_mm=0.5"
    assert not caseform.confirmed({}, found)
    assert not caseform.confirmed({caseform.CONFIRM_FIELD: "anatomy.skin_distance_mm=0.4"}, found)
    assert caseform.confirmed({caseform.CONFIRM_FIELD: box["token"]}, found)
    assert not caseform.confirmed({caseform.CONFIRM_FIELD: ""}, [])
    problem = caseform.unconfirmed_problem(found[0])
    by_field, general = caseform.problems_by_field([problem])
    assert set(by_field) == {"anatomy.skin_distance_mm"} and general == []


def test_problems_by_field() -> None:
    by_field, general = caseform.problems_by_field(
        ["anatomy.cavity_diameter_mm: too big", "intent: bad combination", "weird"]
    )
    assert by_field == {"anatomy.cavity_diameter_mm": ["too big"]}
    assert general == ["intent: bad combination", "weird"]


# ------------------------------------------------------------------------ rate limiting


def test_rate_limiter_window() -> None:
    limiter = LoginRateLimiter(max_failures=3, window_s=60.0)
    for t in (0.0, 1.0, 2.0):
        assert limiter.retry_after_s("alice", "1.2.3.4", now=t) == 0
        limiter.failed("alice", "1.2.3.4", now=t)
    # Blocked until the oldest of the last 3 failures (t = 0) is 60 s old.
    assert limiter.retry_after_s("alice", "9.9.9.9", now=10.0) == 50
    assert limiter.retry_after_s("bob", "1.2.3.4", now=10.0) == 50  # same address
    assert limiter.retry_after_s("bob", "5.6.7.8", now=10.0) == 0
    assert limiter.retry_after_s("ALICE ", "9.9.9.9", now=10.0) == 50  # usernames fold case
    assert limiter.retry_after_s("alice", "9.9.9.9", now=60.5) == 0
    limiter.failed("carol", "7.7.7.7", now=0.0)
    limiter.succeeded("carol")
    assert "user:carol" not in limiter._failures


def test_rate_limiter_memory_is_bounded() -> None:
    limiter = LoginRateLimiter(max_failures=3, window_s=60.0, max_keys=10)
    for i in range(100):
        limiter.failed(f"user{i}", f"10.0.0.{i}", now=0.0)
    assert len(limiter._failures) <= 10


# ------------------------------------------------------------------------ sessions


def test_session_payload_round_trip_and_rejects() -> None:
    data = SessionData.fresh(100.0)
    assert SessionData.from_payload(data.to_payload()) == data
    assert SessionData.from_payload({"s": "x"}) is None
    assert SessionData.from_payload("junk") is None
    assert data.sid != SessionData.fresh(100.0).sid  # random ids


def test_tokens_and_origins() -> None:
    assert tokens_match("abc", "abc") and not tokens_match("abc", "abd")
    assert not tokens_match("abc", None)

    class R:
        def __init__(self, headers: dict[str, str]) -> None:
            self.headers = headers

    host = {"host": "127.0.0.1:8000"}
    assert same_origin(R(host))  # type: ignore[arg-type]  # no Origin: same-site browser or a client
    assert same_origin(R({**host, "origin": "http://127.0.0.1:8000"}))  # type: ignore[arg-type]
    assert not same_origin(R({**host, "origin": "http://127.0.0.1:8001"}))  # type: ignore[arg-type]
    assert not same_origin(R({**host, "origin": "null"}))  # type: ignore[arg-type]
    assert same_origin(R({**host, "origin": "null", "referer": "https://127.0.0.1:8000/x"}))  # type: ignore[arg-type]
    assert not same_origin(R({**host, "referer": "https://evil.example/127.0.0.1:8000"}))  # type: ignore[arg-type]


def test_session_manager_timeouts() -> None:
    manager = SessionManager(b"s" * 32, max_age_s=100, idle_s=10, secure=None)
    data = manager.login(7, now=1000.0)
    assert data.user_id == 7 and data.login_at == 1000.0
    touched = manager.touched(data, 1005.0)
    assert manager.needs_touch(data, 1000.0 + 61) and not manager.needs_touch(data, 1001.0)
    assert touched.seen_at == 1005.0


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/cases/3", "/cases/3"),
        ("//evil.example/x", "/cases"),
        ("https://evil.example/", "/cases"),
        ("/\\evil", "/cases"),
        ("", "/cases"),
        ("/ok\n", "/cases"),
    ],
)
def test_safe_next(path: str, expected: str) -> None:
    assert safe_next(path) == expected


def test_config_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(WebConfigError, match="at least 32 bytes"):
        WebConfig(files_dir=tmp_path, session_secret=b"short")
    with pytest.raises(WebConfigError, match="plan_workers"):
        WebConfig(files_dir=tmp_path, session_secret=b"s" * 32, plan_workers=0)
    monkeypatch.delenv("OPENIORT_SESSION_SECRET", raising=False)
    key = session_secret(tmp_path)
    assert len(key) == 32 and session_secret(tmp_path) == key  # created once, then reused
    assert (tmp_path / "session.key").stat().st_mode & 0o077 == 0
    (tmp_path / "session.key").chmod(0o644)
    with pytest.raises(WebConfigError, match="readable by other users"):
        session_secret(tmp_path)
    monkeypatch.setenv("OPENIORT_SESSION_SECRET", "too short")
    with pytest.raises(WebConfigError, match="at least 32 characters"):
        session_secret(tmp_path)


# ------------------------------------------------------------------------ logging helpers


def test_code_locations_carry_no_message() -> None:
    try:
        raise ValueError("patient DEMO-001 Jane Doe")
    except ValueError as exc:
        where = code_locations(exc)
    assert "test_web_units.py" in where and "DEMO-001" not in where and "Jane" not in where


def test_verdict_classes_and_audit_text() -> None:
    assert [verdict_class(g) for g in ("suitable", "cautionary", "unsuitable")] == [
        "good",
        "warn",
        "bad",
    ]
    assert verdict_class("insufficient-data") == "unknown"
    assert verdict_class("not-eligible") == "bad"
    assert verdict_class("conditionally-recommended") == "warn"
    text = audit_text({"changed": {"anatomy.skin_distance_mm": {"from": 10, "to": 12}}})
    assert text == "changed anatomy.skin_distance_mm: 10 → 12"
    assert audit_text({"version": {"from": 1, "to": 2}, "removed": []}) == "version 1 → 2"


# ------------------------------------------------------------------------ DVH plot


@pytest.mark.parametrize(
    ("span", "step"), [(30.0, 5.0), (24.76, 5.0), (1.0, 0.2), (100.0, 20.0), (7.0, 1.0)]
)
def test_nice_step(span: float, step: float) -> None:
    assert nice_step(span) == pytest.approx(step)


def test_dvh_svg_maps_dose_and_volume_to_the_axes() -> None:
    curves = {"target": {"dose_gy": [0.0, 10.0, 20.0], "volume_pct": [100.0, 50.0, 0.0]}}
    svg = dvh_svg(curves, max_dose_gy=20.0, prescription_gy=20.0)
    # Plot box: x 56..624 (640 - 16), y 14..316 (360 - 44): 50 % at 10 Gy is the centre.
    assert 'points="56.0,14.0 340.0,165.0 624.0,316.0"' in svg
    assert svg.count("<polyline") == 1 and 'data-structure="target"' in svg
    evil = dvh_svg({'<script>"': curves["target"]}, 20.0, 20.0)
    assert "<script>" not in evil


# ------------------------------------------------------------------------ dose slices


def test_viewer_arrays_match_the_plan(demo_plan: DemoPlan) -> None:
    volume = load_viewer(demo_plan.folder)
    grid = demo_plan.result.phantom.grid
    nz, ny, nx = volume.shape
    # The stored region is a box of the phantom grid; its dose equals the plan's dose there.
    (oz, oy, ox) = np.round(grid.position_to_index(np.array(volume.meta["grid"]["origin_mm"])))
    oz, oy, ox = int(oz), int(oy), int(ox)
    np.testing.assert_array_equal(
        volume.dose,
        demo_plan.result.dose.dose_gy[oz : oz + nz, oy : oy + ny, ox : ox + nx].astype(np.float32),
    )
    # Everything above the lowest isodose is inside the stored box.
    lowest = volume.meta["isodose_levels_gy"][0]
    assert (demo_plan.result.dose.dose_gy >= lowest).sum() == (
        np.asarray(volume.dose) >= lowest
    ).sum()
    assert volume.meta["max_dose_gy"] == pytest.approx(
        float(np.nanmax(demo_plan.result.dose.dose_gy))
    )
    assert set(volume.meta["dvh"]["curves"]) == set(demo_plan.result.dvhs)


@pytest.mark.parametrize("axis", AXES)
def test_slice_png(demo_plan: DemoPlan, axis: str) -> None:
    volume = load_viewer(demo_plan.folder)
    index = volume.meta["centre_index_zyx"][AXES.index(axis)]
    image = Image.open(io.BytesIO(render_slice_png(volume, axis, index, scale=2)))  # type: ignore[arg-type]
    nz, ny, nx = volume.shape
    expected = {"axial": (nx, ny), "coronal": (nx, nz), "sagittal": (ny, nz)}[axis]
    assert image.size == (2 * expected[0], 2 * expected[1])  # 1 mm voxels, 2 px per mm
    pixels = np.asarray(image)
    # The isodose lines are drawn: the 20 Gy colour appears around the applicator.
    assert (pixels.reshape(-1, 3) == (0xFF, 0x7F, 0x0E)).all(axis=1).any()
    with pytest.raises(ViewerError, match="outside"):
        render_slice_png(volume, axis, volume.axis_length(axis), scale=2)  # type: ignore[arg-type]


# ------------------------------------------------------------------------ PDF


MINIMAL_REPORT = (
    "<!DOCTYPE html><html><head><title>t</title></head><body>"
    "<h1>IORT plan report: X</h1><p class='small'>openiort · status <b>draft</b></p>"
    "<img src='http://203.0.113.1/tracker.png'></body></html>"
)


APPROVED_AT = dt.datetime(2026, 3, 1, 14, 5, tzinfo=dt.UTC)


def _chart(status: str = "approved", **kwargs: Any) -> TreatmentChart:
    sealed = status in ("approved", "delivered")
    options: dict[str, Any] = {
        "status": status,
        "patient": ChartPatient("P-17", "Ann <b>O'Brien</b> & Co", dt.date(1950, 1, 31)),
        "plan_label": "plan 4 of case 2",
        "version": "3",
        "delivery": None,
        "example_data": False,
        "steps": (
            ChartStep("computed", "phys", "physicist", APPROVED_AT - dt.timedelta(hours=2)),
            ChartStep("reviewed", "onc", "oncologist", APPROVED_AT - dt.timedelta(hours=1)),
        )
        + (
            (ChartStep("approved and sealed", "phys2", "physicist", APPROVED_AT),) if sealed else ()
        ),
        "seal_sha256": "ab" * 32 if sealed else None,
    }
    options.update(kwargs)
    return TreatmentChart(**options)


def test_print_html_inserts_the_chart_and_status() -> None:
    out = print_html(MINIMAL_REPORT, _chart())
    assert out.index("IORT treatment chart") < out.index("IORT plan report")
    assert out.index("Treatment record: approved") < out.index("IORT plan report")
    assert "status <b>approved</b>" in out and "status <b>draft</b>" not in out
    assert "@page" in out
    # Record text is escaped, never markup.
    assert "Ann &lt;b&gt;O&#39;Brien&lt;/b&gt; &amp; Co" in out and "<b>O'Brien" not in out
    assert "1950-01-31" in out and "2026-03-01 14:05 UTC" in out
    with pytest.raises(PdfError, match="not a plan status"):
        print_html(MINIMAL_REPORT, _chart("sealed"))
    with pytest.raises(PdfError, match="</head>"):
        print_html("<html><body></body></html>")


def test_chart_repr_holds_no_patient_details() -> None:
    chart = _chart()
    for secret in ("O'Brien", "1950", "P-17"):
        assert secret not in repr(chart) and secret not in repr(chart.patient)


def test_chart_of_an_unreviewed_plan_says_so() -> None:
    chart = _chart("draft", steps=(ChartStep("computed", "phys", "physicist", APPROVED_AT),))
    text = _visible_text(chart.html())
    assert "DRAFT · not reviewed · not approved" in text
    assert "not reviewed" in text and "not approved: not for treatment" in text
    assert "do not sign for treatment" in text and "By signing" not in text
    assert "Seal" not in text
    reviewed = _visible_text(_chart("reviewed").html())
    assert "REVIEWED · not approved" in reviewed and "not reviewed" not in reviewed


def _visible_text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_chart_names_the_device_and_the_delivery_of_each_technique(demo_plan: DemoPlan) -> None:
    xray = demo_plan.result.delivery
    assert isinstance(xray, XrayDelivery)
    text = _visible_text(case_chart(demo_plan.result).html())
    assert "serial TEST-XRS-0001" in text and "department data" in text
    assert f"{xray.treatment_time_min:.2f} min" in text and "Example data" not in text
    # The case file names the patient by id only: lines to write in name and date of birth.
    assert "Patient id DEMO-001" in text and "names the patient by id only" in text
    assert "NOT IN A TREATMENT RECORD" in text
    example = xray.device.model_copy(update={"status": "example", "serial": None})
    plan = dataclasses.replace(
        demo_plan.result, delivery=xray.model_copy(update={"device": example})
    )
    text = _visible_text(case_chart(plan).html())
    assert "Example data — not for treatment" in text and "EXAMPLE data built into openiort" in text
    assert "serial not stated in the device data" in text
    hdr = HdrDelivery(
        device=example.model_copy(update={"name": "Ir-192 test source", "serial": "IR-9"}),
        source_id="GammaMed_HDR_Plus",
        applicator="balloon 30 mm",
        air_kerma_strength_u=40700.0,
        strength_reference_utc="2026-02-01T08:00:00Z",
        prescription_gy=10.0,
        dwells=(HdrDwell(channel=0, position_mm=(0, 0, 0), direction=(0, 0, 1), time_s=95.5),),
    )
    text = _visible_text(_chart(delivery=hdr, technique="hdr").html())
    assert "serial IR-9" in text and "source GammaMed_HDR_Plus" in text
    assert "95.5 s in 1 dwell" in text and "40700 U at 2026-02-01T08:00:00Z" in text


def test_pdf_prints_offline(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    pdf = html_report_to_pdf(MINIMAL_REPORT, _chart("reviewed"))
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    text = reader.pages[0].extract_text()
    assert "Treatment record: reviewed" in text and "status reviewed" in text
    assert "Ann <b>O'Brien</b>" in text and "Medical physicist" in text
    assert "page 1 of 1" in text  # the print style sheet's footer
    # The external image is refused, never fetched.
    assert any("203.0.113.1" in r.getMessage() for r in caplog.records)
    # Printing logs nothing of the patient.
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "O'Brien" not in logged and "1950-01-31" not in logged


def test_report_pdf_from_the_results_object(demo_plan: DemoPlan) -> None:
    """The PDF comes from the same PlanResult (and HTML) as the HTML report, with the case's
    chart on its first page."""
    plan = demo_plan.result
    html = render_report(plan, plan.to_json_dict())
    pdf = report_pdf(plan)
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert (
        reader.metadata is not None
        and reader.metadata.title == f"openiort plan report: {plan.case_id}"
    )
    for heading in (
        "Summary",
        "Prescription and dose at depth",
        "Organ-at-risk limits",
        "Uncertainty",
    ):
        assert heading in html and heading in text
    assert isinstance(plan.delivery, XrayDelivery)
    assert f"{plan.delivery.treatment_time_min:.2f} min" in text
    assert "Research software, not a medical device" in text
    first = reader.pages[0].extract_text()
    assert "IORT treatment chart" in first and "Patient id DEMO-001" in first
    assert "serial TEST-XRS-0001" in first and "not approved: not for treatment" in first
    assert "Medical physicist" in first and "Radiation oncologist" in first
    # Later pages name the patient (by id: the case file has no name) in their header.
    assert "Patient id DEMO-001" in reader.pages[1].extract_text()


# ------------------------------------------------------------------------ serve command


def test_serve_command_options(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: dict[str, Any] = {}

    def fake_create_app(database_url: Any, **kwargs: Any) -> str:
        calls["create"] = (database_url, kwargs)
        return "the-app"

    def fake_run(app: Any, **kwargs: Any) -> None:
        calls["run"] = (app, kwargs)

    import uvicorn

    monkeypatch.setattr("openiort.web.app.create_app", fake_create_app)
    monkeypatch.setattr(uvicorn, "run", fake_run)
    cli = typer.Typer()
    cli.command("serve")(commands.serve)
    cli.command("other")(lambda: None)
    runner = CliRunner()
    result = runner.invoke(
        cli,
        ["serve", "--port", "8123", "--database-url", "sqlite:///x.db", "--plan-workers", "2"],
    )
    assert result.exit_code == 0, result.output
    app, kwargs = calls["run"]
    assert app == "the-app" and kwargs["host"] == "127.0.0.1" and kwargs["port"] == 8123
    assert kwargs["access_log"] is False  # uvicorn's access log would write request paths
    assert calls["create"][0] == "sqlite:///x.db"
    assert calls["create"][1]["plan_workers"] == 2 and calls["create"][1]["secure_cookies"] is None
    result = runner.invoke(cli, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 0 and "plain http" in result.output
    result = runner.invoke(cli, ["serve", "--ssl-certfile", str(tmp_path / "c.pem")])
    assert result.exit_code != 0 and "--ssl-keyfile" in result.output
    result = runner.invoke(cli, ["serve", "--port", "0"])
    assert result.exit_code != 0


def test_serve_reports_a_bad_database(monkeypatch: pytest.MonkeyPatch) -> None:
    cli = typer.Typer()
    cli.command("serve")(commands.serve)
    cli.command("other")(lambda: None)
    result = CliRunner().invoke(cli, ["serve", "--database-url", "mysql://u@h/db"])
    assert result.exit_code == 2 and "not supported" in result.output


def test_case_model_unchanged_for_the_form() -> None:
    # Case blocks are models; a new block needs a place in the form (caseform.BLOCKS).
    assert {b for b, _, _ in caseform.BLOCKS} == set(Case.model_fields)


@pytest.mark.parametrize(
    ("raw", "minutes", "expected"),
    [
        ("20:08.8", True, 20 + 8.8 / 60),
        ("20.1467", True, 20.1467),
        ("5:00", True, 5.0),
        ("1608", False, 1608.0),
    ],
)
def test_console_numbers(raw: str, minutes: bool, expected: float) -> None:
    from openiort.web.pages_delivery import _console_number

    assert _console_number(raw, minutes) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("raw", ["20:75", "-1:00", "nan", "12:ab", "1:2:3"])
def test_console_numbers_refused(raw: str) -> None:
    from openiort.web.pages_delivery import _console_number

    with pytest.raises(ValueError):
        _console_number(raw, True)
