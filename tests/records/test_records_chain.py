"""The tamper-evident record on both backends: each tampering of issue 17 done in SQL, behind
openiort's back as someone with write access to the database would, is found by
``iort db verify`` (naming what broke) and refused when the record is used, while another
patient's record is used as usual.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import typer
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from openiort.records import (
    TamperedRecordError,
    User,
    approve_plan,
    chain,
    create_case,
    create_patient,
    load_plan,
    record_delivery,
    review_plan,
    store_plan,
    update_patient,
)
from openiort.records.anchor import HEADS_FILE_ENV, read_heads
from openiort.records.db import make_engine, upgrade
from openiort.records.models import Approval, AuditLog, Delivery, Plan, utcnow

PlanFactory = Callable[..., dict[str, Any]]
RELEASE_DB = Path(__file__).parent / "data" / "release-0.1.0.sqlite"


@pytest.fixture(autouse=True)
def heads_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Chain heads kept in a file of the test's own (beside a key, in a real installation)."""
    path = tmp_path / "keys" / "chain-heads.json"
    monkeypatch.setenv(HEADS_FILE_ENV, str(path))
    return path


@pytest.fixture
def app() -> typer.Typer:
    from openiort.records.commands import db_app

    root = typer.Typer()
    root.add_typer(db_app, name="db")
    return root


def _delivered(
    session: Session, users: dict[str, User], case_id: int, plan_json: dict[str, Any]
) -> Plan:
    plan = store_plan(session, users["phys"], case_id, plan_json)
    review_plan(session, users["phys"], plan.id, comment="checked")
    approve_plan(session, users["onc"], plan.id, comment="approved for theatre")
    session.commit()
    record_delivery(session, users["phys"], plan.id, applicator="3.5 cm", time_min=24.6)
    session.commit()
    return plan


def _other_patient(
    session: Session, users: dict[str, User], case_data: dict[str, Any], make: PlanFactory
) -> Plan:
    patient = create_patient(session, users["surg"], "DEMO-002")
    data = json.loads(json.dumps(case_data))
    data["patient"]["id"] = "DEMO-002"
    case = create_case(session, users["surg"], patient.id, data)
    plan = store_plan(session, users["phys"], case.id, make(case_id="DEMO-002"))
    review_plan(session, users["phys"], plan.id)
    approve_plan(session, users["onc"], plan.id)
    session.commit()
    return plan


def _broken(session: Session) -> dict[str, list[str]]:
    session.expire_all()
    return {r.chain: r.problems for r in chain.verify(session) if not r.ok}


def _verify_cli(app: typer.Typer, db_url: str) -> Any:
    return CliRunner().invoke(app, ["db", "verify", "--database-url", db_url])


@pytest.fixture
def delivered(
    session: Session,
    users: dict[str, User],
    case_id: int,
    case_data: dict[str, Any],
    make_plan_json: PlanFactory,
) -> Iterator[tuple[Plan, Plan, str]]:
    """A delivered x-ray plan of DEMO-001, an approved plan of DEMO-002, and the first
    patient's chain; everything verifies before each test tampers."""
    plan = _delivered(session, users, case_id, make_plan_json())
    other = _other_patient(session, users, case_data, make_plan_json)
    assert _broken(session) == {}
    name = chain.patient_chain(plan.case.patient_id)
    yield plan, other, name


def _assert_refused_only_there(
    session: Session, users: dict[str, User], plan: Plan, other: Plan, expected: str
) -> None:
    session.expire_all()
    with pytest.raises(TamperedRecordError, match=expected):
        load_plan(session, plan.id, actor=users["phys"])
    session.rollback()
    # The other patient's record is used as usual.
    assert load_plan(session, other.id, actor=users["phys"]).id == other.id
    session.rollback()


# ------------------------------------------------------------------ the tamperings


def test_deleted_deliveries_and_status_set_back_are_detected_and_refused(
    session: Session,
    users: dict[str, User],
    delivered: tuple[Plan, Plan, str],
    app: typer.Typer,
    db_url: str,
) -> None:
    plan, other, name = delivered
    session.execute(sa.delete(Delivery.__table__).where(Delivery.__table__.c.plan_id == plan.id))
    session.execute(
        sa.update(Plan.__table__)
        .where(Plan.__table__.c.id == plan.id)
        .values(status="approved", delivered_at=None)
    )
    session.commit()
    broken = _broken(session)
    assert list(broken) == [name]
    assert any("delivery" in p and "was deleted" in p for p in broken[name])
    result = _verify_cli(app, db_url)
    assert result.exit_code == 1 and f"TAMPERED: {name}:" in result.output
    # The second full delivery the campaign recorded is refused.
    with pytest.raises(TamperedRecordError):
        record_delivery(session, users["phys"], plan.id, applicator="3.5 cm", time_min=24.6)
    session.rollback()
    assert session.scalar(sa.select(sa.func.count()).select_from(Delivery)) == 0
    _assert_refused_only_there(session, users, plan, other, "does not verify")


def test_approved_to_delivered_without_delivery_is_detected(
    session: Session,
    users: dict[str, User],
    case_id: int,
    make_plan_json: PlanFactory,
    case_data: dict[str, Any],
    app: typer.Typer,
    db_url: str,
) -> None:
    plan = store_plan(session, users["phys"], case_id, make_plan_json())
    review_plan(session, users["phys"], plan.id)
    approve_plan(session, users["onc"], plan.id)
    session.commit()
    other = _other_patient(session, users, case_data, make_plan_json)
    session.execute(
        sa.update(Plan.__table__)
        .where(Plan.__table__.c.id == plan.id)
        .values(status="delivered", delivered_at=utcnow())
    )
    session.commit()
    broken = _broken(session)
    name = chain.patient_chain(plan.case.patient_id)
    assert list(broken) == [name]
    assert f"plan {plan.id} was changed in the database" in broken[name][0]
    assert _verify_cli(app, db_url).exit_code == 1
    _assert_refused_only_there(session, users, plan, other, f"plan {plan.id} was changed")


def test_a_deleted_audit_entry_is_detected(
    session: Session,
    users: dict[str, User],
    delivered: tuple[Plan, Plan, str],
    app: typer.Typer,
    db_url: str,
) -> None:
    plan, other, name = delivered
    review = session.scalars(
        sa.select(AuditLog).where(AuditLog.action == "review", AuditLog.entity_id == plan.id)
    ).one()
    session.execute(sa.delete(AuditLog.__table__).where(AuditLog.__table__.c.id == review.id))
    session.commit()
    broken = _broken(session)
    assert list(broken) == [name]
    assert "missing" in broken[name][0] and "audit entries were deleted" in broken[name][0]
    result = _verify_cli(app, db_url)
    assert result.exit_code == 1 and "audit entries were deleted" in result.output
    _assert_refused_only_there(session, users, plan, other, "audit entries were deleted")


@pytest.mark.parametrize(
    ("column", "value"),
    [("approver_role", "surgeon"), ("comment", "approved without reservation")],
    ids=["approver-role", "approval-comment"],
)
def test_a_changed_approval_is_detected(
    session: Session,
    users: dict[str, User],
    delivered: tuple[Plan, Plan, str],
    app: typer.Typer,
    db_url: str,
    column: str,
    value: str,
) -> None:
    plan, other, name = delivered
    table = Approval.__table__
    session.execute(sa.update(table).where(table.c.plan_id == plan.id).values({column: value}))
    session.commit()
    approval_id = session.scalar(sa.select(Approval.id).where(Approval.plan_id == plan.id))
    broken = _broken(session)
    assert broken == {
        name: [f"approval {approval_id} was changed in the database after event 5 recorded it"]
    }
    assert _verify_cli(app, db_url).exit_code == 1
    _assert_refused_only_there(session, users, plan, other, f"approval {approval_id}")


def test_an_edited_audit_entry_is_detected(
    session: Session, users: dict[str, User], delivered: tuple[Plan, Plan, str]
) -> None:
    plan, _other, name = delivered
    table = AuditLog.__table__
    session.execute(
        sa.update(table)
        .where(table.c.action == "approve", table.c.entity_id == plan.id)
        .values(username="someone_else")
    )
    session.commit()
    (problem,) = _broken(session)[name]
    assert "was altered after it was written" in problem


def test_a_truncated_tail_is_found_by_the_head_kept_outside(
    session: Session,
    users: dict[str, User],
    delivered: tuple[Plan, Plan, str],
    heads_file: Path,
) -> None:
    plan, _other, name = delivered
    patient_id = plan.case.patient_id
    update_patient(session, users["surg"], patient_id, name="Jane Corrected")
    session.commit()
    seq = read_heads(heads_file)[name][0]
    # Undo the correction and delete its event: the rows match the chain that is left.
    table = AuditLog.__table__
    session.execute(sa.delete(table).where(table.c.chain == name, table.c.chain_seq == seq))
    session.execute(
        sa.text("UPDATE patients SET name = 'Jane Testpatient' WHERE id = :id"), {"id": patient_id}
    )
    session.commit()
    (problem,) = _broken(session)[name]
    assert f"ends at event {seq - 1}, but event {seq} was written" in problem


# ------------------------------------------------------------------ what stays intact


def test_changes_through_openiort_verify_and_heads_follow(
    session: Session, users: dict[str, User], delivered: tuple[Plan, Plan, str], heads_file: Path
) -> None:
    _plan, other, name = delivered
    heads = read_heads(heads_file)
    assert heads[name][0] == 6  # patient, case, plan, review, approval, delivery
    assert set(heads) >= {name, chain.patient_chain(other.case.patient_id)}
    # A change through the models without an audit entry is still attested.
    user = session.get(User, users["view"].id)
    assert user is not None
    user.active = False
    session.commit()
    assert _broken(session) == {}
    attest = session.scalars(
        sa.select(AuditLog).where(AuditLog.action == chain.ATTEST_ACTION)
    ).one()
    assert attest.chain == chain.DEPARTMENT and attest.rows == {
        f"users/{user.id}": attest.rows[f"users/{user.id}"]
    }


def test_a_release_database_gets_genesis_events_and_verifies(
    tmp_path: Path, app: typer.Typer
) -> None:
    copy = tmp_path / "release.sqlite"
    shutil.copyfile(RELEASE_DB, copy)
    url = f"sqlite:///{copy}"
    engine = make_engine(url)
    try:
        upgrade(engine)
        with Session(engine) as s:
            genesis = s.scalars(
                sa.select(AuditLog).where(AuditLog.action == chain.GENESIS_ACTION)
            ).all()
            assert {g.chain for g in genesis} >= {"department", "patient:1"}
            assert all(g.chain_seq == 1 for g in genesis)
            assert {r.chain: r.problems for r in chain.verify(s) if not r.ok} == {}
        ok = _verify_cli(app, url)
        assert ok.exit_code == 0, ok.output
        # The delivery the release recorded is now part of its patient's record.
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM deliveries"))
            conn.execute(sa.text("UPDATE plans SET status = 'approved', delivered_at = NULL"))
        bad = _verify_cli(app, url)
        assert bad.exit_code == 1 and "was deleted from the database" in bad.output
    finally:
        engine.dispose()


def test_verify_without_heads_says_tails_are_unguarded(
    app: typer.Typer, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(HEADS_FILE_ENV)
    result = _verify_cli(app, db_url)
    assert result.exit_code == 0, result.output
    assert "chain heads are not kept outside the database" in result.output


def test_late_entries_keep_event_and_recording_times(
    session: Session, users: dict[str, User], case_id: int, make_plan_json: PlanFactory
) -> None:
    from openiort.records import audit

    earlier = utcnow() - dt.timedelta(hours=3)
    entry = audit.record(session, users["phys"], "note", "case", case_id, {}, at=earlier)
    session.commit()
    assert entry.at == earlier and entry.recorded_at is not None
    assert entry.recorded_at - entry.at >= dt.timedelta(hours=3)
    assert _broken(session) == {}


def test_verify_walks_the_plan_files(
    delivered: tuple[Plan, Plan, str], app: typer.Typer, db_url: str, tmp_path: Path
) -> None:
    import os

    from openiort.web.artifacts import PlanFiles

    plan, _other, _name = delivered
    files = PlanFiles(tmp_path / "plans", key=os.environ["OPENIORT_SEAL_KEY"].encode())
    (files.plan_dir(plan.id) / "viewer").mkdir(parents=True)
    dose = files.plan_dir(plan.id) / "viewer" / "dose_gy.npy"
    dose.write_bytes(b"dose")
    files.record_files(plan.id, [])
    args = ["db", "verify", "--database-url", db_url, "--files-dir", str(tmp_path / "plans")]
    ok = CliRunner().invoke(app, args)
    assert ok.exit_code == 0, ok.output
    dose.write_bytes(b"dose x 0.1")
    bad = CliRunner().invoke(app, args)
    assert bad.exit_code == 1
    assert f"plan {plan.id}: viewer/dose_gy.npy on disk does not match" in bad.output
