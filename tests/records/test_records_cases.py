"""Patients and cases on both backends: validation, optimistic locking, audit summaries."""

from __future__ import annotations

import copy
import threading
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from openiort.case import CaseError
from openiort.records import (
    ConflictError,
    PermissionDeniedError,
    RecordsValueError,
    User,
    create_case,
    create_patient,
    get_case,
    get_user,
    update_case,
)
from openiort.records.audit import entries


def test_case_is_validated_and_normalised(
    session: Session, users: dict[str, User], case_data: dict[str, Any]
) -> None:
    patient = create_patient(session, users["surg"], "DEMO-001")
    bad = copy.deepcopy(case_data)
    bad["pathology"]["margin_mm"] = -3
    bad["anatomy"]["skin_distnce_mm"] = 10
    with pytest.raises(CaseError) as info:
        create_case(session, users["surg"], patient.id, bad)
    assert any("pathology.margin_mm" in p for p in info.value.problems)
    assert any("skin_distnce_mm: unknown field" in p for p in info.value.problems)
    case = create_case(session, users["surg"], patient.id, case_data)
    assert case.version == 1
    assert case.data["patient"]["id"] == "DEMO-001"
    # Normalised: fields left out of the file are stored as explicit nulls.
    assert case.data["patient"]["brca2_mutation"] is None


def test_case_for_another_patient_is_refused(
    session: Session, users: dict[str, User], case_data: dict[str, Any]
) -> None:
    other = create_patient(session, users["surg"], "DEMO-002")
    with pytest.raises(RecordsValueError, match="names patient 'DEMO-001'"):
        create_case(session, users["surg"], other.id, case_data)


def test_viewer_cannot_enter_cases(
    session: Session, users: dict[str, User], case_data: dict[str, Any]
) -> None:
    with pytest.raises(PermissionDeniedError, match="may not register or edit patients"):
        create_patient(session, users["view"], "DEMO-001")
    patient = create_patient(session, users["onc"], "DEMO-001")
    with pytest.raises(PermissionDeniedError, match="may not enter or edit cases"):
        create_case(session, users["view"], patient.id, case_data)


def test_update_bumps_version_and_audits_the_diff(
    session: Session, users: dict[str, User], case_id: int, case_data: dict[str, Any]
) -> None:
    edited = copy.deepcopy(case_data)
    edited["pathology"]["margin_mm"] = 2
    edited["patient"]["age_years"] = 63
    case = update_case(session, users["onc"], case_id, 1, edited)
    session.commit()
    assert case.version == 2 and case.data["pathology"]["margin_mm"] == 2
    assert update_case(session, users["onc"], case_id, 2, edited).version == 2  # no change
    last = entries(session, "case", case_id)[-1]
    assert last.action == "update" and last.username == "onc"
    assert last.summary["version"] == {"from": 1, "to": 2}
    assert last.summary["changed"]["pathology.margin_mm"] == {"from": 5, "to": 2}
    # Patient-block values are never copied into the audit log, only the field's name.
    assert last.summary["changed"]["patient.age_years"] == {
        "from": "<redacted>",
        "to": "<redacted>",
    }
    assert len(entries(session, "case", case_id)) == 2  # create + one update


def test_two_edits_of_one_version_conflict(
    engine: sa.Engine, users: dict[str, User], case_id: int, case_data: dict[str, Any]
) -> None:
    """Surgeon and oncologist both open version 1; the second save is refused, not lost."""
    with Session(engine) as surgeon_s, Session(engine) as oncologist_s:
        surgeon, oncologist = get_user(surgeon_s, "surg"), get_user(oncologist_s, "onc")
        seen_by_surgeon = get_case(surgeon_s, case_id).version
        seen_by_oncologist = get_case(oncologist_s, case_id).version
        surgeon_edit = copy.deepcopy(case_data)
        surgeon_edit["anatomy"]["skin_distance_mm"] = 7
        update_case(surgeon_s, surgeon, case_id, seen_by_surgeon, surgeon_edit)
        surgeon_s.commit()
        oncologist_edit = copy.deepcopy(case_data)
        oncologist_edit["intent"]["prescription_gy"] = 18
        with pytest.raises(ConflictError) as info:
            update_case(oncologist_s, oncologist, case_id, seen_by_oncologist, oncologist_edit)
        oncologist_s.rollback()
    err = info.value
    assert (err.expected_version, err.current_version, err.changed_by) == (1, 2, "surg")
    assert "changed by surg at" in str(err) and "not saved" in str(err)
    with Session(engine) as s:
        stored = get_case(s, case_id)
        assert stored.version == 2
        assert stored.data["anatomy"]["skin_distance_mm"] == 7  # the first edit survives
        assert stored.data["intent"]["prescription_gy"] == 20  # the second was refused


def test_concurrent_edits_in_threads_never_lose_one_silently(
    engine: sa.Engine, case_id: int, case_data: dict[str, Any]
) -> None:
    barrier = threading.Barrier(2, timeout=30)
    outcome: dict[str, str] = {}

    def edit(username: str, skin_mm: float) -> None:
        with Session(engine) as s:
            user = get_user(s, username)
            version = get_case(s, case_id).version
            s.commit()  # end the read (SQLite snapshot) before waiting
            data = copy.deepcopy(case_data)
            data["anatomy"]["skin_distance_mm"] = skin_mm
            barrier.wait()
            try:
                update_case(s, user, case_id, version, data)
                s.commit()
                outcome[username] = "saved"
            except ConflictError:
                s.rollback()
                outcome[username] = "conflict"

    threads = [
        threading.Thread(target=edit, args=("surg", 6.0)),
        threading.Thread(target=edit, args=("onc", 8.0)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcome.values()) == ["conflict", "saved"]
    winner = next(u for u, o in outcome.items() if o == "saved")
    with Session(engine) as s:
        stored = get_case(s, case_id)
        assert stored.version == 2
        assert stored.data["anatomy"]["skin_distance_mm"] == {"surg": 6.0, "onc": 8.0}[winner]


def test_version_column_guards_direct_orm_writes(
    engine: sa.Engine, users: dict[str, User], case_id: int, case_data: dict[str, Any]
) -> None:
    """Even code that bypasses update_case cannot overwrite a newer version."""
    with Session(engine) as a, Session(engine) as b:
        case_a, case_b = get_case(a, case_id), get_case(b, case_id)
        case_a.data = {**case_data, "intent": {**case_data["intent"], "prescription_gy": 18}}
        a.commit()
        case_b.data = {**case_data, "intent": {**case_data["intent"], "prescription_gy": 16}}
        with pytest.raises(StaleDataError):
            b.commit()
