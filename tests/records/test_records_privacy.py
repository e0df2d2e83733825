"""Patient names and birth dates never reach the application log or the audit log."""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from openiort.records import (
    DeliveryCheckError,
    PermissionDeniedError,
    Plan,
    RecordsValueError,
    TamperedPlanError,
    User,
    approve_plan,
    create_case,
    create_patient,
    load_plan,
    record_delivery,
    review_plan,
    store_plan,
    update_case,
    update_patient,
)
from openiort.records import audit as audit_module
from openiort.records.audit import entries
from openiort.records.db import make_engine
from openiort.records.users import list_users

NAME = "Jane Testpatient"
BIRTH_DATE = dt.date(1961, 7, 23)
SECRETS = ("Testpatient", "1961-07-23", "1961, 7, 23")


def _workflow(
    session: Session,
    users: dict[str, User],
    case_data: dict[str, Any],
    plan_json: dict[str, Any],
) -> int:
    patient = create_patient(session, users["surg"], "DEMO-001", name=NAME, birth_date=BIRTH_DATE)
    with pytest.raises(RecordsValueError) as dup:
        create_patient(session, users["surg"], "DEMO-001", name=NAME)
    assert not any(s in str(dup.value) for s in SECRETS)
    case = create_case(session, users["surg"], patient.id, case_data)
    edited = copy.deepcopy(case_data)
    edited["patient"]["age_years"] = 63
    update_case(session, users["onc"], case.id, case.version, edited)
    plan = store_plan(session, users["phys"], case.id, plan_json)
    review_plan(session, users["phys"], plan.id)
    approve_plan(session, users["onc"], plan.id)
    session.commit()
    with pytest.raises(DeliveryCheckError):
        record_delivery(session, users["phys"], plan.id, applicator=4.0, time_min=1.0)
    session.rollback()
    session.execute(
        sa.update(Plan).where(Plan.id == plan.id).values(plan_json={**plan_json, "x": 1})
    )
    session.commit()
    session.expire_all()
    with pytest.raises(TamperedPlanError):
        load_plan(session, plan.id)
    return plan.id


def test_no_patient_name_in_logs_or_audit(
    session: Session,
    users: dict[str, User],
    case_data: dict[str, Any],
    make_plan_json: Callable[..., dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger at its most verbose
    session.commit()  # a connection checked out from now on logs with these levels
    plan_id = _workflow(session, users, case_data, make_plan_json())
    text = caplog.text
    # The log did record the work, by id and username ...
    assert f"approve plan id={plan_id} by onc" in text
    assert f"security event: tamper_detected plan id={plan_id}" in text
    # ... and nothing that identifies the patient.
    assert not any(s in text for s in SECRETS)
    audit_text = json.dumps([e.summary for e in entries(session)], default=str)
    assert "patient.age_years" in audit_text
    assert not any(s in audit_text for s in SECRETS)
    assert "63" not in json.dumps(
        [e.summary for e in entries(session, "case")], default=str
    )  # patient-block values are redacted


def test_sql_logging_switched_on_still_hides_parameters(
    session: Session,
    users: dict[str, User],
    case_data: dict[str, Any],
    make_plan_json: Callable[..., dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine.Engine")
    session.commit()  # a connection checked out from now on logs with these levels
    _workflow(session, users, case_data, make_plan_json())
    assert "INSERT INTO patients" in caplog.text  # SQL logging really was on
    assert not any(s in caplog.text for s in SECRETS)


def test_tamper_report_does_not_stall_when_sqlite_is_locked(
    sqlite_template: Path,
    tmp_path: Path,
    case_data: dict[str, Any],
    make_plan_json: Callable[..., dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The seal failure is still raised when SQLite's single writer lock blocks the report."""
    monkeypatch.setattr(audit_module, "SIDE_WRITE_TIMEOUT_MS", 100)
    shutil.copyfile(sqlite_template, tmp_path / "locked.sqlite3")
    engine = make_engine(f"sqlite:///{tmp_path / 'locked.sqlite3'}")
    try:
        with Session(engine, expire_on_commit=False) as session:
            users = {u.username: u for u in list_users(session)}
            plan_id = _workflow(session, users, case_data, make_plan_json())
            create_patient(session, users["surg"], "DEMO-002")  # holds the write lock
            with pytest.raises(TamperedPlanError):
                load_plan(session, plan_id)
    finally:
        engine.dispose()
    assert "could not write the audit entry for tamper_detected" in caplog.text


def test_patient_corrections_audit_field_names_only(
    session: Session, users: dict[str, User]
) -> None:
    patient = create_patient(session, users["surg"], "DEMO-001", name="Jane Tstpatient")
    update_patient(session, users["onc"], patient.id, name=NAME, birth_date=BIRTH_DATE)
    update_patient(session, users["onc"], patient.id, clear=("birth_date",))
    session.commit()
    assert (patient.name, patient.birth_date) == (NAME, None)
    summaries = [e.summary for e in entries(session, "patient", patient.id)]
    assert summaries == [
        {"fields_set": ["external_id", "name"]},
        {"fields_changed": ["name", "birth_date"]},
        {"fields_changed": ["birth_date"]},
    ]
    with pytest.raises(PermissionDeniedError):
        update_patient(session, users["view"], patient.id, name="x")
