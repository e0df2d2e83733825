"""The pages and the API refuse a patient's record that does not verify, say what broke, and
treat another patient's record as usual: one test per tampering of issue 17, each done in SQL
behind openiort's back."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from web_testkit import SEAL_KEY, DemoPlan, api_client, seed_case, seed_plan, user, web_of

from openiort.records import service
from openiort.records.db import session_scope
from openiort.records.delivery import record_delivery
from openiort.records.models import Approval, AuditLog, Delivery, Plan, utcnow


def _second_patient(app: FastAPI, demo_plan: DemoPlan) -> int:
    data = {**demo_plan.case_data, "patient": {**demo_plan.case_data["patient"], "id": "DEMO-777"}}
    return seed_plan(app, demo_plan, seed_case(app, data), "approved")


def _deliver(app: FastAPI, demo_plan: DemoPlan, plan_id: int) -> None:
    extra: dict[str, Any] = {}
    if "output_check_override" in inspect.signature(record_delivery).parameters:
        extra["output_check_override"] = "test: no source QA in this test"
    with session_scope(web_of(app).engine) as s:
        record_delivery(
            s,
            user(s, "phys"),
            plan_id,
            applicator=f"{demo_plan.plan_json['applicator_diameter_cm']:g}",
            time_min=demo_plan.plan_json["delivery"]["treatment_time_min"],
            key=SEAL_KEY,
            **extra,
        )


def _sql(app: FastAPI, *statements: Any) -> None:
    with web_of(app).engine.begin() as conn:
        for statement in statements:
            conn.execute(statement)


def _delete_deliveries(plan_id: int) -> list[Any]:
    return [
        sa.delete(Delivery.__table__).where(Delivery.__table__.c.plan_id == plan_id),
        sa.update(Plan.__table__)
        .where(Plan.__table__.c.id == plan_id)
        .values(status="approved", delivered_at=None),
    ]


def _delivered_without_delivery(plan_id: int) -> list[Any]:
    return [
        sa.update(Plan.__table__)
        .where(Plan.__table__.c.id == plan_id)
        .values(status="delivered", delivered_at=utcnow())
    ]


def _delete_review_entry(plan_id: int) -> list[Any]:
    t = AuditLog.__table__
    return [sa.delete(t).where(t.c.action == "review", t.c.entity_id == plan_id)]


def _approval(column: str, value: str) -> Callable[[int], list[Any]]:
    def tamper(plan_id: int) -> list[Any]:
        t = Approval.__table__
        return [sa.update(t).where(t.c.plan_id == plan_id).values({column: value})]

    return tamper


TAMPERINGS: dict[str, tuple[bool, Callable[[int], list[Any]], str]] = {
    # name: (deliver first, SQL, what the refusal names)
    "deliveries-deleted-status-back": (True, _delete_deliveries, "was deleted from the database"),
    "delivered-without-delivery": (False, _delivered_without_delivery, "was changed"),
    "audit-entry-deleted": (False, _delete_review_entry, "audit entries were deleted"),
    "approver-role-changed": (False, _approval("approver_role", "surgeon"), "approval"),
    "approval-comment-changed": (False, _approval("comment", "fine"), "approval"),
}


@pytest.mark.parametrize("name", list(TAMPERINGS))
def test_a_tampered_record_is_refused_and_others_are_not(
    app: FastAPI, demo_plan: DemoPlan, name: str
) -> None:
    deliver, tamper, named = TAMPERINGS[name]
    plan_id = seed_plan(app, demo_plan, seed_case(app, demo_plan.case_data), "approved")
    if deliver:
        _deliver(app, demo_plan, plan_id)
    other_id = _second_patient(app, demo_plan)
    phys = api_client(app, "phys")
    assert phys.get(f"/plans/{plan_id}").status_code == 200
    _sql(app, *tamper(plan_id))

    page = phys.get(f"/plans/{plan_id}")
    assert page.status_code == 409 and 'data-testid="tampered-record"' in page.text
    assert named in page.text
    api = phys.get(f"/api/plans/{plan_id}")
    assert api.status_code == 409 and named in api.json()["detail"]
    assert api.json()["tampered"] is True
    # No delivery is recorded against it (the double dose of the attack campaign).
    r = phys.post(
        f"/api/plans/{plan_id}/deliveries",
        json={
            "applicator": f"{demo_plan.plan_json['applicator_diameter_cm']:g}",
            "time_min": demo_plan.plan_json["delivery"]["treatment_time_min"],
        },
    )
    assert r.status_code == 409, r.text
    with session_scope(web_of(app).engine) as s:
        count = s.scalar(
            sa.select(sa.func.count()).select_from(Delivery).where(Delivery.plan_id == plan_id)
        )
        assert count == 0
        assert service.get_plan(s, other_id).status == "approved"
    # The other patient's record is used as usual.
    assert phys.get(f"/plans/{other_id}").status_code == 200
    assert phys.get(f"/api/plans/{other_id}").status_code == 200
