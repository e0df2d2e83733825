"""Real plan JSON (PlanResult.to_json_dict of the example cases) through the whole lifecycle.

tests/records/data/plan_*.json were written by `openiort.pipeline.plan_case` for
examples/left_upper_outer_30mm.yaml (x-ray), left_electron_eliot.yaml (electron) and
left_hdr_balloon_30mm.yaml (HDR); planning takes seconds, so the tests read the stored output.
They check that a full-size plan survives storage unchanged on both backends (its canonical
hash after reloading equals the hash of the file) and that its own console values pass.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.orm import Session

from openiort.records import (
    ExampleDataError,
    approve_plan,
    create_case,
    create_patient,
    get_user,
    load_plan,
    record_delivery,
    review_plan,
    sealed_plan_json,
    store_plan,
    verify_plan_json,
)
from openiort.records.seal import canonical_sha256

DATA = Path(__file__).parent / "data"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CASES = {
    "xray": "left_upper_outer_30mm.yaml",
    "electron": "left_electron_eliot.yaml",
    "hdr": "left_hdr_balloon_30mm.yaml",
}


def _console(plan: dict[str, Any]) -> dict[str, Any]:
    """The console entries a user would copy from the plan."""
    if plan["technique"] == "xray":
        return {
            "applicator": plan["applicator_diameter_cm"],
            "time_min": plan["treatment_time_min"],
        }
    if plan["technique"] == "electron":
        return {
            "applicator": f"{plan['applicator_diameter_cm']} cm",
            "monitor_units": plan["monitor_units"],
            "energy_mev": plan["energy_mev"],
            "bevel_deg": plan["bevel_deg"],
        }
    return {"applicator": plan["applicator"], "time_min": plan["total_time_s"] / 60}


def _as_department_plan(plan_json: dict[str, Any]) -> dict[str, Any]:
    """The stored plans used example device data, which may never be approved; the lifecycle
    tests mark them as the department's (the records layer reads the device status only)."""
    return {**plan_json, "device": {**plan_json["device"], "status": "department"}}


@pytest.mark.parametrize("technique", sorted(CASES))
def test_real_example_plans_cannot_be_approved(engine: sa.Engine, technique: str) -> None:
    plan_json = json.loads((DATA / f"plan_{technique}.json").read_text())
    case_data = yaml.safe_load((EXAMPLES / CASES[technique]).read_text())
    with Session(engine, expire_on_commit=False) as s:
        phys, onc = get_user(s, "phys"), get_user(s, "onc")
        patient = create_patient(s, phys, plan_json["case_id"])
        case = create_case(s, phys, patient.id, case_data)
        plan = store_plan(s, phys, case.id, plan_json)
        review_plan(s, phys, plan.id)
        with pytest.raises(ExampleDataError, match="example device data") as info:
            approve_plan(s, onc, plan.id)
        assert "load your" in str(info.value)  # says what to load instead
        assert plan.status == "reviewed"


@pytest.mark.parametrize("technique", sorted(CASES))
def test_real_plan_round_trips_seals_and_delivers(engine: sa.Engine, technique: str) -> None:
    plan_json = _as_department_plan(json.loads((DATA / f"plan_{technique}.json").read_text()))
    case_data = yaml.safe_load((EXAMPLES / CASES[technique]).read_text())
    assert plan_json["case_id"] == case_data["patient"]["id"]
    with Session(engine, expire_on_commit=False) as s:
        phys, onc = get_user(s, "phys"), get_user(s, "onc")
        patient = create_patient(s, phys, plan_json["case_id"])
        case = create_case(s, phys, patient.id, case_data)
        plan = store_plan(s, phys, case.id, plan_json)
        review_plan(s, phys, plan.id)
        approve_plan(s, onc, plan.id)
        s.commit()
        plan_id = plan.id
    with Session(engine, expire_on_commit=False) as s:
        stored = load_plan(s, plan_id)
        assert stored.plan_json == plan_json
        assert stored.canonical_sha256 == canonical_sha256(plan_json)
        verify_plan_json(json.loads(json.dumps(sealed_plan_json(stored))))
        delivery = record_delivery(s, get_user(s, "phys"), plan_id, **_console(plan_json))
        s.commit()
        assert stored.status == "delivered" and delivery.remaining_dose_gy == 0.0
