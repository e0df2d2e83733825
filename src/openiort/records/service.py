"""Patients, cases and the plan lifecycle (draft -> reviewed -> approved -> delivered).

Plain functions taking a :class:`~sqlalchemy.orm.Session` and the acting :class:`User`. Each
checks the user's role, makes the change, and adds an audit entry in the same transaction; the
caller commits (for example with :func:`openiort.records.db.session_scope`).

A case is optimistically locked: :func:`update_case` takes the version the user edited and
refuses with :class:`ConflictError` when someone else saved in between. A plan is never
edited: :func:`store_plan` adds a new version each time, and approval seals a version for good.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from openiort.case import Case as CaseModel
from openiort.case import parse_case
from openiort.records import audit, roles
from openiort.records.errors import (
    ConflictError,
    LifecycleError,
    NotFoundError,
    PermissionDeniedError,
    RecordsValueError,
    TamperedPlanError,
)
from openiort.records.models import Approval, Base, Case, Patient, Plan, Review, User, utcnow
from openiort.records.plan_data import normalise_json, planned_delivery
from openiort.records.seal import (
    SEAL_ALGORITHM,
    UNSEALED_KEYS,
    Seal,
    make_seal,
    seal_problem,
)

EXTERNAL_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
MAX_COMMENT_CHARS = 4000

_M = TypeVar("_M", bound=Base)


def _require(actor: User, action: str) -> None:
    roles.require(actor.username, actor.role, actor.active, action)


def _get(session: Session, model: type[_M], ident: int, what: str, *, lock: bool = False) -> _M:
    stmt = select(model).where(model.id == ident)  # type: ignore[attr-defined]
    if lock:
        # Row lock on PostgreSQL (SQLite serialises writers anyway); refresh what the
        # session holds so that the version check sees the latest committed row.
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    obj = session.scalars(stmt).one_or_none()
    if obj is None:
        raise NotFoundError(f"{what} {ident} does not exist")
    return obj


def _comment(comment: str | None) -> str | None:
    if comment is None:
        return None
    if len(comment) > MAX_COMMENT_CHARS:
        raise RecordsValueError(f"comment: at most {MAX_COMMENT_CHARS} characters")
    return comment.strip() or None


def _flush(session: Session, entity: str, entity_id: int, expected_version: int) -> None:
    try:
        session.flush()
    except StaleDataError:
        # Another transaction committed between our read and our write.
        raise ConflictError(entity, entity_id, expected_version, None, None, None) from None


# ---------------------------------------------------------------------------- patients


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
    _require(actor, "patient.write")
    if not EXTERNAL_ID_PATTERN.fullmatch(external_id or ""):
        raise RecordsValueError(
            "patient id: 1-64 letters, digits, '_', '.' or '-' (the case file's patient.id)"
        )
    if find_patient(session, external_id) is not None:
        raise RecordsValueError(f"patient id: {external_id!r} is already registered")
    if name is not None and len(name) > 200:
        raise RecordsValueError("name: at most 200 characters")
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
    _require(actor, "patient.write")
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
    if birth_date is not None and birth_date != patient.birth_date:
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
    return _get(session, Patient, patient_id, "patient")


def list_patients(session: Session) -> list[Patient]:
    """All patients, newest first."""
    return list(session.scalars(select(Patient).order_by(Patient.id.desc())))


# ---------------------------------------------------------------------------- cases


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
    _require(actor, "case.write")
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
    _require(actor, "case.write")
    case = _get(session, Case, case_id, "case", lock=True)
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
    _flush(session, "case", case.id, expected_version)
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
    return _get(session, Case, case_id, "case")


def list_cases(session: Session, patient_id: int | None = None) -> list[Case]:
    """Cases, newest first, optionally of one patient."""
    stmt = select(Case).order_by(Case.id.desc())
    if patient_id is not None:
        stmt = stmt.where(Case.patient_id == patient_id)
    return list(session.scalars(stmt))


def case_model(case: Case) -> CaseModel:
    """The stored case as a validated :class:`openiort.case.Case`, ready for planning."""
    return parse_case(case.data, source=f"case {case.id}")


# ---------------------------------------------------------------------------- plans


def store_plan(
    session: Session,
    actor: User,
    case_id: int,
    plan_json: Mapping[str, Any],
    *,
    parent_plan_id: int | None = None,
) -> Plan:
    """Store a plan as a new draft version of the case's plans.

    Parameters
    ----------
    case_id:
        Record id of the case; the plan's ``case_id`` must be the case's patient id.
    plan_json:
        :meth:`openiort.plan.PlanResult.to_json_dict` output (or any dict with the keys
        :func:`openiort.records.plan_data.planned_delivery` reads).
    parent_plan_id:
        The version this one revises, if any (must belong to the same case).

    Returns
    -------
    Plan
        Status ``draft``, ``version_number`` one more than the case's latest.
    """
    _require(actor, "plan.write")
    case = _get(session, Case, case_id, "case")
    clean = normalise_json(plan_json)
    planned = planned_delivery(clean)
    if clean.get("case_id") != case.patient.external_id:
        raise RecordsValueError(
            f"plan JSON: case_id {clean.get('case_id')!r} is not this case's patient "
            f"({case.patient.external_id!r}); refusing to file a plan under the wrong patient"
        )
    if parent_plan_id is not None:
        parent = _get(session, Plan, parent_plan_id, "plan")
        if parent.case_id != case.id:
            raise RecordsValueError(
                f"parent plan {parent_plan_id} belongs to case {parent.case_id}, not {case.id}"
            )
    latest = session.scalar(select(func.max(Plan.version_number)).where(Plan.case_id == case.id))
    plan = Plan(
        case_id=case.id,
        version_number=(latest or 0) + 1,
        parent_plan_id=parent_plan_id,
        case_version=case.version,
        status="draft",
        technique=planned.technique,
        plan_json=clean,
        created_by_id=actor.id,
    )
    session.add(plan)
    session.flush()
    audit.record(
        session,
        actor,
        "create",
        "plan",
        plan.id,
        {
            "case_id": case.id,
            "version_number": plan.version_number,
            "technique": plan.technique,
            "parent_plan_id": parent_plan_id,
            "case_version": case.version,
        },
    )
    return plan


def get_plan(session: Session, plan_id: int) -> Plan:
    """The plan with this record id, without a seal check (use :func:`load_plan` to use it)."""
    return _get(session, Plan, plan_id, "plan")


def list_plans(session: Session, case_id: int) -> list[Plan]:
    """The case's plan versions, oldest first."""
    return list(
        session.scalars(select(Plan).where(Plan.case_id == case_id).order_by(Plan.version_number))
    )


def latest_plan(session: Session, case_id: int, status: str | None = None) -> Plan | None:
    """The case's newest plan version (optionally the newest with ``status``), or ``None``."""
    stmt = select(Plan).where(Plan.case_id == case_id)
    if status is not None:
        stmt = stmt.where(Plan.status == status)
    return session.scalars(stmt.order_by(Plan.version_number.desc()).limit(1)).first()


def _transition_target(session: Session, plan_id: int) -> Plan:
    return _get(session, Plan, plan_id, "plan", lock=True)


def review_plan(
    session: Session,
    actor: User,
    plan_id: int,
    *,
    accept: bool = True,
    comment: str | None = None,
) -> Review:
    """Review a draft plan: accepted moves it to ``reviewed``; otherwise it stays a draft.

    Raises
    ------
    PermissionDeniedError
        Unless the actor is a physicist or an oncologist.
    LifecycleError
        If the plan is not a draft.
    """
    _require(actor, "plan.review")
    plan = _transition_target(session, plan_id)
    if plan.status != "draft":
        raise LifecycleError(
            f"plan {plan.id} (version {plan.version_number}) is {plan.status}: only a draft "
            "can be reviewed"
        )
    expected = plan.row_version
    review = Review(
        plan_id=plan.id,
        reviewer_id=actor.id,
        reviewer_role=actor.role,
        decision="accepted" if accept else "changes_requested",
        comment=_comment(comment),
    )
    session.add(review)
    if accept:
        plan.status = "reviewed"
    _flush(session, "plan", plan.id, expected)
    audit.record(
        session,
        actor,
        "review",
        "plan",
        plan.id,
        {"decision": review.decision, "status": {"from": "draft", "to": plan.status}},
    )
    return review


def approve_plan(
    session: Session,
    actor: User,
    plan_id: int,
    *,
    comment: str | None = None,
    require_second_person: bool = False,
    key: bytes | None = None,
) -> Plan:
    """Approve a reviewed plan and seal it.

    The seal is a SHA-256 over the RFC 8785 canonical plan JSON (approval fields excluded),
    signed with the server's HMAC key together with the plan's place and the approver.

    Parameters
    ----------
    require_second_person:
        Refuse approval by the plan's author or by the user whose review accepted it
        (four-eyes rule), for departments that require it.
    key:
        Seal key (default :func:`openiort.records.seal.seal_key`).

    Raises
    ------
    PermissionDeniedError
        Unless the actor is a physicist or an oncologist (or, with the four-eyes rule, if
        the actor wrote or reviewed the plan).
    LifecycleError
        If the plan is not ``reviewed``, or the case was edited after the plan was computed.
    """
    _require(actor, "plan.approve")
    plan = _transition_target(session, plan_id)
    if plan.status != "reviewed":
        hint = " (review it first)" if plan.status == "draft" else ""
        raise LifecycleError(
            f"plan {plan.id} (version {plan.version_number}) is {plan.status}: only a reviewed "
            f"plan can be approved{hint}"
        )
    case = plan.case
    if plan.case_version is not None and case.version != plan.case_version:
        raise LifecycleError(
            f"plan {plan.id} (version {plan.version_number}) was computed from version "
            f"{plan.case_version} of case {case.id}, which has since changed (now version "
            f"{case.version}): plan again from the current case and approve the new version"
        )
    if require_second_person:
        accepted = [r for r in plan.reviews if r.decision == "accepted"]
        involved = {plan.created_by_id, *(r.reviewer_id for r in accepted[-1:])}
        if actor.id in involved:
            raise PermissionDeniedError(
                f"user {actor.username} wrote or reviewed plan {plan.id}: another physicist "
                "or oncologist must approve it"
            )
    expected = plan.row_version
    approved_at = utcnow().replace(microsecond=0)
    seal = make_seal(
        plan.plan_json,
        plan_id=plan.id,
        case_id=plan.case_id,
        version_number=plan.version_number,
        approved_by=actor.username,
        approved_at=approved_at,
        key=key,
    )
    plan.status = "approved"
    plan.canonical_sha256 = seal.canonical_sha256
    plan.seal_hmac = seal.hmac_sha256
    plan.seal_key_id = seal.key_id
    plan.approved_by_id = actor.id
    plan.approved_at = approved_at
    session.add(
        Approval(
            plan_id=plan.id,
            approver_id=actor.id,
            approver_role=actor.role,
            approved_at=approved_at,
            canonical_sha256=seal.canonical_sha256,
            seal_hmac=seal.hmac_sha256,
            comment=_comment(comment),
        )
    )
    _flush(session, "plan", plan.id, expected)
    audit.record(
        session,
        actor,
        "approve",
        "plan",
        plan.id,
        {
            "status": {"from": "reviewed", "to": "approved"},
            "canonical_sha256": seal.canonical_sha256,
            "seal_key_id": seal.key_id,
        },
    )
    return plan


def _plan_seal_problem(plan: Plan, key: bytes | None) -> str | None:
    seal_fields = (
        plan.canonical_sha256,
        plan.seal_hmac,
        plan.seal_key_id,
        plan.approved_by_id,
        plan.approved_at,
    )
    if not plan.sealed:
        if any(v is not None for v in seal_fields):
            return f"it carries a seal but its status is {plan.status}"
        return None
    if any(v is None for v in seal_fields) or plan.approved_by is None:
        return f"it is {plan.status} but its seal is missing or incomplete"
    assert plan.canonical_sha256 and plan.seal_hmac and plan.seal_key_id and plan.approved_at
    problem = seal_problem(
        plan.plan_json,
        Seal(plan.canonical_sha256, plan.seal_hmac, plan.seal_key_id),
        plan_id=plan.id,
        case_id=plan.case_id,
        version_number=plan.version_number,
        approved_by=plan.approved_by.username,
        approved_at=plan.approved_at,
        key=key,
    )
    if problem is not None:
        return problem
    approval = plan.approval
    if approval is None:
        return "its approval record is missing"
    if (
        approval.canonical_sha256 != plan.canonical_sha256
        or approval.seal_hmac != plan.seal_hmac
        or approval.approver_id != plan.approved_by_id
        or approval.approved_at != plan.approved_at
    ):
        return "its approval record does not match the seal stored with the plan"
    return None


def verify_plan(plan: Plan, key: bytes | None = None) -> None:
    """Check an approved or delivered plan against its seal.

    A draft or reviewed plan has no seal and passes, unless it carries seal fields (a sealed
    plan whose status was pushed back).

    Raises
    ------
    TamperedPlanError
        If the plan JSON was edited after approval, also when its stored hash was edited to
        match (the HMAC signature catches that), or when the approver, approval time, plan
        place or approval record were changed, or the seal was made with another key.
    """
    problem = _plan_seal_problem(plan, key)
    if problem is not None:
        raise TamperedPlanError(plan.id, problem)


def load_plan(
    session: Session, plan_id: int, *, actor: User | None = None, key: bytes | None = None
) -> Plan:
    """A plan fit for use: its seal is checked first.

    A plan that fails the check is refused and reported: a warning in the application log
    and a ``tamper_detected`` audit entry committed on its own transaction.

    Raises
    ------
    NotFoundError
        If there is no such plan.
    TamperedPlanError
        If the plan fails :func:`verify_plan`.
    """
    plan = get_plan(session, plan_id)
    try:
        verify_plan(plan, key)
    except TamperedPlanError as exc:
        audit.record_independently(
            session, actor, "tamper_detected", "plan", plan.id, {"reason": exc.reason}
        )
        raise
    return plan


def verify_all_plans(session: Session, key: bytes | None = None) -> list[TamperedPlanError]:
    """Check every sealed plan; the failures, each also reported like :func:`load_plan` does."""
    failures: list[TamperedPlanError] = []
    for plan in session.scalars(select(Plan).order_by(Plan.id)):
        problem = _plan_seal_problem(plan, key)
        if problem is not None:
            audit.record_independently(
                session, None, "tamper_detected", "plan", plan.id, {"reason": problem}
            )
            failures.append(TamperedPlanError(plan.id, problem))
    return failures


def sealed_plan_json(plan: Plan) -> dict[str, Any]:
    """The plan JSON to export: the stored content with its status, approval and seal.

    The ``seal`` block holds what :func:`verify_plan_json` needs to check the file later.
    """
    out = {k: v for k, v in plan.plan_json.items() if k not in UNSEALED_KEYS}
    out["status"] = plan.status
    if plan.sealed and plan.approved_by is not None and plan.approved_at is not None:
        out["approval"] = {
            "approved_by": plan.approved_by.username,
            "approver_role": plan.approval.approver_role if plan.approval else None,
            "approved_at": plan.approved_at.isoformat(),
        }
        out["seal"] = {
            "algorithm": SEAL_ALGORITHM,
            "canonical_sha256": plan.canonical_sha256,
            "hmac_sha256": plan.seal_hmac,
            "key_id": plan.seal_key_id,
            "plan_id": plan.id,
            "case_record_id": plan.case_id,
            "version_number": plan.version_number,
        }
    return out


def verify_plan_json(data: Mapping[str, Any], key: bytes | None = None) -> None:
    """Check an exported plan JSON file (from :func:`sealed_plan_json`) against its seal.

    Raises
    ------
    TamperedPlanError
        If the file carries no seal or does not match it (``plan_id`` -1 when unknown).
    """
    seal = data.get("seal")
    approval = data.get("approval")
    if not isinstance(seal, Mapping) or not isinstance(approval, Mapping):
        raise TamperedPlanError(-1, "the file carries no seal (it was not approved)")
    plan_id = seal.get("plan_id")
    try:
        problem = seal_problem(
            data,
            Seal(str(seal["canonical_sha256"]), str(seal["hmac_sha256"]), str(seal["key_id"])),
            plan_id=int(seal["plan_id"]),
            case_id=int(seal["case_record_id"]),
            version_number=int(seal["version_number"]),
            approved_by=str(approval["approved_by"]),
            approved_at=dt.datetime.fromisoformat(str(approval["approved_at"])),
            key=key,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise TamperedPlanError(
            plan_id if isinstance(plan_id, int) else -1, f"its seal block is malformed ({exc})"
        ) from None
    if problem is not None:
        raise TamperedPlanError(int(seal["plan_id"]), problem)
