"""Safety of the treatment itself (issue 17): four-eyes approval by default (a department may
turn it off, audited), a case edited after approval blocks delivery (a name correction does
not), and a plan of one fraction accepts one delivery plus the remainder of an interrupted one.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from openiort.records import (
    LifecycleError,
    PermissionDeniedError,
    Plan,
    User,
    approve_plan,
    chain,
    record_delivery,
    review_plan,
    store_plan,
    update_case,
    update_patient,
)
from openiort.records import department as dept
from openiort.records.audit import entries
from openiort.records.cases import get_case
from openiort.records.commands import db_app
from openiort.records.errors import RecordsValueError

PlanFactory = Callable[..., dict[str, Any]]


def _reviewed(session: Session, users: dict[str, User], case_id: int, plan_json: Any) -> Plan:
    plan = store_plan(session, users["phys"], case_id, plan_json)
    review_plan(session, users["phys"], plan.id)
    session.commit()
    return plan


def test_four_eyes_is_the_default(
    session: Session, users: dict[str, User], case_id: int, make_plan_json: PlanFactory
) -> None:
    plan = _reviewed(session, users, case_id, make_plan_json())
    with pytest.raises(PermissionDeniedError, match="four-eyes"):
        approve_plan(session, users["phys"], plan.id)  # wrote and reviewed it
    session.rollback()
    assert approve_plan(session, users["onc"], plan.id).status == "approved"


def test_a_department_turns_four_eyes_off_audited(
    session: Session,
    users: dict[str, User],
    case_id: int,
    make_plan_json: PlanFactory,
    db_url: str,
) -> None:
    with pytest.raises(RecordsValueError, match="reason"):
        dept.set_setting(session, "four-eyes", False)
    session.rollback()
    runner = CliRunner()
    shown = runner.invoke(db_app, ["setting", "four-eyes", "--database-url", db_url])
    assert shown.output.strip() == "four-eyes: on"
    off = runner.invoke(
        db_app,
        [
            "setting",
            "four-eyes",
            "off",
            "--reason",
            "single physicist on call",
            "--database-url",
            db_url,
        ],
    )
    assert off.exit_code == 0, off.output
    (entry,) = entries(session, dept.FOUR_EYES)
    assert entry.chain == chain.DEPARTMENT and entry.summary == {
        "value": False,
        "from": True,
        "reason": "single physicist on call",
    }
    plan = _reviewed(session, users, case_id, make_plan_json())
    assert approve_plan(session, users["phys"], plan.id).status == "approved"
    session.commit()
    assert [r.chain for r in chain.verify(session) if not r.ok] == []


def test_a_case_edit_after_approval_blocks_delivery_a_name_fix_does_not(
    session: Session, users: dict[str, User], case_id: int, make_plan_json: PlanFactory
) -> None:
    plan = _reviewed(session, users, case_id, make_plan_json())
    approve_plan(session, users["onc"], plan.id)
    session.commit()
    case = get_case(session, case_id)
    # The patient's name is not part of the case: correcting it changes nothing.
    update_patient(session, users["surg"], case.patient_id, name="Jane Corrected")
    session.commit()
    data = copy.deepcopy(case.data)
    data["preoperative"]["laterality"] = "right"
    update_case(session, users["surg"], case_id, case.version, data)
    session.commit()
    with pytest.raises(LifecycleError, match=r"edited since \(preoperative.laterality\)"):
        record_delivery(session, users["phys"], plan.id, applicator=3.5, time_min=24.6)
    session.rollback()
    # A plan computed from the current case is delivered as usual.
    current = _reviewed(session, users, case_id, make_plan_json(treatment_time_min=25.0))
    approve_plan(session, users["onc"], current.id)
    session.commit()
    delivery = record_delivery(session, users["phys"], current.id, applicator=3.5, time_min=25.0)
    assert delivery.plan.status == "delivered"


def test_a_single_fraction_plan_takes_one_delivery_and_an_interrupted_remainder(
    session: Session, users: dict[str, User], case_id: int, make_plan_json: PlanFactory
) -> None:
    plan = _reviewed(session, users, case_id, make_plan_json())
    approve_plan(session, users["onc"], plan.id)
    session.commit()
    record_delivery(
        session,
        users["phys"],
        plan.id,
        applicator=3.5,
        time_min=24.6,
        interrupted=True,
        given_time_min=10.0,
    )
    session.commit()
    last = record_delivery(session, users["phys"], plan.id, applicator=3.5, time_min=14.6)
    session.commit()
    assert last.cumulative_fraction == pytest.approx(1.0) and plan.status == "delivered"
    for time_min in (24.6, 14.6):
        with pytest.raises(LifecycleError, match="already been delivered"):
            record_delivery(session, users["phys"], plan.id, applicator=3.5, time_min=time_min)
        session.rollback()
