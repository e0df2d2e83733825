"""Plans against their seal: check a stored plan, load it for use, export and check a file.

A plan that fails its check is refused and reported (a ``tamper_detected`` audit entry).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from openiort.records import audit, chain
from openiort.records.chart_seal import chart_problem
from openiort.records.errors import TamperedPlanError
from openiort.records.models import Plan, User
from openiort.records.plans import get_plan
from openiort.records.seal import SEAL_ALGORITHM, UNSEALED_KEYS, Seal, seal_problem


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
    TamperedRecordError
        If the record of the plan's patient fails its chain check
        (:func:`openiort.records.chain.require_intact`).
    """
    plan = get_plan(session, plan_id)
    try:
        verify_plan(plan, key)
    except TamperedPlanError as exc:
        audit.record_independently(
            session, actor, "tamper_detected", "plan", plan.id, {"reason": exc.reason}
        )
        raise
    chain.require_intact_plan(session, plan, actor=actor)
    return plan


def verify_all_plans(session: Session, key: bytes | None = None) -> list[TamperedPlanError]:
    """Check every sealed plan and its signed chart; the failures, each also reported like
    :func:`load_plan` does."""
    failures: list[TamperedPlanError] = []
    for plan in session.scalars(select(Plan).order_by(Plan.id)):
        problem = _plan_seal_problem(plan, key) or chart_problem(session, plan, key)
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
