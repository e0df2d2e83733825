"""Source QA records on both backends: deviations, tolerances and pass/fail."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session

from openiort.records import (
    PermissionDeniedError,
    RecordsValueError,
    User,
    latest_output_check,
    list_qa_checks,
    record_isotropy_check,
    record_output_check,
)
from openiort.records.audit import entries
from openiort.records.models import utcnow

# Floating-point slack only: expected deviations are exact arithmetic on the readings.
REL = 1e-9


@pytest.mark.parametrize(
    ("measured", "tolerance_pct", "deviation_pct", "passed"),
    [
        (1.015, 2.0, 1.5, True),
        (1.02, 2.0, 2.0, True),  # at the limit: limits are included
        (0.975, 2.0, -2.5, False),
        (1.03, 3.0, 3.0, True),
        (1.031, 3.0, 3.1, False),
    ],
)
def test_output_check_deviation_and_verdict(
    session: Session,
    users: dict[str, User],
    measured: float,
    tolerance_pct: float,
    deviation_pct: float,
    passed: bool,
) -> None:
    check = record_output_check(
        session,
        users["phys"],
        device="INTRABEAM 507",
        technique="xray",
        measured_value=measured,
        expected_value=1.0,
        unit="Gy/min",
        tolerance_pct=tolerance_pct,
    )
    session.commit()
    assert check.deviation_pct == pytest.approx(deviation_pct, rel=REL)
    assert check.passed is passed and check.tolerance_pct == tolerance_pct
    entry = entries(session, "qa_output_check", check.id)[0]
    assert entry.summary["passed"] is passed and entry.username == "phys"


def test_isotropy_check_against_the_mean(session: Session, users: dict[str, User]) -> None:
    readings = {"+x": 1.00, "-x": 0.98, "+y": 1.02, "-y": 1.00, "+z": 1.05}
    # Mean 1.01; the largest deviation is +z: 100 (1.05 / 1.01 - 1) = +3.96 %.
    worst = 100 * (1.05 / 1.01 - 1)
    lenient = record_isotropy_check(
        session, users["phys"], device="PDA", readings=readings, unit="nC", tolerance_pct=5.0
    )
    strict = record_isotropy_check(
        session, users["phys"], device="PDA", readings=readings, unit="nC", tolerance_pct=3.0
    )
    session.commit()
    assert lenient.mean_value == pytest.approx(1.01, rel=REL)
    assert lenient.max_deviation_pct == pytest.approx(worst, rel=REL)
    assert lenient.passed and not strict.passed
    assert lenient.readings == readings


def test_bad_qa_input_is_refused(session: Session, users: dict[str, User]) -> None:
    base = {
        "device": "LIAC 12",
        "technique": "electron",
        "measured_value": 1.0,
        "expected_value": 1.0,
        "unit": "cGy/MU",
        "tolerance_pct": 3.0,
    }
    for change, message in (
        ({"technique": "proton"}, "technique"),
        ({"measured_value": -1.0}, "measured_value: must be a positive number"),
        ({"expected_value": float("nan")}, "expected_value"),
        ({"tolerance_pct": 0.0}, "tolerance_pct"),
        ({"device": " "}, "device: required"),
        ({"performed_at": utcnow() + dt.timedelta(days=1)}, "lies in the future"),
    ):
        with pytest.raises(RecordsValueError, match=message):
            record_output_check(session, users["phys"], **{**base, **change})  # type: ignore[arg-type]
    with pytest.raises(RecordsValueError, match="at least two directions"):
        record_isotropy_check(
            session, users["phys"], device="PDA", readings={"+x": 1.0}, unit="nC", tolerance_pct=5
        )


@pytest.mark.parametrize("username", ["onc", "surg", "view"])
def test_only_physicists_record_qa(session: Session, users: dict[str, User], username: str) -> None:
    with pytest.raises(PermissionDeniedError, match="may not record quality-assurance checks"):
        record_output_check(
            session,
            users[username],
            device="INTRABEAM 507",
            technique="xray",
            measured_value=1.0,
            expected_value=1.0,
            unit="Gy/min",
            tolerance_pct=2.0,
        )


def test_latest_output_check_per_device(session: Session, users: dict[str, User]) -> None:
    now = utcnow()
    for hours, device in ((30, "A"), (2, "A"), (1, "B")):
        record_output_check(
            session,
            users["phys"],
            device=device,
            technique="xray",
            measured_value=1.0,
            expected_value=1.0,
            unit="Gy/min",
            tolerance_pct=2.0,
            performed_at=now - dt.timedelta(hours=hours),
        )
    session.commit()
    latest = latest_output_check(session, "A")
    assert latest is not None
    assert latest.performed_at == (now - dt.timedelta(hours=2))
    assert latest.performed_at.tzinfo is not None
    outputs, isotropy = list_qa_checks(session, device="A")
    assert len(outputs) == 2 and isotropy == []
