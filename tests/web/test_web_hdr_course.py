"""An HDR course in the web app: the dwell table on the plan page, the course line, the day's
dwell times, deliveries fraction by fraction through the API and the page, and a fraction
inside the minimum interval refused by both.

The plan is the 4 cm balloon of tests/hdr/test_hdr_course_plan.py (10 x 3.4 Gy) with the test
department's source record, planned once for this module (about 40 s).

Set ``OPENIORT_WEB_SCREENSHOTS=<folder>`` to save screenshots of the HDR plan page's console
settings and of the report's dwell table there (docs/web-hdr-console.png,
docs/report-hdr-dwell-table.png).
"""

from __future__ import annotations

import html
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from web_testkit import (
    PASSWORD,
    REPO,
    DemoPlan,
    api_client,
    build_app,
    page_csrf,
    seed_case,
    seed_plan,
)

from openiort.case import parse_case
from openiort.datafiles import write_manifest
from openiort.pipeline import plan_case
from openiort.web.worker import write_plan_files

RECORD = REPO / "tests" / "data" / "department_hdr_source" / "source.yaml"
DAY1 = "2026-11-10T08:00+00:00"
BALLOON = {"diameter_mm": 40.0, "skin_distance_mm": 7.5}


@pytest.fixture(scope="module")
def course_plan(tmp_path_factory: pytest.TempPathFactory) -> DemoPlan:
    data: dict[str, Any] = yaml.safe_load(
        (REPO / "examples/left_hdr_balloon_30mm.yaml").read_text()
    )
    data["anatomy"].update(cavity_diameter_mm=40, skin_distance_mm=7)
    data["intent"].update(prescription_gy=3.4, fractions=10)
    case = parse_case(data)
    result = plan_case(case, RECORD)
    folder = tmp_path_factory.mktemp("hdr_course") / "plan"
    plan_json = write_plan_files(result, case, folder)
    return DemoPlan(data, case, result, folder, plan_json)


@pytest.fixture
def app(tmp_path: Path, course_plan: DemoPlan) -> Iterator[FastAPI]:
    application = build_app(tmp_path / "web", course_plan)
    with TestClient(application):
        yield application


def _console(client: TestClient, plan_id: int, at: str, fraction: int) -> dict[str, Any]:
    r = client.post(f"/api/plans/{plan_id}/console", json={"at_utc": at, "fraction": fraction})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _delivery(values: dict[str, Any], at: str, fraction: int) -> dict[str, Any]:
    dwells = [round(s["today"], 1) for s in values["settings"] if s["name"].startswith("dwell ")]
    return {
        "applicator": "balloon",
        "time_min": values["due"]["today"] / 60.0,
        "dwell_times_s": dwells,
        "balloon_check": BALLOON,
        "conditions": {"at_utc": at, "fraction": fraction},
    }


def test_the_plan_page_shows_the_dwell_table_and_the_course(
    app: FastAPI, course_plan: DemoPlan
) -> None:
    plan_id = seed_plan(app, course_plan, seed_case(app, course_plan.case_data), "approved")
    page = api_client(app, "phys").get(f"/plans/{plan_id}").text
    table = page.split('data-testid="dwell-table"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(
        r"<tr><td>\d+</td><td>(\d+)</td><td>([\d.]+)</td><td>([\d.]+)</td></tr>", table
    )
    expected = [
        (str(r["channel"]), f"{r['from_tip_mm']:.1f}", f"{r['time_s']:.1f}")
        for r in course_plan.plan_json["dwell_table"]["rows"]
    ]
    assert rows == expected
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    assert "fraction 1 of 10 due" in text
    assert "10 x 3.4 Gy = 34 Gy, at least 6 h apart" in text
    assert "TEST AFTERLOADER, source TEST-IR-0001" in text


def test_fractions_through_the_api_and_the_page(app: FastAPI, course_plan: DemoPlan) -> None:
    plan_id = seed_plan(app, course_plan, seed_case(app, course_plan.case_data), "approved")
    phys = api_client(app, "phys")
    values = _console(phys, plan_id, DAY1, 1)
    assert values["strength_today_u"] < 40700.0
    assert "mm from tip" in values["settings"][0]["name"]
    r = phys.post(f"/api/plans/{plan_id}/deliveries", json=_delivery(values, DAY1, 1))
    assert r.status_code == 201, r.text
    assert r.json()["treatment_session"]["fraction"] == 1

    # Fraction 2 four hours later: refused by the API, nothing recorded.
    later = "2026-11-10T12:00+00:00"
    values = _console(phys, plan_id, later, 2)
    r = phys.post(f"/api/plans/{plan_id}/deliveries", json=_delivery(values, later, 2))
    assert r.status_code == 422
    assert any("fraction interval: 4.00 h" in p for p in r.json()["problems"])
    # ... and by the page's form.
    token = page_csrf(phys, f"/plans/{plan_id}")
    form = {"csrf_token": token, "session_at": "2026-11-10T12:00", "session_fraction": "2"}
    shown = phys.post(f"/plans/{plan_id}/console", data=form)
    assert shown.status_code == 200, shown.text
    computed = re.search(r'name="session_computed" value="([^"]+)"', shown.text)
    assert computed
    dwells = " ".join(
        f"{round(s['today'], 1)}" for s in values["settings"] if s["name"].startswith("dwell ")
    )
    form |= {
        "session_computed": html.unescape(computed.group(1)),
        "applicator": "balloon",
        "time_min": f"{values['due']['today'] / 60.0:.6f}",
        "dwell_times_s": dwells,
        "balloon_diameter_mm": "40",
        "balloon_skin_distance_mm": "7.5",
    }
    refused = phys.post(f"/plans/{plan_id}/deliveries", data=form, follow_redirects=False)
    assert "fraction interval: 4.00 h" in html.unescape(refused.text)
    assert len(phys.get(f"/api/plans/{plan_id}/deliveries").json()) == 1

    # Six and a half hours after the first: recorded through the page.
    form["session_at"] = "2026-11-10T14:30"
    shown = phys.post(f"/plans/{plan_id}/console", data=form)
    computed = re.search(r'name="session_computed" value="([^"]+)"', shown.text)
    assert computed
    values = _console(phys, plan_id, "2026-11-10T14:30+00:00", 2)
    form |= {
        "session_computed": html.unescape(computed.group(1)),
        "time_min": f"{values['due']['today'] / 60.0:.6f}",
        "dwell_times_s": " ".join(
            f"{round(s['today'], 1)}" for s in values["settings"] if s["name"].startswith("dwell ")
        ),
    }
    done = phys.post(f"/plans/{plan_id}/deliveries", data=form, follow_redirects=False)
    assert done.status_code in (302, 303), done.text
    assert len(phys.get(f"/api/plans/{plan_id}/deliveries").json()) == 2


# ------------------------------------------------------------------------ source exchange

# ICRP Publication 107 (Eckerman & Endo, Ann ICRP 2008;38(3)): Ir-192 half-life 73.827 d.
ICRP107_HALF_LIFE_D = 73.827
PLAN_SK_U = 40700.0  # the test record's certificate, the plan's reference strength
NEW_SK_U = 41200.0  # the exchanged source's certificate, 30 Nov 2026 11:00 UTC
AFTER_EXCHANGE = "2026-12-02T11:00+00:00"  # two days after the new certificate


def _exchanged_record(folder: Path) -> Path:
    """The record of the source that replaced TEST-IR-0001 (synthetic test data)."""
    folder.mkdir(parents=True)
    meta = yaml.safe_load(RECORD.read_text())
    meta |= {
        "source_serial": "TEST-IR-0002",
        "certificate": {"air_kerma_strength_u": NEW_SK_U, "reference": "2026-11-30T12:00:00+01:00"},
        "well_chamber": {"measured_u": 41150, "measured_on": "2026-11-30"},
        "version": "test-2 (source exchange 2026-11-30)",
        "effective_date": "2026-11-30",
    }
    (folder / "source.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    write_manifest(folder, remake="test")
    return folder / "source.yaml"


def _dwells_today(values: dict[str, Any]) -> list[tuple[float, float]]:
    return [
        (s["planned"], s["today"]) for s in values["settings"] if s["name"].startswith("dwell ")
    ]


def test_a_course_spanning_a_source_exchange_is_rescaled_after_it(
    tmp_path: Path, course_plan: DemoPlan
) -> None:
    """The server's current record is the new source (TEST-IR-0002); the old one is loaded
    beside it. Fraction 1 (10 Nov, before the exchange) is given with the old source chosen by
    serial; fraction 2 (2 Dec) with the current one: each dwell time = plan time x 40700 U /
    (41200 U x 2^(-2 d / 73.827 d)), and each fraction records the source it used."""
    new = _exchanged_record(tmp_path / "new_source")
    application = build_app(
        tmp_path / "web", course_plan, hdr_source_data=new, hdr_other_source_data=(RECORD,)
    )
    with TestClient(application):
        plan_id = seed_plan(
            application, course_plan, seed_case(application, course_plan.case_data), "approved"
        )
        phys = api_client(application, "phys")

        # Fraction 1 with the source of the plan, chosen by serial: decay only.
        old = {"at_utc": DAY1, "fraction": 1, "source_serial": "TEST-IR-0001"}
        r = phys.post(f"/api/plans/{plan_id}/console", json=old)
        assert r.status_code == 200, r.text
        values = r.json()
        assert [f["name"] for f in values["factors"]] == ["source decay"]
        body = _delivery(values, DAY1, 1) | {"conditions": old}
        r = phys.post(f"/api/plans/{plan_id}/deliveries", json=body)
        assert r.status_code == 201, r.text
        assert r.json()["treatment_session"]["source"] == {
            "serial": "TEST-IR-0001",
            "air_kerma_strength_u": PLAN_SK_U,
            "reference_utc": "2026-11-02T11:00:00+00:00",
            "exchanged_since_plan": False,
        }

        # Fraction 2 after the exchange, with the server's current record (the default).
        values = _console(phys, plan_id, AFTER_EXCHANGE, 2)
        assert [f["name"] for f in values["factors"]] == ["source exchange and decay"]
        assert any("source exchanged since the plan" in w for w in values["warnings"])
        today_u = NEW_SK_U * 2.0 ** (-2.0 / ICRP107_HALF_LIFE_D)
        assert values["strength_today_u"] == pytest.approx(today_u, rel=1e-9)
        for planned, today in _dwells_today(values):
            assert today == pytest.approx(planned * PLAN_SK_U / today_u, rel=1e-9)
        # The times the old source would need on that day are refused ...
        stale_body = _delivery(values, AFTER_EXCHANGE, 2)
        r = phys.post(
            f"/api/plans/{plan_id}/console",
            json={"at_utc": AFTER_EXCHANGE, "fraction": 2, "source_serial": "TEST-IR-0001"},
        )
        old_day = r.json()
        stale_body["dwell_times_s"] = [round(t, 1) for _, t in _dwells_today(old_day)]
        stale_body["time_min"] = old_day["due"]["today"] / 60.0
        r = phys.post(f"/api/plans/{plan_id}/deliveries", json=stale_body)
        assert r.status_code == 422
        assert any(p.startswith("dwell 1 ") for p in r.json()["problems"])
        # ... the new source's are recorded, with the source they are for.
        r = phys.post(f"/api/plans/{plan_id}/deliveries", json=_delivery(values, AFTER_EXCHANGE, 2))
        assert r.status_code == 201, r.text
        recorded = r.json()
        assert recorded["treatment_session"]["source"] == {
            "serial": "TEST-IR-0002",
            "air_kerma_strength_u": NEW_SK_U,
            "reference_utc": "2026-11-30T11:00:00+00:00",
            "exchanged_since_plan": True,
        }
        assert recorded["session_scale"] == pytest.approx(PLAN_SK_U / today_u, rel=1e-9)
        assert recorded["treatment_session"]["fraction"] == 2

        # The page's console form: the current source by default, another by its serial.
        token = page_csrf(phys, f"/plans/{plan_id}")
        form = {"csrf_token": token, "session_at": "2026-12-03T11:00", "session_fraction": "3"}
        shown = html.unescape(phys.post(f"/plans/{plan_id}/console", data=form).text)
        assert 'data-testid="console-source"' in shown
        assert "source exchange and decay" in shown and "TEST-IR-0002" in shown
        form["session_source"] = "TEST-IR-0001"
        shown = html.unescape(phys.post(f"/plans/{plan_id}/console", data=form).text)
        assert "source exchange and decay" not in shown and "source decay" in shown

        # A serial the server has no record of is refused.
        r = phys.post(
            f"/api/plans/{plan_id}/console",
            json={"at_utc": AFTER_EXCHANGE, "fraction": 3, "source_serial": "NOPE"},
        )
        assert r.status_code == 422
        assert "not one of the server's HDR source records" in r.text


# ------------------------------------------------------------------------ screenshots


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_screenshots_of_the_hdr_console(
    app: FastAPI, course_plan: DemoPlan, tmp_path: Path
) -> None:
    import playwright.sync_api as playwright_api
    import uvicorn

    # The pages are rendered in Chromium on every run; kept in docs/ only when asked for.
    folder = Path(os.environ.get("OPENIORT_WEB_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    plan_id = seed_plan(app, course_plan, seed_case(app, course_plan.case_data), "approved")
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.1)
    chromium = os.environ.get("OPENIORT_CHROMIUM", "/usr/bin/chromium")
    try:
        with playwright_api.sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=chromium, headless=True, args=["--no-sandbox"]
            )
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            url = f"http://127.0.0.1:{port}"
            page.goto(url + "/login")
            page.fill("input[name=username]", "phys")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.goto(f"{url}/plans/{plan_id}")
            page.fill("input[name=session_at]", "2026-12-02T11:00")
            page.click('[data-testid="console-compute"]')
            page.wait_for_selector('[data-testid="console-today-value"]')
            page.locator("details").first.evaluate("d => d.open = true")
            page.locator("section.console").screenshot(path=str(folder / "web-hdr-console.png"))
            page.locator('[data-testid="console-today"]').screenshot(
                path=str(folder / "web-hdr-console-today.png")
            )
            report = tmp_path / "report.html"
            report.write_text((course_plan.folder / "report.html").read_text())
            page.goto(report.as_uri())
            page.evaluate("() => window.scrollTo(0, 0)")  # boxes in page coordinates
            # the dwell table and the balloon quality that follows it
            box = page.locator("#balloon-quality ~ table").first.bounding_box()
            head = page.locator("#dwell-table").bounding_box()
            assert box is not None and head is not None
            page.screenshot(
                path=str(folder / "report-hdr-dwell-table.png"),
                full_page=True,
                clip={
                    "x": 0,
                    "y": head["y"] - 10,
                    "width": 1280,
                    "height": box["y"] + box["height"] - head["y"] + 20,
                },
            )
            browser.close()
    finally:
        server.should_exit = True
        thread.join(10)
