"""The 50 kV source's daily checks and the delivery's need of one (issue 15, item 6).

Output factor = reading x k_TP / reference reading, k_TP = (P_ref / P) x (T / T_ref) in kelvin
(IAEA TRS-398 section 4.2, the usual correction of a vented chamber), computed by hand below.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.orm import Session

from openiort.records import (
    DeliveryCheckError,
    Plan,
    RecordsValueError,
    User,
    approve_plan,
    record_delivery,
    review_plan,
    store_plan,
)
from openiort.records.audit import entries
from openiort.records.models import SourceOutputCheck, utcnow
from openiort.records.qa import (
    output_factor,
    record_xray_isotropy_check,
    record_xray_output_check,
    same_day_output_check,
)

PlanFactory = Callable[..., dict[str, Any]]
SERIAL = "XRS-TEST-1"
PLANNED_MIN = 24.6


def _xray_plan_json(make_plan_json: PlanFactory, serial: str | None = SERIAL) -> dict[str, Any]:
    delivery = {
        "technique": "xray",
        "applicator_diameter_cm": 3.5,
        "treatment_time_min": PLANNED_MIN,
        "prescription_gy": 20.0,
        "dose_definition": "TARGIT",
        "device": {
            "name": "clinic source",
            "status": "department",
            "serial": serial,
            "version": "test-1",
            "effective_date": "2026-01-20",
            "commissioned_by": "test",
            "sha256": "0" * 64,
        },
    }
    return make_plan_json(delivery=delivery)


def _approved(session: Session, users: dict[str, User], case_id: int, pj: dict[str, Any]) -> Plan:
    plan = store_plan(session, users["phys"], case_id, pj)
    review_plan(session, users["phys"], plan.id)
    approve_plan(session, users["onc"], plan.id)
    session.commit()
    return plan


def _check(session: Session, users: dict[str, User], **over: Any) -> SourceOutputCheck:
    values: dict[str, Any] = {
        "source_serial": SERIAL,
        "chamber_serial": "PTW-34013-0525",
        "reading": 10.0,
        "reference_reading": 10.0,
        "unit": "nC",
        "pressure_hpa": 1013.25,
        "temperature_c": 20.0,
        "tolerance_pct": 5.0,
    }
    values.update(over)
    check = record_xray_output_check(session, users["phys"], **values)
    session.commit()
    return check


def test_output_check_corrects_the_reading_to_reference_air(
    session: Session, users: dict[str, User]
) -> None:
    check = _check(
        session,
        users,
        reading=10.0,
        reference_reading=10.2,
        pressure_hpa=1000.0,
        temperature_c=22.0,
    )
    k_tp = (1013.25 / 1000.0) * (295.15 / 293.15)  # by hand
    assert check.details is not None
    assert check.details["k_tp"] == pytest.approx(k_tp, rel=1e-12)
    assert output_factor(check) == pytest.approx(10.0 * k_tp / 10.2, rel=1e-12)
    assert check.details["chamber_serial"] == "PTW-34013-0525" and check.device == SERIAL
    assert check.passed  # 10 x 1.0202 / 10.2 = 1.0002: well within 5 %
    (entry,) = [e for e in entries(session, entity="qa_output_check") if e.entity_id == check.id]
    assert entry.summary["passed"] is True


@pytest.mark.parametrize(
    ("field", "value"),
    [("pressure_hpa", 101.3), ("temperature_c", 293.0), ("reading", -1.0), ("chamber_serial", "")],
)
def test_bad_output_check_entries_are_refused(
    session: Session, users: dict[str, User], field: str, value: Any
) -> None:
    with pytest.raises(RecordsValueError, match=field):
        _check(session, users, **{field: value})
    session.rollback()
    assert session.query(SourceOutputCheck).count() == 0


def test_isotropy_check_keeps_the_array_serial(session: Session, users: dict[str, User]) -> None:
    iso = record_xray_isotropy_check(
        session,
        users["phys"],
        source_serial=SERIAL,
        array_serial="PDA-7",
        readings={"+x": 1.01, "-x": 0.99, "+y": 1.0, "-y": 1.0, "+z": 1.0},
        unit="relative",
        tolerance_pct=3.0,
    )
    assert iso.details == {"kind": "xray_photodiode_array", "array_serial": "PDA-7"}
    assert iso.passed and iso.max_deviation_pct == pytest.approx(1.0, rel=1e-9)


def test_delivery_without_the_days_check_is_refused(
    session: Session, users: dict[str, User], case_id: int, make_plan_json: PlanFactory
) -> None:
    plan = _approved(session, users, case_id, _xray_plan_json(make_plan_json))
    with pytest.raises(DeliveryCheckError, match="no output check of source XRS-TEST-1"):
        record_delivery(session, users["phys"], plan.id, applicator=3.5, time_min=PLANNED_MIN)
    session.rollback()
    # a check of another source, or one older than a day, does not count
    _check(session, users, source_serial="OTHER")
    _check(session, users, performed_at=utcnow() - dt.timedelta(hours=30))
    with pytest.raises(DeliveryCheckError, match="no output check"):
        record_delivery(session, users["phys"], plan.id, applicator=3.5, time_min=PLANNED_MIN)
    session.rollback()
    # an oncologist may not override; a physicist may, with a reason, audited
    with pytest.raises(DeliveryCheckError, match="only a physicist"):
        record_delivery(
            session,
            users["onc"],
            plan.id,
            applicator=3.5,
            time_min=PLANNED_MIN,
            output_check_override="chamber broken",
        )
    session.rollback()
    d = record_delivery(
        session,
        users["phys"],
        plan.id,
        applicator=3.5,
        time_min=PLANNED_MIN,
        output_check_override="adapter chamber at calibration; output checked on 2nd source",
    )
    session.commit()
    assert "overridden by phys" in d.warnings["output_check"]
    (entry,) = [e for e in entries(session, "plan", plan.id) if e.action == "output_check_override"]
    assert entry.entity_id == plan.id and entry.summary["reason"].startswith("adapter chamber")


def test_the_days_factor_goes_into_the_session(
    session: Session, users: dict[str, User], case_id: int, make_plan_json: PlanFactory
) -> None:
    plan = _approved(session, users, case_id, _xray_plan_json(make_plan_json))
    check = _check(session, users, reading=10.2)  # factor 1.02 at reference air
    assert same_day_output_check(session, SERIAL, "xray", utcnow()) is not None
    today_min = PLANNED_MIN / 1.02  # the console's time after the device's own correction
    with pytest.raises(DeliveryCheckError):  # the reference time is not the day's
        record_delivery(session, users["phys"], plan.id, applicator=3.5, time_min=PLANNED_MIN)
    session.rollback()
    with pytest.raises(DeliveryCheckError, match=r"output check .* gives 1.0200"):
        from openiort.session import make_session

        record_delivery(
            session,
            users["phys"],
            plan.id,
            applicator=3.5,
            time_min=today_min,
            conditions=make_session(utcnow(), output_factor=1.05),
        )
    session.rollback()
    d = record_delivery(session, users["phys"], plan.id, applicator=3.5, time_min=today_min)
    session.commit()
    assert d.output_check_id == check.id
    assert d.treatment_session is not None
    assert d.treatment_session["output_factor"] == pytest.approx(1.02, rel=1e-12)
    assert "output_check" not in d.warnings


def test_a_failed_check_after_a_passing_one_stops_the_source(
    session: Session, users: dict[str, User], case_id: int, make_plan_json: PlanFactory
) -> None:
    plan = _approved(session, users, case_id, _xray_plan_json(make_plan_json))
    _check(session, users, performed_at=utcnow() - dt.timedelta(hours=2))
    failed = _check(session, users, reading=11.0)  # +10 % beyond 5 %
    assert not failed.passed
    with pytest.raises(DeliveryCheckError, match=f"output check {failed.id} failed"):
        record_delivery(session, users["phys"], plan.id, applicator=3.5, time_min=PLANNED_MIN / 1.1)
