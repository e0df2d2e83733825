"""The signed chart (issue 17): at approval the printed chart's patient details and signature
lines are signed as a second document that names the plan's seal; a chart changed in the
database afterwards is found by ``iort db verify`` and refused before the approved chart is
printed; a patient's name corrected after approval (audited) is no tampering."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import typer
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from openiort.records import (
    TamperedPlanError,
    User,
    approve_plan,
    review_plan,
    store_plan,
    update_patient,
)
from openiort.records.anchor import HEADS_FILE_ENV
from openiort.records.chart_seal import (
    CHART_KIND,
    chart_problem,
    require_signed_chart,
)
from openiort.records.models import Approval, AuditLog, Plan
from openiort.records.seal import DOCUMENT_ALGORITHM, document_signature_problem
from openiort.records.sealed_plans import verify_all_plans

PlanFactory = Callable[..., dict[str, Any]]


@pytest.fixture(autouse=True)
def heads_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "keys" / "chain-heads.json"
    monkeypatch.setenv(HEADS_FILE_ENV, str(path))
    return path


@pytest.fixture
def approved(
    session: Session, users: dict[str, User], case_id: int, make_plan_json: PlanFactory
) -> Plan:
    plan = store_plan(session, users["phys"], case_id, make_plan_json())
    review_plan(session, users["phys"], plan.id, comment="checked")
    approve_plan(session, users["onc"], plan.id, comment="approved for theatre")
    session.commit()
    return plan


def _approvals() -> sa.Table:
    return Approval.__table__  # type: ignore[return-value]


def _tamper(session: Session, plan: Plan, **values: Any) -> None:
    t = _approvals()
    session.execute(sa.update(t).where(t.c.plan_id == plan.id).values(**values))
    session.commit()
    session.expire_all()


def _verify_cli(db_url: str) -> Any:
    from openiort.records.commands import db_app

    root = typer.Typer()
    root.add_typer(db_app, name="db")
    return CliRunner().invoke(root, ["db", "verify", "--database-url", db_url])


def test_approval_signs_the_chart_with_the_plans_seal(session: Session, approved: Plan) -> None:
    approval = approved.approval
    assert approval is not None and approval.chart_json is not None
    chart = approval.chart_json
    assert chart["patient"]["id"] == approved.case.patient.external_id
    assert chart["plan_seal"] == {
        "canonical_sha256": approved.canonical_sha256,
        "hmac_sha256": approved.seal_hmac,
        "key_id": approved.seal_key_id,
    }
    steps = [(s["step"], s["by"]) for s in chart["signatures"]]
    assert steps == [("computed", "phys"), ("accepted", "phys"), ("approved", "onc")]
    assert chart["signatures"][-1]["note"] == "approved for theatre"
    assert approval.chart_key_id == approved.seal_key_id  # the current key
    assert approval.chart_hmac is not None
    assert (
        document_signature_problem(CHART_KIND, chart, approval.chart_hmac, approval.chart_key_id)
        is None
    )
    # A chart signature is not a plan seal: another algorithm label, another kind.
    assert "document" in DOCUMENT_ALGORITHM
    assert document_signature_problem("plan", chart, approval.chart_hmac, approval.chart_key_id)
    approve = session.scalars(
        sa.select(AuditLog).where(AuditLog.action == "approve", AuditLog.entity_id == approved.id)
    ).one()
    assert approve.summary["chart_hmac"] == approval.chart_hmac
    assert chart_problem(session, approved) is None
    require_signed_chart(session, approved)
    assert verify_all_plans(session) == []


def test_a_changed_chart_is_detected(session: Session, approved: Plan, db_url: str) -> None:
    approval = approved.approval
    assert approval is not None and approval.chart_json is not None
    chart = dict(approval.chart_json)
    chart["patient"] = {**chart["patient"], "name": "Someone Else"}
    _tamper(session, approved, chart_json=chart)
    problem = chart_problem(session, approved)
    assert problem is not None and "signed chart: its signature does not match" in problem
    with pytest.raises(TamperedPlanError, match="signed chart"):
        require_signed_chart(session, approved)
    session.rollback()
    failures = verify_all_plans(session)
    assert [f.plan_id for f in failures] == [approved.id]
    result = _verify_cli(db_url)
    assert result.exit_code == 1
    assert f"plan {approved.id}" in result.output and "signed chart" in result.output


def test_a_changed_approval_comment_no_longer_matches_the_chart(
    session: Session, approved: Plan
) -> None:
    _tamper(session, approved, comment="not approved", approver_role="viewer")
    problem = chart_problem(session, approved)
    assert problem == "the chart's signatures differ from the chart signed at approval"


def test_a_removed_chart_is_detected_through_the_approval_entry(
    session: Session, approved: Plan
) -> None:
    _tamper(session, approved, chart_json=None, chart_hmac=None, chart_key_id=None)
    assert chart_problem(session, approved) == (
        "its signed chart was removed (the approval entry names one)"
    )


def test_a_chart_from_another_plan_does_not_fit(
    session: Session,
    users: dict[str, User],
    approved: Plan,
    case_id: int,
    make_plan_json: PlanFactory,
) -> None:
    second = store_plan(session, users["phys"], case_id, make_plan_json())
    review_plan(session, users["phys"], second.id)
    approve_plan(session, users["onc"], second.id)
    session.commit()
    other = second.approval
    assert other is not None
    _tamper(
        session,
        approved,
        chart_json=other.chart_json,
        chart_hmac=other.chart_hmac,
        chart_key_id=other.chart_key_id,
    )
    problem = chart_problem(session, approved)
    assert problem == "its signed chart is not the one its approval entry names"


def test_a_name_corrected_after_approval_is_not_tampering(
    session: Session, users: dict[str, User], approved: Plan
) -> None:
    update_patient(session, users["surg"], approved.case.patient_id, name="Corrected Name")
    session.commit()
    session.expire_all()
    assert chart_problem(session, approved) is None  # an audited correction, chained
    assert verify_all_plans(session) == []
    require_signed_chart(session, approved)
    approval = approved.approval
    assert approval is not None and approval.chart_json is not None
    assert approval.chart_json["patient"]["name"] != "Corrected Name"  # as approved


def test_a_server_with_another_key_cannot_verify_the_chart(
    session: Session, approved: Plan
) -> None:
    other_key = b"another-current-key-after-rotation-0000000"
    approval = approved.approval
    assert approval is not None and approval.chart_json and approval.chart_hmac
    assert approval.chart_key_id
    problem = document_signature_problem(
        CHART_KIND, approval.chart_json, approval.chart_hmac, approval.chart_key_id, other_key
    )
    assert problem is not None and "another server key" in problem
