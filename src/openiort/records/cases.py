"""Cases: store and edit a patient's case file, optimistically locked by its version.

:func:`update_case` takes the version the user edited and refuses with
:class:`~openiort.records.errors.ConflictError` when someone else saved in between.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from openiort.case import Case as CaseModel
from openiort.case import parse_case
from openiort.records import audit, chain
from openiort.records.common import flush_versioned, get_row, require_role
from openiort.records.errors import ConflictError, RecordsValueError
from openiort.records.models import Case, Patient, User, utcnow
from openiort.records.patients import get_patient
from openiort.records.plan_data import normalise_json


def _validated_case(data: Mapping[str, Any], patient: Patient) -> dict[str, Any]:
    model = parse_case(normalise_json(data, "case"), source="case")
    if model.patient.id != patient.external_id:
        raise RecordsValueError(
            f"patient.id: the case names patient {model.patient.id!r} but is being stored "
            f"for patient {patient.external_id!r}"
        )
    return model.model_dump(mode="json")


def create_case(session: Session, actor: User, patient_id: int, data: Mapping[str, Any]) -> Case:
    """Store a new case for a patient.

    Parameters
    ----------
    patient_id:
        Record id of the patient; the case's ``patient.id`` must be her ``external_id``.
    data:
        The case file as a mapping, validated with :func:`openiort.case.parse_case`.

    Raises
    ------
    openiort.case.CaseError
        Listing every invalid field (a ``ValueError``).
    """
    require_role(actor, "case.write")
    patient = get_patient(session, patient_id)
    clean = _validated_case(data, patient)
    now = utcnow()
    case = Case(
        patient_id=patient.id,
        data=clean,
        created_by_id=actor.id,
        updated_by_id=actor.id,
        created_at=now,
        updated_at=now,
    )
    session.add(case)
    session.flush()
    audit.record(
        session,
        actor,
        "create",
        "case",
        case.id,
        {"patient_record_id": patient.id, "version": case.version, **audit.json_diff(None, clean)},
    )
    return case


def update_case(
    session: Session, actor: User, case_id: int, expected_version: int, data: Mapping[str, Any]
) -> Case:
    """Replace a case's data, provided nobody changed it since the user loaded it.

    Parameters
    ----------
    case_id:
        Record id of the case.
    expected_version:
        ``Case.version`` as the user loaded it (a hidden form field in the web app).
    data:
        The whole new case file.

    Raises
    ------
    ConflictError
        If the case is no longer at ``expected_version``; the message names who saved the
        other change and when, and nothing is written.
    openiort.case.CaseError
        If ``data`` is not a valid case.
    """
    require_role(actor, "case.write")
    case = get_row(session, Case, case_id, "case", lock=True)
    chain.require_intact(session, case.patient_id, actor=actor)
    if case.version != expected_version:
        editor = session.get(User, case.updated_by_id) if case.updated_by_id else None
        raise ConflictError(
            "case",
            case.id,
            expected_version,
            case.version,
            editor.username if editor else None,
            case.updated_at,
        )
    clean = _validated_case(data, case.patient)
    diff = audit.json_diff(case.data, clean)
    if not diff:
        return case
    old_version = case.version
    case.data = clean
    case.updated_at = utcnow()
    case.updated_by_id = actor.id
    flush_versioned(session, "case", case.id, expected_version)
    audit.record(
        session,
        actor,
        "update",
        "case",
        case.id,
        {"version": {"from": old_version, "to": case.version}, **diff},
    )
    return case


def get_case(session: Session, case_id: int) -> Case:
    """The case with this record id; :class:`NotFoundError` if none."""
    return get_row(session, Case, case_id, "case")


def list_cases(session: Session, patient_id: int | None = None) -> list[Case]:
    """Cases, newest first, optionally of one patient."""
    stmt = select(Case).order_by(Case.id.desc())
    if patient_id is not None:
        stmt = stmt.where(Case.patient_id == patient_id)
    return list(session.scalars(stmt))


def case_model(case: Case) -> CaseModel:
    """The stored case as a validated :class:`openiort.case.Case`, ready for planning."""
    return parse_case(case.data, source=f"case {case.id}")
