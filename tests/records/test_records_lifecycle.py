"""Plan lifecycle on both backends: roles, transitions, versions, seal and tampering."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
from collections.abc import Callable
from typing import Any

import pytest
import rfc8785
import sqlalchemy as sa
from sqlalchemy.orm import Session

from openiort.records import (
    LifecycleError,
    PermissionDeniedError,
    Plan,
    TamperedPlanError,
    User,
    approve_plan,
    load_plan,
    review_plan,
    sealed_plan_json,
    store_plan,
    update_case,
    verify_plan,
    verify_plan_json,
)
from openiort.records.audit import entries
from openiort.records.seal import canonical_sha256

PlanFactory = Callable[..., dict[str, Any]]


def _approved(
    session: Session, users: dict[str, User], case_id: int, plan_json: dict[str, Any]
) -> Plan:
    plan = store_plan(session, users["phys"], case_id, plan_json)
    review_plan(session, users["phys"], plan.id)
    approve_plan(session, users["onc"], plan.id)
    session.commit()
    return plan


def test_full_lifecycle_seals_and_audits(
    session: Session, users: dict[str, User], case_id: int, make_plan_json: PlanFactory
) -> None:
    plan = store_plan(session, users["phys"], case_id, make_plan_json())
    assert (plan.status, plan.version_number) == ("draft", 1)
    review_plan(session, users["phys2"], plan.id, comment="depths checked")
    assert plan.status == "reviewed"
    approve_plan(session, users["onc"], plan.id)  # a third person: the four-eyes default
    session.commit()
    assert plan.status == "approved"
    assert plan.approved_by is not None and plan.approved_by.username == "onc"
    # The seal hashes the plan without its approval fields: the same content as stored.
    assert plan.canonical_sha256 == canonical_sha256(make_plan_json())
    # The stored signature is HMAC-SHA256 (key: the test's OPENIORT_SEAL_KEY) over the RFC 8785
    # canonical JSON of the approval facts, recomputed here from the documented seal format.
    assert plan.approved_at is not None
    message = rfc8785.dumps(
        {
            "algorithm": "sha256-rfc8785+hmac-sha256",  # a changed format breaks old seals
            "canonical_sha256": canonical_sha256(make_plan_json()),
            "plan_id": plan.id,
            "case_id": case_id,
            "version_number": 1,
            "approved_by": "onc",
            "approved_at": plan.approved_at.astimezone(dt.UTC).isoformat(),
        }
    )
    key = os.environ["OPENIORT_SEAL_KEY"].encode("utf-8")
    assert plan.seal_hmac == hmac.new(key, message, hashlib.sha256).hexdigest()
    verify_plan(plan)
    with pytest.raises(TamperedPlanError):
        verify_plan(plan, key=b"another key, not the one that sealed the plan")
    actions = [(e.action, e.username) for e in entries(session, "plan", plan.id)]
    assert actions == [("create", "phys"), ("review", "phys2"), ("approve", "onc")]


@pytest.mark.parametrize("role_user", ["surg", "view"])
def test_surgeon_and_viewer_cannot_review_or_approve(
    session: Session,
    users: dict[str, User],
    case_id: int,
    make_plan_json: PlanFactory,
    role_user: str,
) -> None:
    plan = store_plan(session, users["phys"], case_id, make_plan_json())
    with pytest.raises(PermissionDeniedError, match="may not review plans"):
        review_plan(session, users[role_user], plan.id)
    review_plan(session, users["phys"], plan.id)
    with pytest.raises(PermissionDeniedError, match="may not approve plans"):
        approve_plan(session, users[role_user], plan.id)
    with pytest.raises(PermissionDeniedError, match="may not store plans"):
        store_plan(session, users[role_user], case_id, make_plan_json())
    assert plan.status == "reviewed"


def test_illegal_transitions_are_refused(
    session: Session, users: dict[str, User], case_id: int, make_plan_json: PlanFactory
) -> None:
    plan = store_plan(session, users["phys"], case_id, make_plan_json())
    with pytest.raises(LifecycleError, match="only a reviewed plan can be approved"):
        approve_plan(session, users["onc"], plan.id)
    review_plan(session, users["phys"], plan.id)
    with pytest.raises(LifecycleError, match="only a draft can be reviewed"):
        review_plan(session, users["phys"], plan.id)
    approve_plan(session, users["onc"], plan.id)
    with pytest.raises(LifecycleError, match="only a reviewed plan"):
        approve_plan(session, users["onc"], plan.id)
    session.commit()
    # The ORM refuses to push a sealed plan back or to edit it in place.
    plan.status = "draft"
    with pytest.raises(LifecycleError, match="cannot go back"):
        session.flush()
    session.rollback()
    plan.plan_json = {**plan.plan_json, "treatment_time_min": 30.0}
    with pytest.raises(LifecycleError, match="plan_json cannot be changed"):
        session.flush()
    session.rollback()


def test_change_after_approval_is_a_new_version(
    session: Session, users: dict[str, User], case_id: int, make_plan_json: PlanFactory
) -> None:
    first = _approved(session, users, case_id, make_plan_json())
    second = store_plan(
        session,
        users["phys"],
        case_id,
        make_plan_json(treatment_time_min=25.1),
        parent_plan_id=first.id,
    )
    session.commit()
    assert second.version_number == 2 and second.status == "draft"
    assert second.parent_plan_id == first.id
    session.refresh(first)
    assert first.status == "approved" and first.plan_json["treatment_time_min"] == 24.6
    verify_plan(first)


def test_changes_requested_keeps_the_draft(
    session: Session, users: dict[str, User], case_id: int, make_plan_json: PlanFactory
) -> None:
    plan = store_plan(session, users["phys"], case_id, make_plan_json())
    review = review_plan(session, users["onc"], plan.id, accept=False, comment="use 4 cm")
    assert review.decision == "changes_requested" and plan.status == "draft"


def test_four_eyes_rule(
    session: Session, users: dict[str, User], case_id: int, make_plan_json: PlanFactory
) -> None:
    plan = store_plan(session, users["phys"], case_id, make_plan_json())
    review_plan(session, users["phys2"], plan.id)
    for who in ("phys", "phys2"):  # author and reviewer
        with pytest.raises(PermissionDeniedError, match="another physicist or oncologist"):
            approve_plan(session, users[who], plan.id, require_second_person=True)
    approve_plan(session, users["onc"], plan.id, require_second_person=True)
    assert plan.status == "approved"


def test_plan_for_another_patient_is_refused(
    session: Session, users: dict[str, User], case_id: int, make_plan_json: PlanFactory
) -> None:
    with pytest.raises(ValueError, match="wrong patient"):
        store_plan(session, users["phys"], case_id, make_plan_json(case_id="DEMO-999"))
    with pytest.raises(ValueError, match="treatment_time_min is required"):
        bad = make_plan_json()
        del bad["treatment_time_min"]
        store_plan(session, users["phys"], case_id, bad)
    with pytest.raises(ValueError, match="not representable as JSON"):
        store_plan(session, users["phys"], case_id, make_plan_json(d=float("nan")))


def _tamper(session: Session, plan_id: int, **values: Any) -> None:
    """Edit the row with plain SQL, as someone with database access would."""
    session.execute(sa.update(Plan).where(Plan.id == plan_id).values(**values))
    session.commit()
    session.expire_all()


def test_tampering_with_the_plan_json_is_detected(
    session: Session, users: dict[str, User], case_id: int, make_plan_json: PlanFactory
) -> None:
    plan = _approved(session, users, case_id, make_plan_json())
    edited = make_plan_json(treatment_time_min=34.6)
    _tamper(session, plan.id, plan_json=edited)
    with pytest.raises(TamperedPlanError, match="no longer matches the SHA-256"):
        load_plan(session, plan.id)
    reports = [e for e in entries(session, "plan", plan.id) if e.action == "tamper_detected"]
    assert len(reports) == 1


def test_tampering_with_json_and_hash_together_is_detected(
    session: Session, users: dict[str, User], case_id: int, make_plan_json: PlanFactory
) -> None:
    plan = _approved(session, users, case_id, make_plan_json())
    edited = make_plan_json(treatment_time_min=34.6)
    _tamper(session, plan.id, plan_json=edited, canonical_sha256=canonical_sha256(edited))
    with pytest.raises(TamperedPlanError, match="signature does not match"):
        load_plan(session, plan.id)


def test_tampering_with_the_approver_is_detected(
    session: Session, users: dict[str, User], case_id: int, make_plan_json: PlanFactory
) -> None:
    plan = _approved(session, users, case_id, make_plan_json())
    _tamper(session, plan.id, approved_by_id=users["phys"].id)
    with pytest.raises(TamperedPlanError, match="signature does not match"):
        load_plan(session, plan.id)


def test_seal_from_another_key_is_refused(
    session: Session, users: dict[str, User], case_id: int, make_plan_json: PlanFactory
) -> None:
    plan = _approved(session, users, case_id, make_plan_json())
    with pytest.raises(TamperedPlanError, match="another server key"):
        verify_plan(plan, key=b"x" * 32)


def test_exported_plan_json_verifies_and_detects_edits(
    session: Session, users: dict[str, User], case_id: int, make_plan_json: PlanFactory
) -> None:
    plan = _approved(session, users, case_id, make_plan_json())
    exported = sealed_plan_json(plan)
    assert exported["status"] == "approved" and exported["approval"]["approved_by"] == "onc"
    verify_plan_json(exported)
    exported["applicator_diameter_cm"] = 4.0
    with pytest.raises(TamperedPlanError):
        verify_plan_json(exported)


def test_plan_of_an_edited_case_cannot_be_approved(
    session: Session,
    users: dict[str, User],
    case_id: int,
    case_data: dict[str, Any],
    make_plan_json: PlanFactory,
) -> None:
    plan = store_plan(session, users["phys"], case_id, make_plan_json())
    review_plan(session, users["phys"], plan.id)
    edited = {**case_data, "anatomy": {**case_data["anatomy"], "cavity_diameter_mm": 40}}
    update_case(session, users["surg"], case_id, 1, edited)
    with pytest.raises(
        LifecycleError,
        match=r"computed from version 1 of case \d+, which has since changed \(now version 2\)",
    ):
        approve_plan(session, users["onc"], plan.id)
    replanned = store_plan(
        session, users["phys"], case_id, make_plan_json(), parent_plan_id=plan.id
    )
    assert replanned.case_version == 2
    review_plan(session, users["phys"], replanned.id)
    approve_plan(session, users["onc"], replanned.id)
    assert replanned.status == "approved"
