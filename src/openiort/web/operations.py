"""What pages and API both do: enter cases, start plans, review, approve, download.

Each function takes the database session and the acting user and lets the records layer's
errors (not found, not allowed, conflict, lifecycle, tampered) propagate; the app turns them
into the right HTTP answer for a page or the API.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any

from fastapi import HTTPException, Request
from sqlalchemy.orm import Session

from openiort.case import parse_case
from openiort.clinical.section import ClinicalSection, build_clinical_section
from openiort.records import audit, service
from openiort.records.delivery import DaySettings, day_settings
from openiort.records.errors import ConflictError, LifecycleError, RecordsValueError
from openiort.records.models import Case, Plan, User
from openiort.records.users import verify_password
from openiort.session import SessionError, SourceNow, TreatmentSession, make_session
from openiort.web.auth import may, require_role
from openiort.web.jobs import Job
from openiort.web.ratelimit import HashSlotsBusyError
from openiort.web.state import WebApp

logger = logging.getLogger("openiort.web")


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def logger_login_failed(address: str) -> None:
    """A failed login, logged by client address only (a mistyped password may sit in the
    username field)."""
    logger.warning("failed login from %s", address)


def may_write(user: User) -> bool:
    return may(user, "case.write")


def require_approver(user: User) -> None:
    require_role(user, "plan.approve")


def parse_birth_date(text: str | None) -> dt.date | None:
    """``YYYY-MM-DD`` or empty; RecordsValueError otherwise."""
    if text is None or not text.strip():
        return None
    try:
        value = dt.date.fromisoformat(text.strip())
    except ValueError:
        raise RecordsValueError("patient_birth_date: use the form YYYY-MM-DD") from None
    if value > dt.date.today() or value.year < 1900:
        raise RecordsValueError("patient_birth_date: not a plausible birth date")
    return value


def new_case(
    s: Session,
    user: User,
    data: dict[str, Any],
    patient_name: str | None = None,
    birth_date: dt.date | None = None,
) -> Case:
    """Store a case, registering its patient (by ``patient.id``) on first sight.

    Raises
    ------
    openiort.case.CaseError
        If the case is not valid (every problem listed).
    """
    require_role(user, "case.write")
    model = parse_case(data)
    patient = service.find_patient(s, model.patient.id)
    if patient is None:
        patient = service.create_patient(
            s, user, model.patient.id, name=patient_name or None, birth_date=birth_date
        )
    return service.create_case(s, user, patient.id, data)


def edit_case(
    s: Session, user: User, case_id: int, expected_version: int, data: dict[str, Any]
) -> Case:
    """Replace a case's data (ConflictError if someone saved since ``expected_version``)."""
    require_role(user, "case.write")
    return service.update_case(s, user, case_id, expected_version, data)


def clinical_section(web: WebApp, case: Case) -> ClinicalSection:
    """The case's verdicts, EBRT decision and evidence (cached per case version)."""
    key = ("section", case.id, case.version)
    cached = web.cache.get(key)
    if isinstance(cached, ClinicalSection):
        return cached
    # One computation per case version, however many users open the case at once.
    with web.cache.lock_for(key):
        cached = web.cache.get(key)
        if isinstance(cached, ClinicalSection):
            return cached
        section = build_clinical_section(service.case_model(case))
        web.cache.put(key, section)
    return section


def start_plan(
    web: WebApp, s: Session, user: User, case_id: int, expected_version: int | None
) -> Job:
    """Queue a plan of the case as stored now.

    Raises
    ------
    ConflictError
        If ``expected_version`` is given and the case has changed since (the user would get a
        plan of a case other than the one on their screen).
    QueueFullError
        If the planning queue is full.
    """
    require_role(user, "plan.write")
    case = service.get_case(s, case_id)
    if expected_version is not None and case.version != expected_version:
        who = case.updated_by.username if case.updated_by else None
        raise ConflictError("case", case.id, expected_version, case.version, who, case.updated_at)
    service.case_model(case)  # a stored case is valid; this guards against old records
    return web.jobs.submit(case.id, case.version, user.id, dict(case.data))


def review(s: Session, user: User, plan_id: int, accept: bool, comment: str | None) -> Plan:
    require_role(user, "plan.review")
    service.review_plan(s, user, plan_id, accept=accept, comment=comment)
    return service.get_plan(s, plan_id)


def check_approval_password(web: WebApp, request: Request, user: User, password: str) -> None:
    """Approval is an electronic signature: the approver types their password again.

    Raises HTTP 429 while the user's failures are throttled, 403 for a wrong password.
    """
    # Counted apart from logins: failed logins for this user from elsewhere never block the
    # approval of a user who is logged in (issue 17: five wrong logins blocked theatre).
    name, address = f"approval:{user.username}", f"approval:{client_address(request)}"
    wait = web.limiter.retry_after_s(name, address)
    if wait:
        raise HTTPException(
            status_code=429,
            detail=f"too many wrong passwords; try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    with hash_slot(web):
        ok = verify_password(user, password)
    if not ok:
        web.limiter.failed(name, address)
        raise HTTPException(status_code=403, detail="the password does not match: not approved")
    web.limiter.succeeded(name, address)


@contextlib.contextmanager
def hash_slot(web: WebApp) -> Iterator[None]:
    """One of the few password-hash slots (HTTP 503 with a retry time when none frees)."""
    try:
        with web.limiter.hash_slot():
            yield
    except HashSlotsBusyError as exc:
        raise HTTPException(
            status_code=503, detail=str(exc), headers={"Retry-After": "5"}
        ) from None


def approve(web: WebApp, s: Session, user: User, plan_id: int, comment: str | None) -> Plan:
    require_role(user, "plan.approve")
    service.load_plan(s, plan_id, actor=user, key=web.seal_key)
    return service.approve_plan(
        s,
        user,
        plan_id,
        comment=comment,
        require_second_person=web.config.require_second_person,
        key=web.seal_key,
    )


def record_delivery(
    web: WebApp,
    s: Session,
    user: User,
    plan_id: int,
    entry: dict[str, Any],
    source_serial: str | None = None,
) -> Any:
    """Record a delivery after checking the console entries against the approved plan.

    ``entry`` holds :func:`openiort.records.delivery.record_delivery`'s keyword values
    (applicator, time_min or monitor_units, energy_mev, bevel_deg, interrupted, given_*,
    output_check_id, note, and the conditions of the day when they were computed). An HDR
    plan's day is computed for the server's current source record, or the one whose serial is
    ``source_serial`` (:func:`day_source`): after a source exchange the times are rescaled.

    Raises
    ------
    openiort.records.errors.DeliveryCheckError
        Listing each console value that does not match the plan (nothing is recorded).
    """
    from openiort.records.delivery import record_delivery as records_record_delivery

    require_role(user, "delivery.record")
    plan = s.get(Plan, plan_id)
    if plan is not None and "source" not in entry:
        entry = {**entry, "source": day_source(web, plan, source_serial)}
    return records_record_delivery(s, user, plan_id, key=web.seal_key, **entry)


def day_source(web: WebApp, plan: Plan, serial: str | None = None) -> SourceNow | None:
    """The HDR source the day's console values are for: the server's record with ``serial``
    (when it loaded several: ``hdr_source_data`` and ``hdr_other_source_data``), else its
    current record (``hdr_source_data``); ``None`` when it has none or the plan is not HDR.
    The records were checked when the server started; read again here so that an edited
    record is refused (its manifest), never silently used.

    Raises
    ------
    openiort.session.SessionError
        A serial the server has no record of, or one given for a plan that is not HDR.
    """
    from openiort.devices.hdr_source import HdrSourceRecord, HdrSourceRecordError
    from openiort.devices.hdr_source import load_hdr_source_record as load
    from openiort.session import source_now

    def load_hdr_source_record(path: Any) -> HdrSourceRecord:
        try:
            return load(path)
        except HdrSourceRecordError as exc:  # edited since the server started
            raise SessionError(*exc.problems, source="session") from None

    if plan.technique != "hdr":
        if serial:
            raise SessionError(
                "source_serial: only HDR plans take a source record", source="session"
            )
        return None
    config = web.config
    if not serial:
        if config.hdr_source_data is None:
            return None
        return source_now(load_hdr_source_record(config.hdr_source_data))
    paths = [p for p in (config.hdr_source_data, *config.hdr_other_source_data) if p is not None]
    records = [load_hdr_source_record(p) for p in paths]
    for record in records:
        if record.source_serial == serial:
            return source_now(record)
    known = ", ".join(r.source_serial for r in records) or "none loaded"
    raise SessionError(
        f"source_serial: {serial!r} is not one of the server's HDR source records ({known})",
        source="session",
    )


def conditions_of(fields: dict[str, Any]) -> TreatmentSession:
    """The treatment session of the API's session fields (``at_utc`` default now).

    Raises
    ------
    openiort.session.SessionError
        Listing every value it refuses.
    """
    at = fields.get("at_utc") or dt.datetime.now(dt.UTC)
    return make_session(
        at,
        output_factor=fields.get("output_factor"),
        pressure_hpa=fields.get("pressure_hpa"),
        temperature_c=fields.get("temperature_c"),
        fraction=fields.get("fraction", 1),
        output_check_pressure_hpa=fields.get("output_check_pressure_hpa"),
        output_check_temperature_c=fields.get("output_check_temperature_c"),
    )


def day_console(
    plan: Plan, conditions: TreatmentSession, source: SourceNow | None = None
) -> DaySettings:
    """The day's console values of an approved (or delivered) plan; ``source`` (HDR): the
    department's current source record (:func:`day_source`).

    Raises
    ------
    LifecycleError
        If the plan is not approved, or was stored without a typed delivery (older releases).
    openiort.session.SessionError
        If the conditions cannot be used with the plan's delivery (one problem per line).
    """
    if plan.status not in ("approved", "delivered"):
        raise LifecycleError(
            f"plan {plan.id} (version {plan.version_number}) is {plan.status}: the console "
            "values of the day are computed for approved plans only"
        )
    if "delivery" not in plan.plan_json:
        raise LifecycleError(
            f"plan {plan.id} was stored by an earlier release of openiort, without a typed "
            "delivery: the conditions of the day cannot be applied to it; its console settings "
            "are those computed at planning"
        )
    from sqlalchemy.orm import object_session

    from openiort.records.daily_output import console_conditions

    db = object_session(plan)
    if db is not None:  # an x-ray plan takes its source's output factor of the day
        conditions = console_conditions(db, plan, conditions)
    return day_settings(plan, conditions, source)


def console_summary(plan: Plan, day: DaySettings) -> dict[str, Any]:
    """The day's console values as the API shows them (``iort console --json``'s values and
    the plan's record: its status, the device data and the setting due now)."""
    device = plan.plan_json["delivery"]["device"]
    by_time = day.time_s is not None
    return {
        **day.values.model_dump(mode="json"),
        "plan_id": plan.id,
        "plan_status": plan.status,
        "device": str(device.get("name", "")),
        "example_device_data": device.get("status") != "department",
        "due": {
            "setting": "treatment time" if by_time else "monitor units",
            "unit": "s" if by_time else "MU",
            "reference": day.reference_time_s if by_time else day.reference_monitor_units,
            "today": day.time_s if by_time else day.monitor_units,
            "after_interruption": day.after_interruption,
        },
    }


def delivery_summary(d: Any) -> dict[str, Any]:
    return {
        "delivery_id": d.id,
        "sequence": d.sequence,
        "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None,
        "delivered_by": d.delivered_by.username if d.delivered_by else None,
        "applicator": d.applicator,
        "energy_mev": d.energy_mev,
        "bevel_deg": d.bevel_deg,
        "set_time_s": d.set_time_s,
        "given_time_s": d.given_time_s,
        "set_monitor_units": d.set_monitor_units,
        "given_monitor_units": d.given_monitor_units,
        "interrupted": d.interrupted,
        "delivered_fraction": d.delivered_fraction,
        "cumulative_fraction": d.cumulative_fraction,
        "remaining_dose_gy": d.remaining_dose_gy,
        "remaining_time_s": d.remaining_time_s,
        "remaining_monitor_units": d.remaining_monitor_units,
        "output_check_id": d.output_check_id,
        "warnings": d.warnings or {},
        "note": d.note,
        "treatment_session": d.treatment_session,
        "session_scale": d.session_scale,
        "checked_time_s": d.checked_time_s,
        "checked_monitor_units": d.checked_monitor_units,
    }


def load_plan(web: WebApp, s: Session, user: User, plan_id: int) -> Plan:
    """A plan whose seal has been checked (TamperedPlanError otherwise, and an audit entry);
    the view is recorded (who viewed which record, ``iort audit export``)."""
    plan = service.load_plan(s, plan_id, actor=user, key=web.seal_key)
    audit.record_view(s, user, "plan", plan.id)
    return plan


def plan_summary(plan: Plan) -> dict[str, Any]:
    """The plan record as the API shows it (without the bulky plan JSON)."""
    from openiort.records.plan_data import planned_delivery

    console = planned_delivery(plan.plan_json)
    return {
        "plan_id": plan.id,
        "case_id": plan.case_id,
        "version_number": plan.version_number,
        "case_version": plan.case_version,
        "status": plan.status,
        "technique": plan.technique,
        "created_at": plan.created_at.isoformat() if plan.created_at else None,
        "created_by": plan.created_by.username if plan.created_by else None,
        "approved_by": plan.approved_by.username if plan.approved_by else None,
        "approved_at": plan.approved_at.isoformat() if plan.approved_at else None,
        "canonical_sha256": plan.canonical_sha256,
        "console": {
            "applicator": console.applicator,
            "time_s": console.time_s,
            "monitor_units": console.monitor_units,
            "energy_mev": console.energy_mev,
            "bevel_deg": console.bevel_deg,
            "prescription_dose_gy": console.prescription_dose_gy,
        },
        "reviews": [
            {
                "reviewer": r.reviewer.username,
                "role": r.reviewer_role,
                "decision": r.decision,
                "comment": r.comment,
                "at": r.created_at.isoformat() if r.created_at else None,
            }
            for r in plan.reviews
        ],
    }


def case_summary(s: Session, case: Case) -> dict[str, Any]:
    latest = service.latest_plan(s, case.id)
    return {
        "case_id": case.id,
        "patient_record_id": case.patient_id,
        "patient_id": case.patient.external_id,
        "version": case.version,
        "technique": case.data.get("intent", {}).get("technique"),
        "created_at": case.created_at.isoformat() if case.created_at else None,
        "updated_at": case.updated_at.isoformat() if case.updated_at else None,
        "updated_by": case.updated_by.username if case.updated_by else None,
        "latest_plan_id": latest.id if latest else None,
        "latest_plan_status": latest.status if latest else None,
    }
