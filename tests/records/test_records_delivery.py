"""Deliveries on both backends: console checks, interruptions, output checks, in-vivo readings.

Expected remainders are computed by hand from the plan values in conftest._plan_json: the
delivered share of a plan is the given time (or MU) over the planned time (or MU), and the
remaining dose is the prescription times the share not yet given (dose proportional to
beam-on time at constant output, or to monitor units).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from openiort.records import (
    DeliveryCheckError,
    LifecycleError,
    PermissionDeniedError,
    Plan,
    RecordsValueError,
    TamperedPlanError,
    TamperedRecordError,
    User,
    approve_plan,
    record_delivery,
    record_invivo_reading,
    record_output_check,
    remaining,
    review_plan,
    store_plan,
)
from openiort.records.audit import entries
from openiort.records.models import utcnow

PlanFactory = Callable[..., dict[str, Any]]
# Floating-point slack only: every expected value below is exact arithmetic on the inputs.
REL = 1e-9


def _approved(
    session: Session, users: dict[str, User], case_id: int, plan_json: dict[str, Any]
) -> Plan:
    plan = store_plan(session, users["phys"], case_id, plan_json)
    review_plan(session, users["phys"], plan.id)
    approve_plan(session, users["onc"], plan.id)
    session.commit()
    return plan


def _output_check(session: Session, users: dict[str, User], **over: Any) -> int:
    values: dict[str, Any] = {
        "device": "INTRABEAM 507",
        "technique": "xray",
        "measured_value": 1.01,
        "expected_value": 1.0,
        "unit": "Gy/min",
        "tolerance_pct": 2.0,
    }
    values.update(over)
    check = record_output_check(session, users["phys"], **values)
    session.commit()
    return check.id


def test_matching_xray_delivery_completes_the_plan(
    session: Session, users: dict[str, User], case_id: int, make_plan_json: PlanFactory
) -> None:
    plan = _approved(session, users, case_id, make_plan_json())
    check_id = _output_check(session, users)
    d = record_delivery(
        session,
        users["phys"],
        plan.id,
        applicator="3.5 cm",
        time_min=24.6,
        output_check_id=check_id,
    )
    session.commit()
    assert plan.status == "delivered" and plan.delivered_at is not None
    assert d.set_time_s == pytest.approx(24.6 * 60, rel=REL)
    assert d.given_time_s == d.set_time_s and not d.interrupted
    assert (d.delivered_fraction, d.cumulative_fraction, d.remaining_dose_gy) == (1.0, 1.0, 0.0)
    assert d.remaining_time_s == 0.0 and d.warnings == {}
    assert d.applicator == "3.5 cm"
    assert [e.action for e in entries(session, "plan", plan.id)][-1] == "deliver"


def test_console_mismatches_are_named_and_nothing_is_recorded(
    session: Session, users: dict[str, User], case_id: int, make_plan_json: PlanFactory
) -> None:
    plan = _approved(session, users, case_id, make_plan_json())
    with pytest.raises(DeliveryCheckError) as info:
        record_delivery(session, users["phys"], plan.id, applicator=4.0, time_min=26.6)
    session.rollback()
    assert info.value.mismatches == [
        "applicator: entered 4 cm, plan requires 3.5 cm",
        "treatment time: entered 26:36.0 (1596.0 s), plan requires 24:36.0 (1476.0 s)",
    ]
    # Within half a console step (0.5 s) of the plan is a match; 1 s off is not.
    with pytest.raises(DeliveryCheckError, match="treatment time"):
        record_delivery(session, users["phys"], plan.id, applicator=3.5, time_min=24.6 + 1 / 60)
    session.rollback()
    with pytest.raises(DeliveryCheckError, match="x-ray plans have no energy setting"):
        record_delivery(
            session, users["phys"], plan.id, applicator=3.5, time_min=24.6, energy_mev=9
        )
    session.rollback()
    session.expire_all()
    assert plan.status == "approved" and plan.deliveries == []
    refused = [e for e in entries(session, "plan", plan.id) if e.action == "delivery_refused"]
    assert len(refused) == 3 and "applicator" in refused[0].summary["mismatches"][0]


def test_interrupted_xray_delivery_records_what_remains(
    session: Session, users: dict[str, User], case_id: int, make_plan_json: PlanFactory
) -> None:
    plan = _approved(session, users, case_id, make_plan_json())
    first = record_delivery(
        session,
        users["phys"],
        plan.id,
        applicator=3.5,
        time_min=24.6,
        interrupted=True,
        given_time_min=10.0,
    )
    session.commit()
    assert plan.status == "approved"
    # 10 of 24.6 min given: 14.6 min = 876 s remain, with 20 Gy x 14.6/24.6 of the dose.
    assert first.delivered_fraction == pytest.approx(10.0 / 24.6, rel=REL)
    assert first.remaining_time_s == pytest.approx(876.0, rel=REL)
    assert first.remaining_dose_gy == pytest.approx(20.0 * 14.6 / 24.6, rel=REL)
    left = remaining(plan)
    assert left.time_s == pytest.approx(876.0, rel=REL) and not left.complete
    # Resuming requires the remainder at the console, not the original time.
    with pytest.raises(DeliveryCheckError, match="remainder after the interrupted session"):
        record_delivery(session, users["phys"], plan.id, applicator=3.5, time_min=24.6)
    session.rollback()
    second = record_delivery(session, users["phys"], plan.id, applicator=3.5, time_min=14.6)
    session.commit()
    assert second.sequence == 2
    assert second.cumulative_fraction == 1.0 and second.remaining_dose_gy == 0.0
    assert plan.status == "delivered"
    actions = [e.action for e in entries(session, "plan", plan.id)]
    assert actions[-3:] == ["deliver_interrupted", "delivery_refused", "deliver"]


def test_interruption_needs_a_consistent_given_value(
    session: Session, users: dict[str, User], case_id: int, make_plan_json: PlanFactory
) -> None:
    plan = _approved(session, users, case_id, make_plan_json())
    with pytest.raises(RecordsValueError, match="enter the time actually given"):
        record_delivery(
            session, users["phys"], plan.id, applicator=3.5, time_min=24.6, interrupted=True
        )
    with pytest.raises(RecordsValueError, match="must be less than the time set"):
        record_delivery(
            session,
            users["phys"],
            plan.id,
            applicator=3.5,
            time_min=24.6,
            interrupted=True,
            given_time_min=24.6,
        )
    with pytest.raises(RecordsValueError, match="record the delivery as interrupted"):
        record_delivery(
            session, users["phys"], plan.id, applicator=3.5, time_min=24.6, given_time_min=20.0
        )


def test_electron_delivery_by_monitor_units_and_energy(
    session: Session, users: dict[str, User], case_id: int, make_plan_json: PlanFactory
) -> None:
    plan = _approved(session, users, case_id, make_plan_json("electron"))
    with pytest.raises(DeliveryCheckError) as info:
        record_delivery(
            session,
            users["onc"],
            plan.id,
            applicator=5,
            monitor_units=2490,
            energy_mev=10,
            bevel_deg=0,
        )
    session.rollback()
    assert info.value.mismatches == [
        "monitor units: entered 2490 MU, plan requires 2480 MU",
        "energy: entered 10 MeV, plan requires 9 MeV",
        "bevel: entered 0 degrees, plan requires 15 degrees",
    ]
    with pytest.raises(DeliveryCheckError, match="delivered by monitor units, not time"):
        record_delivery(
            session,
            users["onc"],
            plan.id,
            applicator=5,
            monitor_units=2480,
            energy_mev=9,
            time_min=2,
        )
    session.rollback()
    d = record_delivery(
        session,
        users["onc"],
        plan.id,
        applicator=5,
        monitor_units=2480,
        energy_mev=9,
        interrupted=True,
        given_monitor_units=1000,
    )
    session.commit()
    # 1000 of 2480 MU: 1480 MU remain, carrying 21 Gy x 1480/2480.
    assert d.remaining_monitor_units == pytest.approx(1480.0, rel=REL)
    assert d.remaining_dose_gy == pytest.approx(21.0 * 1480 / 2480, rel=REL)
    assert d.energy_mev == 9 and d.set_monitor_units == 2480


def test_hdr_delivery_by_applicator_name_and_time(
    session: Session, users: dict[str, User], case_id: int, make_plan_json: PlanFactory
) -> None:
    plan = _approved(session, users, case_id, make_plan_json("hdr"))
    with pytest.raises(
        DeliveryCheckError, match="applicator: entered 'surface', plan requires 'balloon'"
    ):
        record_delivery(session, users["phys"], plan.id, applicator="surface", time_min=5.0)
    session.rollback()
    d = record_delivery(
        session,
        users["phys"],
        plan.id,
        applicator="Balloon",
        time_min=5.0,
        interrupted=True,
        given_time_min=2.0,
    )
    # 120 of 300 s given: 180 s and 10 Gy x 0.6 remain; HDR remainder carries a caveat.
    assert d.remaining_time_s == pytest.approx(180.0, rel=REL)
    assert d.remaining_dose_gy == pytest.approx(6.0, rel=REL)
    assert "remaining_dose" in d.warnings and "output_check" in d.warnings


def test_only_an_approved_current_untampered_plan_is_delivered(
    session: Session, users: dict[str, User], case_id: int, make_plan_json: PlanFactory
) -> None:
    draft = store_plan(session, users["phys"], case_id, make_plan_json())
    with pytest.raises(LifecycleError, match="approve it first"):
        record_delivery(session, users["phys"], draft.id, applicator=3.5, time_min=24.6)
    session.rollback()
    old = _approved(session, users, case_id, make_plan_json())
    new = _approved(session, users, case_id, make_plan_json(treatment_time_min=25.0))
    with pytest.raises(
        LifecycleError, match=f"superseded by approved version {new.version_number}"
    ):
        record_delivery(session, users["phys"], old.id, applicator=3.5, time_min=24.6)
    session.rollback()
    with pytest.raises(PermissionDeniedError, match="may not record deliveries"):
        record_delivery(session, users["surg"], new.id, applicator=3.5, time_min=25.0)
    session.rollback()
    delivered = _approved(session, users, case_id, make_plan_json(treatment_time_min=26.0))
    record_delivery(session, users["phys"], delivered.id, applicator=3.5, time_min=26.0)
    session.commit()
    with pytest.raises(LifecycleError, match="already been delivered"):
        record_delivery(session, users["phys"], delivered.id, applicator=3.5, time_min=26.0)
    session.rollback()
    # Last: a tampered plan also breaks its patient's record (test_records_chain.py).
    session.execute(
        sa.update(Plan)
        .where(Plan.id == new.id)
        .values(plan_json=make_plan_json(treatment_time_min=35.0))
    )
    session.commit()
    session.expire_all()
    with pytest.raises(TamperedPlanError):
        record_delivery(session, users["phys"], new.id, applicator=3.5, time_min=35.0)


def test_output_check_must_pass_be_recent_and_match(
    session: Session, users: dict[str, User], case_id: int, make_plan_json: PlanFactory
) -> None:
    plan = _approved(session, users, case_id, make_plan_json())
    failed = _output_check(session, users, measured_value=1.03)  # +3 % against 2 %
    stale = _output_check(session, users, performed_at=utcnow() - dt.timedelta(hours=25))
    electron = _output_check(session, users, technique="electron", unit="cGy/MU")
    for check_id, message in (
        (failed, "failed (deviation +3.00 % beyond ±2 %)"),
        (stale, "25.0 h old"),
        (electron, "is of the electron source, but the plan is x-ray"),
    ):
        with pytest.raises(DeliveryCheckError, match=re.escape(message)):
            record_delivery(
                session,
                users["phys"],
                plan.id,
                applicator=3.5,
                time_min=24.6,
                output_check_id=check_id,
            )
        session.rollback()


def test_invivo_readings_are_judged_against_their_tolerance(
    session: Session, users: dict[str, User], case_id: int, make_plan_json: PlanFactory
) -> None:
    plan = _approved(session, users, case_id, make_plan_json())
    d = record_delivery(session, users["phys"], plan.id, applicator=3.5, time_min=24.6)
    ok = record_invivo_reading(
        session,
        users["phys"],
        d.id,
        detector="MOSFET 3",
        position="skin, 10 mm",
        measured_dose_gy=4.8,
        expected_dose_gy=5.0,
        tolerance_pct=5.0,
    )
    bad = record_invivo_reading(
        session,
        users["phys"],
        d.id,
        detector="TLD 12",
        position="skin, 10 mm",
        measured_dose_gy=5.6,
        expected_dose_gy=5.0,
        tolerance_pct=5.0,
    )
    session.commit()
    # (4.8/5 - 1) = -4 % within 5 %; (5.6/5 - 1) = +12 % outside.
    assert ok.deviation_pct == pytest.approx(-4.0, rel=REL) and ok.passed
    assert bad.deviation_pct == pytest.approx(12.0, rel=REL) and not bad.passed
    session.refresh(d)
    assert [r.detector for r in d.invivo_readings] == ["MOSFET 3", "TLD 12"]
    with pytest.raises(PermissionDeniedError):
        record_invivo_reading(
            session,
            users["view"],
            d.id,
            detector="x",
            position="y",
            measured_dose_gy=1,
            expected_dose_gy=1,
            tolerance_pct=5,
        )
    assert len(entries(session, "invivo_reading")) == 2


def test_a_plan_pushed_back_to_approved_is_not_delivered_twice(
    session: Session, users: dict[str, User], case_id: int, make_plan_json: PlanFactory
) -> None:
    plan = _approved(session, users, case_id, make_plan_json())
    record_delivery(session, users["phys"], plan.id, applicator=3.5, time_min=24.6)
    session.commit()
    session.execute(sa.update(Plan).where(Plan.id == plan.id).values(status="approved"))
    session.commit()
    session.expire_all()
    # The record chain finds the status change first (the plan row differs from the one the
    # delivery event recorded); the count of deliveries would refuse it next.
    with pytest.raises(TamperedRecordError, match=f"plan {plan.id} was changed"):
        record_delivery(session, users["phys"], plan.id, applicator=3.5, time_min=24.6)
