"""An HDR course recorded fraction by fraction against one sealed plan: the session of each
fraction, the interval between fractions, the dwell times and the balloon check."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.orm import Session

from openiort.delivery import parse_delivery
from openiort.records import (
    DeliveryCheckError,
    LifecycleError,
    Plan,
    User,
    approve_plan,
    record_delivery,
    remaining,
    review_plan,
    store_plan,
)
from openiort.session import make_session, session_console_values

PlanFactory = Callable[..., dict[str, Any]]
REFERENCE = dt.datetime(2026, 11, 2, 11, 0, tzinfo=dt.UTC)
DAY1 = dt.datetime(2026, 11, 10, 8, 0, tzinfo=dt.UTC)
BALLOON_OK = {"diameter_mm": 40.5, "skin_distance_mm": 8.0}


def _course_plan(make_plan_json: PlanFactory, fractions: int = 3) -> dict[str, Any]:
    delivery = {
        "technique": "hdr",
        "device": {
            "name": "TEST AFTERLOADER: GammaMed HDR 192Ir Plus",
            "status": "department",
            "serial": "TEST-IR-0001",
            "sha256": "0" * 64,
        },
        "source_id": "GammaMed_HDR_Plus",
        "applicator": "balloon",
        "air_kerma_strength_u": 40700.0,
        "strength_reference_utc": REFERENCE.isoformat(),
        "prescription_gy": 3.4,
        "dwells": [
            {
                "channel": 1,
                "position_mm": [0.0, 0.0, z],
                "direction": [0.0, 0.0, 1.0],
                "time_s": t,
                "from_tip_mm": 6.0 + 5.0 * i,
            }
            for i, (z, t) in enumerate(((5.0, 20.0), (0.0, 130.0), (-5.0, 20.0)))
        ],
        "fractions": fractions,
        "min_interval_h": 6.0,
    }
    return make_plan_json(
        "hdr",
        prescription={"dose_gy": 3.4, "dose_definition": None, "point": "10 mm"},
        total_time_s=170.0,
        treatment_time_min=170.0 / 60.0,
        delivery=delivery,
        applicator_geometry={"type": "balloon", "diameter_mm": 40.0},
    )


def _approved(session: Session, users: dict[str, User], case_id: int, pj: dict[str, Any]) -> Plan:
    plan = store_plan(session, users["phys"], case_id, pj)
    review_plan(session, users["phys"], plan.id)
    approve_plan(session, users["onc"], plan.id)
    session.commit()
    return plan


def _fraction(
    session: Session,
    users: dict[str, User],
    plan: Plan,
    at: dt.datetime,
    number: int,
    *,
    dwell_shift_s: float = 0.0,
    balloon: dict[str, float] | None = None,
) -> Any:
    conditions = make_session(at, fraction=number)
    values = session_console_values(parse_delivery(plan.plan_json["delivery"]), conditions)
    dwells = [x.today for x in values.settings if x.name.startswith("dwell ")]
    dwells[1] += dwell_shift_s
    delivery = record_delivery(
        session,
        users["phys"],
        plan.id,
        applicator="balloon",
        time_min=values.settings[-1].today / 60.0,
        delivered_at=at,
        conditions=conditions,
        dwell_times_s=[round(x, 1) for x in dwells],
        balloon_check=BALLOON_OK if balloon is None else balloon,
    )
    session.commit()
    return delivery


def test_a_course_is_recorded_fraction_by_fraction(
    session: Session, users: dict[str, User], case_id: int, make_plan_json: PlanFactory
) -> None:
    plan = _approved(session, users, case_id, _course_plan(make_plan_json))
    first = _fraction(session, users, plan, DAY1, 1)
    assert first.treatment_session["fraction"] == 1
    assert first.treatment_session["balloon_check"]["skin_distance_mm"] == 8.0
    left = remaining(plan)
    assert (left.fractions, left.fractions_done, left.complete) == (3, 1, False)
    assert left.time_s == pytest.approx(170.0)
    assert left.dose_gy == pytest.approx(3.4 * 2)
    assert first.delivered_fraction == pytest.approx(1 / 3)

    # A second fraction 4 h later, inside the 6 h minimum, is refused; nothing is recorded.
    with pytest.raises(DeliveryCheckError) as err:
        _fraction(session, users, plan, DAY1 + dt.timedelta(hours=4), 2)
    assert any("fraction interval: 4.00 h" in m for m in err.value.mismatches)
    session.rollback()
    assert remaining(plan).fractions_done == 1

    _fraction(session, users, plan, DAY1 + dt.timedelta(hours=6, minutes=30), 2)
    _fraction(session, users, plan, DAY1 + dt.timedelta(days=1), 3)
    session.refresh(plan)
    assert plan.status == "delivered"
    assert remaining(plan).complete

    # A fraction beyond the course is refused.
    with pytest.raises(LifecycleError):
        _fraction(session, users, plan, DAY1 + dt.timedelta(days=1, hours=7), 4)


def test_each_dwell_time_is_checked_against_the_session(
    session: Session, users: dict[str, User], case_id: int, make_plan_json: PlanFactory
) -> None:
    plan = _approved(session, users, case_id, _course_plan(make_plan_json))
    with pytest.raises(DeliveryCheckError) as err:
        _fraction(session, users, plan, DAY1, 1, dwell_shift_s=0.3)
    lines = [m for m in err.value.mismatches if m.startswith("dwell 2")]
    assert len(lines) == 1 and "11.0 mm from the tip" in lines[0] and "today" in lines[0]


def test_a_fraction_needs_its_session_number_and_balloon_check(
    session: Session, users: dict[str, User], case_id: int, make_plan_json: PlanFactory
) -> None:
    plan = _approved(session, users, case_id, _course_plan(make_plan_json))
    with pytest.raises(DeliveryCheckError) as err:
        _fraction(
            session, users, plan, DAY1, 2, balloon={"diameter_mm": 44.0, "skin_distance_mm": 4.0}
        )
    found = " | ".join(err.value.mismatches)
    assert "fraction: entered 2, the course is at fraction 1 of 3" in found
    assert "diameter 44.0 mm differs from the planned 40.0 mm" in found
    assert "under the protocol minimum 5 mm" in found
    session.rollback()
    with pytest.raises(DeliveryCheckError) as err:
        record_delivery(
            session,
            users["phys"],
            plan.id,
            applicator="balloon",
            time_min=170.0 / 60.0,
            delivered_at=DAY1,
        )
    assert any("enter the conditions of the day" in m for m in err.value.mismatches)


def test_a_single_fraction_balloon_plan_is_given_after_its_balloon_check(
    session: Session, users: dict[str, User], case_id: int, make_plan_json: PlanFactory
) -> None:
    """One fraction: the day's balloon diameter and skin distance are entered on the delivery
    as for each fraction of a course, checked against the plan and the protocol, and kept on
    the record (also without conditions of the day, checked at the reference strength)."""
    pj = _course_plan(make_plan_json, fractions=1)
    pj["delivery"].pop("min_interval_h")
    plan = _approved(session, users, case_id, pj)
    entry: dict[str, Any] = {"applicator": "balloon", "time_min": 170.0 / 60.0}
    with pytest.raises(DeliveryCheckError) as err:
        record_delivery(session, users["phys"], plan.id, delivered_at=DAY1, **entry)
    assert any(m.startswith("balloon check: enter") for m in err.value.mismatches)
    session.rollback()
    with pytest.raises(DeliveryCheckError) as err:
        record_delivery(
            session,
            users["phys"],
            plan.id,
            delivered_at=DAY1,
            balloon_check={"volume_cc": 33.5, "skin_distance_mm": 4.5},
            **entry,
        )
    assert any("under the protocol minimum 5 mm" in m for m in err.value.mismatches)
    session.rollback()
    given = record_delivery(
        session,
        users["phys"],
        plan.id,
        delivered_at=DAY1,
        balloon_check={"volume_cc": 33.5, "skin_distance_mm": 6.0},
        **entry,
    )
    check = given.treatment_session["balloon_check"]
    # 33.5 cc is a 40.0 mm sphere: (6 V / pi)^(1/3) = 39.99 mm
    assert check["diameter_mm"] == pytest.approx(39.99, abs=0.01)
    assert "under 7 mm" in given.warnings["balloon_check"]
    assert given.treatment_session["source"]["serial"] == "TEST-IR-0001"
    session.commit()
    session.refresh(plan)
    assert plan.status == "delivered"


def test_fractions_after_a_source_exchange_use_the_new_source(
    session: Session, users: dict[str, User], case_id: int, make_plan_json: PlanFactory
) -> None:
    """The plan's source TEST-IR-0001 (40700 U, 2 Nov) is replaced by TEST-IR-0002 (41200 U,
    30 Nov 11:00 UTC); fraction 2 on 2 Dec 11:00 UTC is due at plan time x 40700 /
    (41200 x 2^(-2 / 73.827)) and records the new source; without a date it is refused."""
    from openiort.session import SourceNow

    plan = _approved(session, users, case_id, _course_plan(make_plan_json))
    _fraction(session, users, plan, DAY1, 1)
    new = SourceNow(
        serial="TEST-IR-0002",
        air_kerma_strength_u=41200.0,
        reference_utc=dt.datetime(2026, 11, 30, 11, 0, tzinfo=dt.UTC),
    )
    at = dt.datetime(2026, 12, 2, 11, 0, tzinfo=dt.UTC)
    factor = 40700.0 / (41200.0 * 2.0 ** (-2.0 / 73.827))  # ICRP 107 half-life of Ir-192
    conditions = make_session(at, fraction=2)
    values = session_console_values(parse_delivery(plan.plan_json["delivery"]), conditions, new)
    dwells = [round(x.today, 1) for x in values.settings if x.name.startswith("dwell ")]
    assert dwells == [round(20.0 * factor, 1), round(130.0 * factor, 1), round(20.0 * factor, 1)]
    entry: dict[str, Any] = {
        "applicator": "balloon",
        "time_min": 170.0 * factor / 60.0,
        "delivered_at": at,
        "dwell_times_s": dwells,
        "balloon_check": BALLOON_OK,
        "source": new,
    }
    with pytest.raises(DeliveryCheckError) as err:
        record_delivery(session, users["phys"], plan.id, **entry)
    assert any("the afterloader's source is now TEST-IR-0002" in m for m in err.value.mismatches)
    session.rollback()
    second = record_delivery(session, users["phys"], plan.id, conditions=conditions, **entry)
    assert second.session_scale == pytest.approx(factor, rel=1e-9)
    assert second.treatment_session["source"] == {
        "serial": "TEST-IR-0002",
        "air_kerma_strength_u": 41200.0,
        "reference_utc": "2026-11-30T11:00:00+00:00",
        "exchanged_since_plan": True,
    }
    assert remaining(plan).fractions_done == 2
