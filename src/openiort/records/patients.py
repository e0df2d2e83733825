"""Patients: register, correct and look up the people whose cases are planned."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from openiort.records import audit
from openiort.records.common import get_row, require_role
from openiort.records.errors import RecordsValueError
from openiort.records.models import Patient, User

EXTERNAL_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
# Birth dates the records accept, on every route (form, API, command line).
EARLIEST_BIRTH_DATE = dt.date(1900, 1, 1)


def check_birth_date(value: dt.date | None) -> dt.date | None:
    """A plausible birth date (1900-01-01 to today), else :class:`RecordsValueError`."""
    if value is None:
        return None
    if not EARLIEST_BIRTH_DATE <= value <= dt.date.today():
        raise RecordsValueError(
            f"birth date: {value.isoformat()} is not a plausible birth date (from "
            f"{EARLIEST_BIRTH_DATE.isoformat()} to today)"
        )
    return value


def create_patient(
    session: Session,
    actor: User,
    external_id: str,
    *,
    name: str | None = None,
    birth_date: dt.date | None = None,
) -> Patient:
    """Register a patient.

    Parameters
    ----------
    external_id:
        The hospital's patient identifier, the same as the case files' ``patient.id``.
    name, birth_date:
        Optional identifying details; never logged or audited (only that they were set).

    Raises
    ------
    RecordsValueError
        For a malformed or already registered ``external_id``.
    """
    require_role(actor, "patient.write")
    if not EXTERNAL_ID_PATTERN.fullmatch(external_id or ""):
        raise RecordsValueError(
            "patient id: 1-64 letters, digits, '_', '.' or '-' (the case file's patient.id)"
        )
    if find_patient(session, external_id) is not None:
        raise RecordsValueError(f"patient id: {external_id!r} is already registered")
    if name is not None and len(name) > 200:
        raise RecordsValueError("name: at most 200 characters")
    check_birth_date(birth_date)
    patient = Patient(
        external_id=external_id,
        name=(name.strip() or None) if name else None,
        birth_date=birth_date,
        created_by_id=actor.id,
    )
    session.add(patient)
    session.flush()
    fields = ["external_id"] + [f for f in ("name", "birth_date") if getattr(patient, f)]
    audit.record(session, actor, "create", "patient", patient.id, {"fields_set": fields})
    return patient


def update_patient(
    session: Session,
    actor: User,
    patient_id: int,
    *,
    name: str | None = None,
    birth_date: dt.date | None = None,
    clear: tuple[str, ...] = (),
) -> Patient:
    """Correct a patient's name or birth date.

    Parameters
    ----------
    name, birth_date:
        New values; ``None`` leaves a field as it is.
    clear:
        Fields to empty (``"name"``, ``"birth_date"``).

    The audit entry names the fields changed, never their values.
    """
    require_role(actor, "patient.write")
    patient = get_patient(session, patient_id)
    unknown = set(clear) - {"name", "birth_date"}
    if unknown:
        raise RecordsValueError(f"clear: unknown field(s) {', '.join(sorted(unknown))}")
    changed: list[str] = []
    if name is not None:
        if len(name) > 200:
            raise RecordsValueError("name: at most 200 characters")
        if (name.strip() or None) != patient.name:
            patient.name = name.strip() or None
            changed.append("name")
    if birth_date is not None and check_birth_date(birth_date) != patient.birth_date:
        patient.birth_date = birth_date
        changed.append("birth_date")
    for field in clear:
        if getattr(patient, field) is not None:
            setattr(patient, field, None)
            changed.append(field)
    if changed:
        audit.record(session, actor, "update", "patient", patient.id, {"fields_changed": changed})
    return patient


def find_patient(session: Session, external_id: str) -> Patient | None:
    """The patient with this hospital identifier, or ``None``."""
    return session.scalars(select(Patient).where(Patient.external_id == external_id)).one_or_none()


def get_patient(session: Session, patient_id: int) -> Patient:
    """The patient with this record id; :class:`NotFoundError` if none."""
    return get_row(session, Patient, patient_id, "patient")


def list_patients(session: Session) -> list[Patient]:
    """All patients, newest first."""
    return list(session.scalars(select(Patient).order_by(Patient.id.desc())))
