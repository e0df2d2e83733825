"""The 50 kV daily checks from the web (issue 15, item 6): the QA page and the JSON API record
them, and an x-ray delivery without the day's output check of its source is refused on every
route unless a physicist overrides with a reason; with a check its output factor is applied."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI
from web_testkit import DemoPlan, api_client, page_csrf, seed_case, seed_plan

OUTPUT = {
    "chamber_serial": "PTW-34013-0525",
    "reading": 10.2,  # at reference air: output factor 1.02
    "reference_reading": 10.0,
    "unit": "nC",
    "pressure_hpa": 1013.25,
    "temperature_c": 20.0,
    "tolerance_pct": 5.0,
}


def _serial(demo_plan: DemoPlan) -> str:
    return str(demo_plan.plan_json["delivery"]["device"]["serial"])


def test_api_records_both_checks_and_lists_them(app: FastAPI, demo_plan: DemoPlan) -> None:
    phys = api_client(app, "phys")
    r = phys.post("/api/qa/output", json={**OUTPUT, "source_serial": _serial(demo_plan)})
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["output_factor"] == pytest.approx(1.02, rel=1e-12) and out["passed"]
    assert out["details"]["chamber_serial"] == "PTW-34013-0525"
    r = phys.post(
        "/api/qa/isotropy",
        json={
            "source_serial": _serial(demo_plan),
            "array_serial": "PDA-7",
            "readings": {"+x": 1.0, "-x": 1.0, "+y": 1.02, "-y": 0.98, "+z": 1.0},
            "tolerance_pct": 3.0,
        },
    )
    assert r.status_code == 201 and r.json()["details"]["array_serial"] == "PDA-7"
    listed = api_client(app, "onc").get("/api/qa").json()  # any user reads
    assert [c["check_id"] for c in listed["output_checks"]] == [out["check_id"]]
    assert len(listed["isotropy_checks"]) == 1
    # an oncologist may not record; implausible air is refused with the field named
    onc = api_client(app, "onc")
    assert onc.post("/api/qa/output", json={**OUTPUT, "source_serial": "X"}).status_code == 403
    bad = phys.post("/api/qa/output", json={**OUTPUT, "source_serial": "X", "pressure_hpa": 101.3})
    assert bad.status_code == 422 and "pressure_hpa" in bad.text


def test_page_records_an_output_check(app: FastAPI, demo_plan: DemoPlan) -> None:
    phys = api_client(app, "phys")
    token = page_csrf(phys, "/qa")
    form: dict[str, Any] = {
        **OUTPUT,
        "csrf_token": token,
        "source_serial": _serial(demo_plan),
        "reference_pressure_hpa": "1013.25",
        "reference_temperature_c": "20",
    }
    r = phys.post("/qa/output", data={**form, "reading": "ten"})
    assert r.status_code == 422 and "is not a number" in r.text and "qa-errors" in r.text
    r = phys.post("/qa/output", data=form, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/qa?msg=qa-recorded"
    page = phys.get(r.headers["location"]).text
    assert "QA check recorded." in page and "1.0200" in page and "PTW-34013-0525" in page


def test_xray_delivery_needs_the_days_output_check(app: FastAPI, demo_plan: DemoPlan) -> None:
    case_id = seed_case(app, demo_plan.case_data)
    plan_id = seed_plan(app, demo_plan, case_id, "approved", daily_output_check=False)
    phys = api_client(app, "phys")
    planned_min = demo_plan.plan_json["delivery"]["treatment_time_min"]
    diameter = f"{demo_plan.plan_json['applicator_diameter_cm']:g}"
    entry = {"applicator": diameter, "time_min": planned_min}
    # API: refused, naming the source and how to record the check
    r = phys.post(f"/api/plans/{plan_id}/deliveries", json=entry)
    assert r.status_code == 422 and "no output check of source TEST-XRS-0001" in r.text
    # page: refused too
    token = page_csrf(phys, f"/plans/{plan_id}")
    r = phys.post(
        f"/plans/{plan_id}/deliveries",
        data={"csrf_token": token, "applicator": diameter, "time_min": f"{planned_min:.6f}"},
    )
    assert r.status_code == 422
    errors = re.findall(r"<li>([^<]+)</li>", r.text.split('data-testid="delivery-errors"')[1])
    assert any("no output check of source" in e for e in errors)
    # the day's check (factor 1.02): the console time after the device's correction passes
    assert (
        phys.post(
            "/api/qa/output", json={**OUTPUT, "source_serial": _serial(demo_plan)}
        ).status_code
        == 201
    )
    r = phys.post(
        f"/api/plans/{plan_id}/deliveries", json={**entry, "time_min": planned_min / 1.02}
    )
    assert r.status_code == 201, r.text
    d = r.json()
    assert d["output_check_id"] is not None
    assert d["treatment_session"]["output_factor"] == pytest.approx(1.02, rel=1e-12)


def test_physicist_override_is_audited(app: FastAPI, demo_plan: DemoPlan) -> None:
    case_id = seed_case(app, demo_plan.case_data)
    plan_id = seed_plan(app, demo_plan, case_id, "approved", daily_output_check=False)
    planned_min = demo_plan.plan_json["delivery"]["treatment_time_min"]
    entry = {
        "applicator": f"{demo_plan.plan_json['applicator_diameter_cm']:g}",
        "time_min": planned_min,
        "output_check_override": "probe adapter at repair; output confirmed in water phantom",
    }
    onc = api_client(app, "onc")
    r = onc.post(f"/api/plans/{plan_id}/deliveries", json=entry)
    assert r.status_code == 422 and "only a physicist" in r.text
    r = api_client(app, "phys").post(f"/api/plans/{plan_id}/deliveries", json=entry)
    assert r.status_code == 201, r.text
    assert "overridden by phys" in r.json()["warnings"]["output_check"]
