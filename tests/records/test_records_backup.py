"""Backup then restore into an empty database reproduces every record and verifies (both
backends, restored into SQLite and, from PostgreSQL, into a new PostgreSQL database too); the
audit export lists changes and views with both times."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from openiort.records import (
    User,
    approve_plan,
    audit,
    chain,
    record_delivery,
    record_output_check,
    review_plan,
    store_plan,
)
from openiort.records.anchor import HEADS_FILE_ENV, read_heads
from openiort.records.backup import backup, restore
from openiort.records.commands import audit_app
from openiort.records.db import make_engine
from openiort.records.models import Base

PlanFactory = Callable[..., dict[str, Any]]


def _table_rows(engine: sa.Engine) -> dict[str, list[dict[str, Any]]]:
    with engine.connect() as conn:
        return {
            t.name: [
                dict(r) for r in conn.execute(sa.select(t).order_by(*t.primary_key)).mappings()
            ]
            for t in Base.metadata.sorted_tables
        }


@pytest.fixture
def records(
    session: Session, users: dict[str, User], case_id: int, make_plan_json: PlanFactory
) -> int:
    plan = store_plan(session, users["phys"], case_id, make_plan_json())
    review_plan(session, users["phys"], plan.id, comment="checked")
    approve_plan(session, users["onc"], plan.id, comment="for theatre")
    record_output_check(
        session,
        users["phys"],
        device="INTRABEAM 507",
        technique="xray",
        measured_value=1.01,
        expected_value=1.0,
        unit="Gy/min",
        tolerance_pct=2.0,
    )
    session.commit()
    record_delivery(session, users["phys"], plan.id, applicator="3.5 cm", time_min=24.6)
    session.commit()
    audit.record_view(session, users["view"], "plan", plan.id)
    return plan.id


def _restored_into(
    engine: sa.Engine, target_url: str, folder: Path, tmp_path: Path, name: str
) -> None:
    target = make_engine(target_url)
    try:
        problems = restore(target, folder, tmp_path / f"plans-{name}")
        assert problems == []
        before, after = _table_rows(engine), _table_rows(target)
        restore_event = after["audit_log"].pop()  # the restore itself, recorded last
        assert restore_event["action"] == "restore" and restore_event["chain"] == "department"
        assert after == before
        assert (tmp_path / f"plans-{name}" / "7" / "plan.json").read_text() == "{}"
        with Session(target) as s:
            assert [r.chain for r in chain.verify(s) if not r.ok] == []
    finally:
        target.dispose()


def test_backup_then_restore_reproduces_every_record(
    engine: sa.Engine,
    records: int,
    tmp_path: Path,
    db_url: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(HEADS_FILE_ENV, str(tmp_path / "keys" / "chain-heads.json"))
    files = tmp_path / "plans"
    (files / "7" / "cache").mkdir(parents=True)
    (files / "7" / "plan.json").write_text("{}")
    (files / "7" / "cache" / "report.pdf").write_bytes(b"derived: made again")
    summary = backup(engine, tmp_path / "backup", files)
    assert summary.plan_folders == 1 and summary.rows["deliveries"] == 1
    assert not (tmp_path / "backup" / "plans" / "7" / "cache").exists()
    manifest = json.loads((tmp_path / "backup" / "backup.json").read_text())
    assert "not included" in manifest["keys"]
    with pytest.raises(Exception, match="not empty"):
        backup(engine, tmp_path / "backup", files)
    _restored_into(
        engine,
        f"sqlite:///{tmp_path / 'restored.sqlite3'}",
        tmp_path / "backup",
        tmp_path,
        "sqlite",
    )
    # The heads kept outside now name the restored record's events (plus its restore event).
    heads = read_heads(tmp_path / "keys" / "chain-heads.json")
    assert heads["department"][0] >= 1
    if db_url.startswith("postgresql"):
        admin_url: str = request.getfixturevalue("pg_server_url")
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text("DROP DATABASE IF EXISTS openiort_restore"))
            conn.execute(sa.text("CREATE DATABASE openiort_restore"))
        admin.dispose()
        pg_url = admin_url.replace("/postgres?", "/openiort_restore?")
        _restored_into(engine, pg_url, tmp_path / "backup", tmp_path, "pg")


def test_restore_refuses_a_database_with_records(
    engine: sa.Engine, records: int, tmp_path: Path
) -> None:
    backup(engine, tmp_path / "backup", None)
    with pytest.raises(Exception, match="not empty"):
        restore(engine, tmp_path / "backup", None)


def test_audit_export_lists_changes_and_views(
    records: int, db_url: str, tmp_path: Path, session: Session
) -> None:
    out = tmp_path / "audit.jsonl"
    result = CliRunner().invoke(
        audit_app, ["export", "--output", str(out), "--database-url", db_url]
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    actions = [(e["action"], e["entity"], e["username"]) for e in lines]
    assert ("approve", "plan", "onc") in actions and ("deliver", "plan", "phys") in actions
    assert ("view", "plan", "view") in actions  # who viewed which record
    assert all(e["at"] and e["recorded_at"] and e["hmac"] for e in lines)
    # Incremental: only what came after the last id exported.
    last = lines[-1]["id"]
    again = CliRunner().invoke(
        audit_app, ["export", "--since-id", str(last), "--database-url", db_url]
    )
    assert again.exit_code == 0 and again.output.strip() == ""
