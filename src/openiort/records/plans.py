"""Plan versions and their lifecycle: store a draft, review it, approve and seal it.

A plan is never edited: :func:`store_plan` adds a new version each time, and approval seals a
version for good (checking a seal is :mod:`openiort.records.sealed_plans`' job).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from openiort.records import audit, chain, department
from openiort.records.chart_seal import seal_chart
from openiort.records.common import clean_comment, flush_versioned, get_row, require_role
from openiort.records.errors import (
    ExampleDataError,
    LifecycleError,
    PermissionDeniedError,
    RecordsValueError,
)
from openiort.records.models import Approval, Case, Plan, Review, User, utcnow
from openiort.records.plan_data import example_data_problem, normalise_json, planned_delivery
from openiort.records.seal import make_seal


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
    require_role(actor, "plan.write")
    case = get_row(session, Case, case_id, "case")
    chain.require_intact(session, case.patient_id, actor=actor)
    clean = normalise_json(plan_json)
    planned = planned_delivery(clean)
    if clean.get("case_id") != case.patient.external_id:
        raise RecordsValueError(
            f"plan JSON: case_id {clean.get('case_id')!r} is not this case's patient "
            f"({case.patient.external_id!r}); refusing to file a plan under the wrong patient"
        )
    if parent_plan_id is not None:
        parent = get_row(session, Plan, parent_plan_id, "plan")
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
    """The plan with this record id, without a seal check (use
    :func:`~openiort.records.sealed_plans.load_plan` to use it)."""
    return get_row(session, Plan, plan_id, "plan")


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


def _transition_target(session: Session, plan_id: int, actor: User) -> Plan:
    plan = get_row(session, Plan, plan_id, "plan", lock=True)
    chain.require_intact_plan(session, plan, actor=actor)
    return plan


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
    require_role(actor, "plan.review")
    plan = _transition_target(session, plan_id, actor)
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
        comment=clean_comment(comment),
    )
    session.add(review)
    if accept:
        plan.status = "reviewed"
    flush_versioned(session, "plan", plan.id, expected)
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
    require_second_person: bool | None = None,
    key: bytes | None = None,
) -> Plan:
    """Approve a reviewed plan and seal it.

    The seal is a SHA-256 over the RFC 8785 canonical plan JSON (approval fields excluded),
    signed with the server's HMAC key together with the plan's place and the approver.

    Parameters
    ----------
    require_second_person:
        Refuse approval by the plan's author or by the user whose review accepted it
        (four-eyes rule). ``None`` (default): the department's setting
        (:mod:`openiort.records.department`), on unless the department turned it off.
    key:
        Seal key (default :func:`openiort.records.seal.seal_key`).

    Raises
    ------
    PermissionDeniedError
        Unless the actor is a physicist or an oncologist (or, with the four-eyes rule, if
        the actor wrote or reviewed the plan).
    LifecycleError
        If the plan is not ``reviewed``, or the case was edited after the plan was computed.
    ExampleDataError
        If the plan was computed with example device data (a :class:`LifecycleError`).
    """
    require_role(actor, "plan.approve")
    plan = _transition_target(session, plan_id, actor)
    if plan.status != "reviewed":
        hint = " (review it first)" if plan.status == "draft" else ""
        raise LifecycleError(
            f"plan {plan.id} (version {plan.version_number}) is {plan.status}: only a reviewed "
            f"plan can be approved{hint}"
        )
    example = example_data_problem(plan.plan_json)
    if example is not None:
        raise ExampleDataError(
            f"plan {plan.id} (version {plan.version_number}) cannot be approved for treatment: "
            + example
        )
    case = plan.case
    if plan.case_version is not None and case.version != plan.case_version:
        raise LifecycleError(
            f"plan {plan.id} (version {plan.version_number}) was computed from version "
            f"{plan.case_version} of case {case.id}, which has since changed (now version "
            f"{case.version}): plan again from the current case and approve the new version"
        )
    if require_second_person is None:
        require_second_person = department.setting(session, department.FOUR_EYES)
    if require_second_person:
        accepted = [r for r in plan.reviews if r.decision == "accepted"]
        involved = {plan.created_by_id, *(r.reviewer_id for r in accepted[-1:])}
        if actor.id in involved:
            raise PermissionDeniedError(
                f"user {actor.username} wrote or reviewed plan {plan.id}: another physicist "
                "or oncologist must approve it (four-eyes rule)"
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
    approval = Approval(
        plan_id=plan.id,
        approver=actor,
        approver_role=actor.role,
        approved_at=approved_at,
        canonical_sha256=seal.canonical_sha256,
        seal_hmac=seal.hmac_sha256,
        comment=clean_comment(comment),
    )
    # The printed chart (patient details, signature lines) as a second signed document.
    seal_chart(approval, plan, key)
    session.add(approval)
    flush_versioned(session, "plan", plan.id, expected)
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
            "chart_hmac": approval.chart_hmac,
        },
    )
    return plan


def case_changes_since_plan(session: Session, plan: Plan) -> list[str]:
    """The case fields edited since ``plan`` was computed (dotted paths, from the case's audit
    entries); empty when the case is as it was. The patient's name and birth date are not
    part of the case: correcting them changes nothing here."""
    if plan.case_version is None or plan.case.version == plan.case_version:
        return []
    paths: set[str] = set()
    for entry in audit.entries(session, "case", plan.case_id):
        version = entry.summary.get("version")
        if entry.action != "update" or not isinstance(version, dict):
            continue
        if not isinstance(version.get("from"), int) or version["from"] < plan.case_version:
            continue
        paths.update(entry.summary.get("changed", {}))
        paths.update(entry.summary.get("added", {}))
        paths.update(entry.summary.get("removed", []))
    return sorted(paths) or ["(unrecorded change)"]


def require_current_case(session: Session, plan: Plan) -> None:
    """Refuse to deliver a plan whose case was edited after it was computed.

    Raises
    ------
    LifecycleError
        Naming the fields changed: the plan is delivered only once a new version has been
        computed from the current case and approved.
    """
    changed = case_changes_since_plan(session, plan)
    if changed:
        shown = ", ".join(changed[:8]) + (
            f" and {len(changed) - 8} more" if len(changed) > 8 else ""
        )
        raise LifecycleError(
            f"plan {plan.id} (version {plan.version_number}) was computed from version "
            f"{plan.case_version} of case {plan.case_id}, which was edited since ({shown}): "
            "compute the plan again from the current case and approve the new version before "
            "delivering"
        )
