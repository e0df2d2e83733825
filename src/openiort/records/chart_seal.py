"""The signed chart: the printed chart of an approved plan sealed as a second document.

The plan's seal covers the plan JSON, which never holds the patient's name or birth date nor
the signature lines (who computed, reviewed and approved it, in which role, with what comment).
The chart printed on the report's first page holds both. At approval those are put in a chart
document that names the plan's seal (its hash, HMAC and key id), signed with the seal key
(:func:`openiort.records.seal.sign_document`) and stored with the approval.

Before the approved PDF is served, and in ``iort db verify``, the stored chart is checked: its
signature, its reference to the plan's seal as stored, the approval entry of the record
chain that named its signature, and the signature lines against the record. The patient's name
and birth date are not compared: a correction after approval is an audited change of the
patient's record (its chain attests it), and the PDF prints the record as it is, while the
signed chart keeps the details as they were approved.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from openiort.records import audit
from openiort.records.errors import TamperedPlanError
from openiort.records.models import Approval, Plan
from openiort.records.seal import document_signature_problem, sign_document

CHART_KIND = "treatment-chart"


def _time(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.UTC).isoformat()


def chart_document(
    plan: Plan,
    *,
    approver: str,
    approver_role: str,
    approved_at: dt.datetime,
    comment: str | None,
) -> dict[str, Any]:
    """The chart of ``plan`` as approved: patient details, signature lines, the plan's seal.

    The plan's seal fields must be set. Roles are those recorded with each step (a user's
    later change of role does not change what was signed); the creator is named by username.
    """
    patient = plan.case.patient
    signatures: list[dict[str, Any]] = [
        {
            "step": "computed",
            "by": plan.created_by.username if plan.created_by else None,
            "at": _time(plan.created_at),
        }
    ]
    for review in plan.reviews:
        signatures.append(
            {
                "step": review.decision,
                "by": review.reviewer.username,
                "role": review.reviewer_role,
                "at": _time(review.created_at),
                "note": review.comment,
            }
        )
    signatures.append(
        {
            "step": "approved",
            "by": approver,
            "role": approver_role,
            "at": _time(approved_at),
            "note": comment,
        }
    )
    return {
        "patient": {
            "id": patient.external_id,
            "name": patient.name,
            "birth_date": None if patient.birth_date is None else patient.birth_date.isoformat(),
        },
        "plan": {
            "id": plan.id,
            "case_id": plan.case_id,
            "version_number": plan.version_number,
            "case_version": plan.case_version,
            "technique": plan.technique,
        },
        "plan_seal": {
            "canonical_sha256": plan.canonical_sha256,
            "hmac_sha256": plan.seal_hmac,
            "key_id": plan.seal_key_id,
        },
        "signatures": signatures,
    }


def seal_chart(approval: Approval, plan: Plan, key: bytes | None = None) -> None:
    """Sign the chart of a plan being approved and store it with ``approval``."""
    document = chart_document(
        plan,
        approver=approval.approver.username,
        approver_role=approval.approver_role,
        approved_at=approval.approved_at,
        comment=approval.comment,
    )
    signature, kid = sign_document(CHART_KIND, document, key)
    approval.chart_json = document
    approval.chart_hmac = signature
    approval.chart_key_id = kid


def _record_document(plan: Plan, approval: Approval) -> dict[str, Any]:
    return chart_document(
        plan,
        approver=approval.approver.username,
        approver_role=approval.approver_role,
        approved_at=approval.approved_at,
        comment=approval.comment,
    )


def _signed_in_chain(session: Session, plan: Plan) -> str | None:
    """The chart signature the (chained) approval entry of the plan names, if any."""
    for entry in reversed(audit.entries(session, "plan", plan.id)):
        if entry.action == "approve":
            value = (entry.summary or {}).get("chart_hmac")
            return value if isinstance(value, str) else None
    return None


def chart_problem(session: Session, plan: Plan, key: bytes | None = None) -> str | None:
    """Why the signed chart of a sealed plan does not hold (tampering), or ``None``.

    A plan approved before charts were signed has none and passes, unless its chained
    approval entry says one was signed.
    """
    approval = plan.approval
    if not plan.sealed or approval is None:
        return None
    in_chain = _signed_in_chain(session, plan)
    stored = (approval.chart_json, approval.chart_hmac, approval.chart_key_id)
    if all(v is None for v in stored):
        if in_chain is not None:
            return "its signed chart was removed (the approval entry names one)"
        return None
    if any(v is None for v in stored):
        return "its signed chart is incomplete"
    assert approval.chart_json is not None and approval.chart_hmac and approval.chart_key_id
    if in_chain is not None and in_chain != approval.chart_hmac:
        return "its signed chart is not the one its approval entry names"
    problem = document_signature_problem(
        CHART_KIND, approval.chart_json, approval.chart_hmac, approval.chart_key_id, key
    )
    if problem is not None:
        return f"signed chart: {problem}"
    signed = approval.chart_json
    current = _record_document(plan, approval)
    for part in ("plan", "plan_seal", "signatures"):
        if signed.get(part) != current[part]:
            what = part.replace("_", " ")
            return f"the chart's {what} differ from the chart signed at approval"
    return None


def require_signed_chart(session: Session, plan: Plan, key: bytes | None = None) -> None:
    """Check a sealed plan's signed chart before its approved chart is printed.

    Raises
    ------
    TamperedPlanError
        If :func:`chart_problem` finds one (reported as a ``tamper_detected`` audit entry).
    """
    problem = chart_problem(session, plan, key)
    if problem is not None:
        audit.record_independently(
            session, None, "tamper_detected", "plan", plan.id, {"reason": problem}
        )
        raise TamperedPlanError(plan.id, problem)
