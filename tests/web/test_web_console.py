"""The conditions of the day in the web app: the day's console values on the approved plan's
page and through ``POST /api/plans/{id}/console`` (what ``iort console`` prints), their
problems beside the form with 422, deliveries checked against the day's values and recording
them, and plans stored by an earlier release (no typed delivery) shown with a note.

The electron plan is examples/left_electron_eliot.yaml planned once for this module (about
15 s). Its machine data are the built-in example, which may never be approved; the stored plan
JSON marks them as the department's so that the plan can go through the lifecycle (the records
read the device status only), as tests/records/test_records_real_plans.py does.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner
from web_testkit import (
    REPO,
    SESSION_SECRET,
    DemoPlan,
    api_client,
    link_tree,
    page_csrf,
    record_factor_check,
    seed_case,
    seed_plan,
)

from openiort.case import parse_case
from openiort.cli import app as cli_app
from openiort.pipeline import plan_case
from openiort.records.db import make_engine, upgrade
from openiort.web.app import create_app
from openiort.web.worker import write_plan_files

ELECTRON_CASE = REPO / "examples" / "left_electron_eliot.yaml"
HDR_CASE = REPO / "examples" / "left_hdr_balloon_30mm.yaml"
HDR_CALIBRATED = "2025-02-14T12:00:00+00:00"  # a source certificate's date, 16.9 d before DAY
DAY = "2025-03-03T09:30"  # as the form's date-and-time field holds it (UTC)
DAY_UTC = "2025-03-03T09:30+00:00"
# The example machine's worksheet: MU at 934.7 hPa, 1674 planned (15 mm gland in the
# operating-room geometry: 8 MeV, 5 cm, flat); at 1013 hPa 1673.84 x 1013 / 934.7 = 1814.06
# -> 1814 (tests/core/test_deliveries_engines.py). The release database's plan (intact-breast
# geometry: 12 MeV, 6 cm, 45 deg) has 1608 MU.
PLANNED_MU, SEA_LEVEL_MU, RELEASE_MU = 1674, 1814, 1608
EXAMPLE_SETTING = {"applicator": "5", "energy_mev": "8", "bevel_deg": "0"}
REFERENCE_HPA = 934.7
X_RAY_PRESSURE_PROBLEM = (
    "pressure and temperature are not console inputs for the 50 kV source: they belong to the "
    "daily output check, whose factor is entered instead"
)
RELEASE_DB = REPO / "tests" / "records" / "data" / "release-0.1.0.sqlite"
RELEASE_SEAL_KEY = ("k" * 16 + "test-seal-key-not-for-production" + "0" * 16).encode()
RELEASE_PASSWORD = "release-test-password"  # tests/records/data/make_release_database.py

runner = CliRunner()


@pytest.fixture(scope="module")
def electron_plan(tmp_path_factory: pytest.TempPathFactory) -> DemoPlan:
    """The electron example planned once, its files written as the planning worker does."""
    data = yaml.safe_load(ELECTRON_CASE.read_text("utf-8"))
    case = parse_case(data)
    result = plan_case(case)
    folder = tmp_path_factory.mktemp("electron") / "plan"
    plan_json = write_plan_files(result, case, folder)
    # Example machine data are never approvable: mark them as the department's for the
    # lifecycle (the records read the device status only; the plan's values are unchanged).
    plan_json["delivery"]["device"]["status"] = "department"
    return DemoPlan(data, case, result, folder, plan_json)


@pytest.fixture(scope="module")
def hdr_plan(tmp_path_factory: pytest.TempPathFactory) -> DemoPlan:
    """The HDR example planned once, with a calibration date given to its example source."""
    data = yaml.safe_load(HDR_CASE.read_text("utf-8"))
    case = parse_case(data)
    result = plan_case(case)
    folder = tmp_path_factory.mktemp("hdr") / "plan"
    plan_json = write_plan_files(result, case, folder)
    # As for the electron plan: example source data marked as the department's, and a
    # certificate date so that the source decays (the example source has none).
    plan_json["delivery"]["device"]["status"] = "department"
    plan_json["delivery"]["strength_reference_utc"] = HDR_CALIBRATED
    return DemoPlan(data, case, result, folder, plan_json)


def _approved(app: FastAPI, demo: DemoPlan) -> int:
    return seed_plan(app, demo, seed_case(app, demo.case_data), "approved")


def _section(page: str) -> str:
    """The conditions-of-the-day fieldset of a plan page."""
    start = page.index('data-testid="console-today"')
    return page[start : page.index("</fieldset>", start)]


def _items(page: str, testid: str) -> list[str]:
    block = page.split(f'data-testid="{testid}"', 1)[1].split("</ul>", 1)[0]
    items = re.findall(r"<li>(.*?)</li>", block)
    return [html.unescape(re.sub(r"<[^>]+>", "", li)).strip() for li in items]


def _today_cells(page: str) -> list[str]:
    cells = re.findall(r'data-testid="console-today-value"><b>([^<]+)</b>', page)
    return [c.strip() for c in cells]


def _token(page: str) -> str:
    match = re.search(r'name="session_computed" value="([^"]+)"', page)
    assert match, "no computed session in the page"
    return html.unescape(match.group(1))


def _cli_json(plan_dir: Path, *args: str) -> Any:
    result = runner.invoke(cli_app, ["console", str(plan_dir), "--date", DAY_UTC, *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# ------------------------------------------------------------------------ electrons


def test_electron_console_values_on_the_page_and_in_the_api(
    app: FastAPI, electron_plan: DemoPlan
) -> None:
    plan_id = _approved(app, electron_plan)
    phys = api_client(app, "phys")
    page = phys.get(f"/plans/{plan_id}").text
    section = _section(page)
    # The machine corrects its monitor chamber for pressure only: no temperature field.
    assert 'name="session_pressure_hpa"' in section and 'name="session_output_factor"' in section
    assert 'name="session_temperature_c"' not in section
    assert 'name="session_computed"' not in section  # nothing computed yet
    token = page_csrf(phys, f"/plans/{plan_id}")

    r = phys.post(
        f"/plans/{plan_id}/console",
        data={"csrf_token": token, "session_at": DAY, "session_pressure_hpa": "1013"},
    )
    assert r.status_code == 200, r.text
    section = _section(r.text)
    assert _today_cells(section) == [f"{SEA_LEVEL_MU} MU"]
    assert re.search(rf'data-testid="console-planned">{PLANNED_MU} MU<', section)
    factors = _items(section, "console-factors")
    assert factors == [
        f"air (monitor chamber): {1013 / REFERENCE_HPA:.5f} (P / P_ref = 1013 / 934.7 hPa)"
    ]
    assert "Console values for 2025-03-03 09:30 UTC" in section
    assert f'value="{DAY}"' in section  # the date computed stays in its field

    # The API gives what `iort console --json` prints for the same plan and conditions.
    body = {"at_utc": DAY_UTC, "pressure_hpa": 1013}
    for who in ("phys", "view"):  # any logged-in user who can see the plan
        r = api_client(app, who).post(f"/api/plans/{plan_id}/console", json=body)
        assert r.status_code == 200, r.text
    out = r.json()
    assert out["settings"] == [
        {"name": "monitor units", "unit": "MU", "planned": PLANNED_MU, "today": SEA_LEVEL_MU}
    ]
    assert out["due"] == {
        "setting": "monitor units",
        "unit": "MU",
        "reference": PLANNED_MU,
        "today": SEA_LEVEL_MU,
        "after_interruption": False,
    }
    assert out["plan_id"] == plan_id and out["plan_status"] == "approved"
    assert out["device"] == "LIAC HWL" and out["example_device_data"] is False
    cli = _cli_json(electron_plan.folder, "--pressure-hpa", "1013")
    for key in ("technique", "settings", "factors", "warnings", "session", "scale"):
        assert out[key] == cli[key], key
    assert out["scale"] == pytest.approx(1013 / REFERENCE_HPA, rel=1e-12)


def test_electron_delivery_is_checked_against_the_days_values(
    app: FastAPI, electron_plan: DemoPlan
) -> None:
    plan_id = _approved(app, electron_plan)
    phys = api_client(app, "phys")
    token = page_csrf(phys, f"/plans/{plan_id}")
    conditions = {"csrf_token": token, "session_at": DAY, "session_pressure_hpa": "1013"}
    computed = phys.post(f"/plans/{plan_id}/console", data=conditions)
    session = _token(computed.text)
    entry = dict(EXAMPLE_SETTING)

    # The reference MU are refused once the day's values were computed.
    r = phys.post(
        f"/plans/{plan_id}/deliveries",
        data={**conditions, **entry, "monitor_units": str(PLANNED_MU), "session_computed": session},
    )
    assert r.status_code == 422
    errors = _items(r.text, "delivery-errors")
    assert errors == [
        f"monitor units: entered {PLANNED_MU} MU, plan requires {SEA_LEVEL_MU} MU today "
        f"({PLANNED_MU} MU at the reference conditions x {1013 / REFERENCE_HPA:.5f} for the "
        "conditions of the day)"
    ]
    assert _today_cells(_section(r.text)) == [f"{SEA_LEVEL_MU} MU"]  # still shown
    # Conditions changed after computing, or entered without computing: refused too.
    r = phys.post(
        f"/plans/{plan_id}/deliveries",
        data={
            **conditions,
            **entry,
            "session_pressure_hpa": "1000",
            "monitor_units": str(SEA_LEVEL_MU),
            "session_computed": session,
        },
    )
    assert r.status_code == 422
    assert "changed after the console values were computed" in _items(r.text, "delivery-errors")[0]
    r = phys.post(
        f"/plans/{plan_id}/deliveries",
        data={**conditions, **entry, "monitor_units": str(SEA_LEVEL_MU)},
    )
    assert r.status_code == 422
    assert "entered but not computed" in _items(r.text, "delivery-errors")[0]
    assert phys.get(f"/api/plans/{plan_id}/deliveries").json() == []

    # The day's MU: recorded with the session and the value they were checked against.
    r = phys.post(
        f"/plans/{plan_id}/deliveries",
        data={
            **conditions,
            **entry,
            "monitor_units": str(SEA_LEVEL_MU),
            "session_computed": session,
        },
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"].endswith("msg=delivered")
    (d,) = phys.get(f"/api/plans/{plan_id}/deliveries").json()
    assert d["set_monitor_units"] == d["given_monitor_units"] == SEA_LEVEL_MU
    assert d["checked_monitor_units"] == SEA_LEVEL_MU
    assert d["session_scale"] == pytest.approx(1013 / REFERENCE_HPA, rel=1e-12)
    session_record = d["treatment_session"]
    assert session_record["pressure_hpa"] == 1013 and session_record["output_factor"] is None
    assert session_record["temperature_c"] is None and session_record["fraction"] == 1
    assert session_record["at_utc"].startswith("2025-03-03T09:30:00")
    assert session_record["factors"][0]["reason"] == "P / P_ref = 1013 / 934.7 hPa"
    assert d["delivered_fraction"] == pytest.approx(1.0)
    assert "session_date" in d["warnings"]  # computed for another day, recorded now
    assert phys.get(f"/api/plans/{plan_id}").json()["status"] == "delivered"


def test_interrupted_electron_session_remainder_on_another_day(
    app: FastAPI, electron_plan: DemoPlan
) -> None:
    plan_id = _approved(app, electron_plan)
    phys = api_client(app, "phys")
    entry = {"applicator": "5", "energy_mev": 8, "bevel_deg": 0}
    at_sea_level = {"at_utc": DAY_UTC, "pressure_hpa": 1013}
    r = phys.post(
        f"/api/plans/{plan_id}/deliveries",
        json={
            **entry,
            "monitor_units": SEA_LEVEL_MU,
            "interrupted": True,
            "given_monitor_units": 800,
            "conditions": at_sea_level,
        },
    )
    assert r.status_code == 201, r.text
    first = r.json()
    scale = 1013 / REFERENCE_HPA
    # 800 MU at 1013 hPa are 800 / scale MU at the reference conditions.
    assert first["remaining_monitor_units"] == pytest.approx(PLANNED_MU - 800 / scale, rel=1e-12)
    assert first["delivered_fraction"] == pytest.approx(800 / scale / PLANNED_MU, rel=1e-12)
    left = first["remaining_monitor_units"]
    # Another day, another pressure: the remainder scales by that day's air correction.
    higher = {"at_utc": "2025-03-04T09:30+00:00", "pressure_hpa": 950}
    out = phys.post(f"/api/plans/{plan_id}/console", json=higher).json()
    due = round(left * 950 / REFERENCE_HPA)
    assert out["due"] == {
        "setting": "monitor units",
        "unit": "MU",
        "reference": pytest.approx(left),
        "today": due,
        "after_interruption": True,
    }
    assert out["settings"][0]["today"] == round(1673.8402678144428 * 950 / REFERENCE_HPA)
    token = page_csrf(phys, f"/plans/{plan_id}")
    page = phys.post(
        f"/plans/{plan_id}/console",
        data={"csrf_token": token, "session_at": "2025-03-04T09:30", "session_pressure_hpa": "950"},
    ).text
    assert f"{due:g} MU today" in _items_text(page, "console-due")
    r = phys.post(
        f"/api/plans/{plan_id}/deliveries",
        json={**entry, "monitor_units": due, "conditions": higher},
    )
    assert r.status_code == 201, r.text
    second = r.json()
    assert second["checked_monitor_units"] == due
    assert second["cumulative_fraction"] == pytest.approx(1.0)
    assert phys.get(f"/api/plans/{plan_id}").json()["status"] == "delivered"


def _items_text(page: str, testid: str) -> str:
    block = page.split(f'data-testid="{testid}"', 1)[1].split("</p>", 1)[0]
    return html.unescape(re.sub(r"<[^>]+>", "", block))


def test_electron_pressure_out_of_range_is_refused_beside_the_form(
    app: FastAPI, electron_plan: DemoPlan
) -> None:
    plan_id = _approved(app, electron_plan)
    phys = api_client(app, "phys")
    token = page_csrf(phys, f"/plans/{plan_id}")
    r = phys.post(
        f"/plans/{plan_id}/console",
        data={"csrf_token": token, "session_pressure_hpa": "101.3", "monitor_units": "17"},
    )
    assert r.status_code == 422
    problem = "air pressure 101.3 hPa is outside the plausible range 600-1100 hPa"
    assert _items(_section(r.text), "console-errors") == [problem]
    assert 'value="101.3"' in _section(r.text)  # the entry stays for correction
    assert 'id="d-mu" name="monitor_units" inputmode="decimal" value="17"' in r.text
    r = phys.post(f"/api/plans/{plan_id}/console", json={"pressure_hpa": 101.3})
    assert r.status_code == 422 and r.json()["problems"] == [problem]
    r = phys.post(f"/api/plans/{plan_id}/console", json={})
    assert r.status_code == 422 and "open to air" in r.json()["problems"][0]


# ------------------------------------------------------------------------ x-rays


def test_xray_output_factor_divides_the_time(app: FastAPI, demo_plan: DemoPlan) -> None:
    plan_id = _approved(app, demo_plan)
    planned_min = demo_plan.plan_json["delivery"]["treatment_time_min"]
    today_min = planned_min / 1.02
    phys = api_client(app, "phys")
    section = _section(phys.get(f"/plans/{plan_id}").text)
    assert 'name="session_output_factor"' in section
    assert 'name="session_pressure_hpa"' not in section  # the 50 kV source takes no air
    token = page_csrf(phys, f"/plans/{plan_id}")
    r = phys.post(
        f"/plans/{plan_id}/console",
        data={"csrf_token": token, "session_at": DAY, "session_output_factor": "1.02"},
    )
    assert r.status_code == 200, r.text
    (cell,) = _today_cells(_section(r.text))
    assert cell.startswith(f"{today_min:.3f} min")
    assert _items(_section(r.text), "console-factors") == [
        "daily output: 1.02000 (day's QA record)"
    ]
    out = phys.post(
        f"/api/plans/{plan_id}/console", json={"at_utc": DAY_UTC, "output_factor": 1.02}
    ).json()
    assert out["settings"][0]["planned"] == pytest.approx(planned_min, rel=1e-12)
    assert out["settings"][0]["today"] == pytest.approx(today_min, rel=1e-12)
    assert out["due"]["today"] == pytest.approx(today_min * 60, rel=1e-12)
    # Without a typed output factor: the source's output check of the day gives it (factor 1,
    # recorded with the plan by web_testkit.seed_plan; openiort.records.daily_output).
    out = phys.post(f"/api/plans/{plan_id}/console", json={}).json()
    assert out["settings"][0]["today"] == out["settings"][0]["planned"]
    assert out["warnings"] == [] and out["factors"][0]["value"] == 1.0
    # A later check of the day gives 1.02: the console values and the delivery take it.
    record_factor_check(app, demo_plan.plan_json["delivery"]["device"]["serial"], 1.02)
    out = phys.post(f"/api/plans/{plan_id}/console", json={}).json()
    assert out["settings"][0]["today"] == pytest.approx(today_min, rel=1e-12)
    r = phys.post(
        f"/api/plans/{plan_id}/deliveries",
        json={
            "applicator": f"{demo_plan.plan_json['applicator_diameter_cm']:g}",
            "time_min": today_min,
            "conditions": {"output_factor": 1.02},
        },
    )
    assert r.status_code == 201, r.text
    d = r.json()
    assert d["checked_time_s"] == pytest.approx(today_min * 60, rel=1e-12)
    assert d["treatment_session"]["output_factor"] == 1.02 and "session_date" not in d["warnings"]


def test_pressure_for_an_xray_plan_is_refused_with_the_clis_problem(
    app: FastAPI, demo_plan: DemoPlan
) -> None:
    plan_id = _approved(app, demo_plan)
    phys = api_client(app, "phys")
    token = page_csrf(phys, f"/plans/{plan_id}")
    r = phys.post(
        f"/plans/{plan_id}/console",
        data={"csrf_token": token, "session_at": DAY, "session_pressure_hpa": "1013"},
    )
    assert r.status_code == 422
    assert _items(_section(r.text), "console-errors") == [X_RAY_PRESSURE_PROBLEM]
    assert 'name="session_computed"' not in r.text
    r = phys.post(f"/api/plans/{plan_id}/console", json={"at_utc": DAY_UTC, "pressure_hpa": 1013})
    assert r.status_code == 422 and r.json()["problems"] == [X_RAY_PRESSURE_PROBLEM]
    cli = runner.invoke(
        cli_app, ["console", str(demo_plan.folder), "--date", DAY_UTC, "--pressure-hpa", "1013"]
    )
    assert cli.exit_code == 2 and f"error: session: {X_RAY_PRESSURE_PROBLEM}" in cli.output
    # Values that are not numbers, a time without its zone (API), a fraction below 1.
    r = phys.post(
        f"/plans/{plan_id}/console",
        data={"csrf_token": token, "session_at": "tomorrow", "session_output_factor": "1,02"},
    )
    assert r.status_code == 422
    assert _items(_section(r.text), "console-errors") == [
        "date and time: 'tomorrow' is not a date and time (UTC)",
        "daily output factor: '1,02' is not a number",
    ]
    r = phys.post(f"/api/plans/{plan_id}/console", json={"at_utc": DAY, "fraction": 0})
    assert r.status_code == 422
    problems = r.json()["problems"]
    assert any(p.startswith("at_utc:") and "time zone" in p for p in problems)
    assert any(p.startswith("fraction:") for p in problems)


def test_console_values_need_an_approved_plan_and_a_login(
    app: FastAPI, demo_plan: DemoPlan
) -> None:
    case_id = seed_case(app, demo_plan.case_data)
    draft = seed_plan(app, demo_plan, case_id, "draft")
    phys = api_client(app, "phys")
    r = phys.post(f"/api/plans/{draft}/console", json={})
    assert r.status_code == 409 and "approved plans only" in r.json()["detail"]
    assert 'data-testid="console-today"' not in phys.get(f"/plans/{draft}").text
    assert api_client(app, None).post(f"/api/plans/{draft}/console", json={}).status_code == 401
    no_csrf = api_client(app, "view")
    del no_csrf.headers["X-CSRF-Token"]
    assert no_csrf.post(f"/api/plans/{draft}/console", json={}).status_code == 403


# ------------------------------------------------------------------------ HDR


def test_hdr_console_values_follow_the_source_decay(app: FastAPI, hdr_plan: DemoPlan) -> None:
    plan_id = _approved(app, hdr_plan)
    phys = api_client(app, "phys")
    section = _section(phys.get(f"/plans/{plan_id}").text)
    # The date and time alone (the decay): no output factor, no air.
    assert 'name="session_at"' in section and 'name="session_fraction"' in section
    assert 'name="session_output_factor"' not in section
    assert 'name="session_pressure_hpa"' not in section
    token = page_csrf(phys, f"/plans/{plan_id}")
    r = phys.post(f"/plans/{plan_id}/console", data={"csrf_token": token, "session_at": DAY})
    assert r.status_code == 200, r.text
    days = (
        dt.datetime.fromisoformat(DAY_UTC) - dt.datetime.fromisoformat(HDR_CALIBRATED)
    ).total_seconds() / 86400
    decay = math.exp(-math.log(2) * days / 73.827)  # ICRP 107 half-life of Ir-192
    (factor,) = _items(_section(r.text), "console-factors")
    assert factor.startswith(f"source decay: {decay:.5f} (S_K today / S_K reference after ")
    total = sum(d["time_s"] for d in hdr_plan.plan_json["delivery"]["dwells"])
    (cell,) = _today_cells(_section(r.text))
    assert f"({total / decay:.1f} s)" in cell
    assert "dwell times</summary>" in _section(r.text)
    out = phys.post(f"/api/plans/{plan_id}/console", json={"at_utc": DAY_UTC}).json()
    assert out["settings"][-1]["today"] == pytest.approx(total / decay, rel=1e-6)
    assert out["due"]["today"] == pytest.approx(total / decay, rel=1e-6)
    r = phys.post(f"/api/plans/{plan_id}/console", json={"at_utc": DAY_UTC, "output_factor": 1})
    assert r.status_code == 422 and "date and time only" in r.json()["problems"][0]
    # The afterloader's console shows the decayed times: the delivery is checked against them.
    entry = {
        "applicator": hdr_plan.plan_json["delivery"]["applicator"],
        "time_min": out["due"]["today"] / 60,
        "conditions": {"at_utc": DAY_UTC},
    }
    # A single-fraction balloon plan is given after its balloon check, as each fraction of a
    # course is (the day's diameter and skin distance; the example's 30 mm balloon, 10 mm).
    r = phys.post(f"/api/plans/{plan_id}/deliveries", json=entry)
    assert r.status_code == 422
    assert any(p.startswith("balloon check: enter") for p in r.json()["problems"])
    check = {"diameter_mm": 30.0, "skin_distance_mm": 10.0}
    r = phys.post(f"/api/plans/{plan_id}/deliveries", json=entry | {"balloon_check": check})
    assert r.status_code == 201, r.text
    assert r.json()["session_scale"] == pytest.approx(1 / decay, rel=1e-6)
    assert r.json()["treatment_session"]["balloon_check"] == check | {"volume_cc": None}


# ------------------------------------------------------------------------ older plans


@pytest.fixture
def release_app(tmp_path: Path, demo_plan: DemoPlan) -> Iterator[FastAPI]:
    """The web app on a copy of the database of the release before typed deliveries,
    upgraded as an administrator does (``iort db upgrade``)."""
    copy_db = tmp_path / "release.sqlite"
    shutil.copyfile(RELEASE_DB, copy_db)
    upgrade(make_engine(f"sqlite:///{copy_db}"), key=RELEASE_SEAL_KEY)
    application = create_app(
        f"sqlite:///{copy_db}",
        seal_key=RELEASE_SEAL_KEY,
        files_dir=tmp_path / "plans",
        session_secret_key=SESSION_SECRET,
        executor="thread",
    )
    for plan_id in (1, 2, 3):  # the viewer's arrays: any plan's do for these pages
        link_tree(demo_plan.folder, tmp_path / "plans" / str(plan_id))
    with TestClient(application):
        yield application


def test_a_plan_of_an_older_release_shows_a_note(release_app: FastAPI) -> None:
    client = TestClient(release_app, base_url="http://testserver")
    r = client.post("/api/session", json={"username": "phys", "password": RELEASE_PASSWORD})
    assert r.status_code == 200, r.text
    client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    plans = {
        p["technique"]: p
        for c in client.get("/api/cases").json()
        for p in client.get(f"/api/cases/{c['case_id']}/plans").json()
    }
    assert {t: p["status"] for t, p in plans.items()} == {
        "xray": "delivered",
        "electron": "approved",
        "hdr": "approved",
    }
    electron, hdr = plans["electron"]["plan_id"], plans["hdr"]["plan_id"]
    for plan_id in (electron, hdr):
        page = client.get(f"/plans/{plan_id}")
        assert page.status_code == 200
        section = _section(page.text)
        assert 'data-testid="console-legacy"' in section and "earlier release" in section
        assert 'name="session_at"' not in section and "console-compute" not in section
    assert client.get(f"/plans/{plans['xray']['plan_id']}").status_code == 200
    r = client.post(f"/api/plans/{electron}/console", json={"pressure_hpa": 1013})
    assert r.status_code == 409 and "earlier release" in r.json()["detail"]
    r = client.post(
        f"/plans/{electron}/console",
        data={"csrf_token": client.headers["X-CSRF-Token"], "session_pressure_hpa": "1013"},
    )
    assert r.status_code == 409 and 'data-testid="console-legacy"' in r.text
    # A delivery with conditions of the day is refused; without, it is checked against the
    # settings computed at planning, as before.
    r = client.post(
        f"/api/plans/{hdr}/deliveries",
        json={"applicator": "balloon", "time_min": 1.0, "conditions": {}},
    )
    assert r.status_code == 422 and "earlier release" in r.json()["detail"]
    entry = {"applicator": "6", "energy_mev": 12, "bevel_deg": 45, "monitor_units": RELEASE_MU}
    r = client.post(f"/api/plans/{electron}/deliveries", json=entry)
    assert r.status_code == 201, r.text
    assert r.json()["treatment_session"] is None
    assert r.json()["checked_monitor_units"] == RELEASE_MU
