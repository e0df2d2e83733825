"""Backup and restore of the records and the plan files (``iort backup``, ``iort restore``).

A backup is a folder: ``records.jsonl`` (every row of every table, read in one transaction,
so the copy is consistent on SQLite and PostgreSQL alike, and restores into either),
``plans/`` (the plans' files, derived downloads left out: they are made again), and
``backup.json`` (when, the schema revision, row counts, the SHA-256 of ``records.jsonl``). The
keys are not in it (docs/deployment.md, "Keys"): they are backed up apart, and a restore needs
the key that sealed the records.

Restore goes into an empty database only (created at the backup's revision, then migrated),
then checks every seal and record chain; the chain heads kept beside the key are set back to
the restored records', and a ``restore`` event says so in the department's record.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, func, inspect, select, text
from sqlalchemy.orm import Session

from openiort.records import anchor, audit, chain
from openiort.records.db import current_revision, make_engine, upgrade
from openiort.records.errors import RecordsError, RecordsValueError
from openiort.records.models import AuditLog, Base
from openiort.records.sealed_plans import verify_all_plans

RECORDS_FILE = "records.jsonl"
MANIFEST_FILE = "backup.json"
PLANS_DIR = "plans"
FORMAT = "openiort-backup-v1"
_SKIPPED_PLAN_FILES = ("cache", ".staging")


@dataclass(frozen=True)
class BackupSummary:
    folder: Path
    revision: str | None
    rows: dict[str, int]
    plan_folders: int


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"$dt": value.astimezone(dt.UTC).isoformat() if value.tzinfo else value.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    return value


def _revive(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        if "$dt" in value:
            return dt.datetime.fromisoformat(value["$dt"])
        if "$date" in value:
            return dt.date.fromisoformat(value["$date"])
    return value


def _tables() -> list[Table]:
    return list(Base.metadata.sorted_tables)


def _rows(conn: Connection) -> Iterator[tuple[str, dict[str, Any]]]:
    for table in _tables():
        for row in conn.execute(select(table).order_by(*table.primary_key.columns)).mappings():
            yield table.name, {k: _plain(v) for k, v in row.items()}


def backup(engine: Engine, folder: Path, files_dir: Path | None) -> BackupSummary:
    """Write a backup of the database (and the plan files in ``files_dir``) into ``folder``,
    which must not exist or be empty."""
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise RecordsValueError(f"backup folder {folder} is not empty: choose a new one")
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    counts: dict[str, int] = {}
    digest = hashlib.sha256()
    snapshot: Path | None = None
    source = engine
    if engine.dialect.name == "sqlite":
        # SQLite's online backup: a consistent copy while the server runs, read from there.
        snapshot = folder / ".snapshot.sqlite3"
        raw = engine.raw_connection()
        try:
            copy = sqlite3.connect(snapshot)
            raw.driver_connection.backup(copy)  # type: ignore[union-attr]
            copy.close()
        finally:
            raw.close()
        source = make_engine(f"sqlite:///{snapshot}")
    try:
        with source.connect() as conn:
            if conn.dialect.name == "postgresql":
                # One snapshot of every table while the server goes on writing.
                conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
            revision = current_revision_on(conn)
            with (folder / RECORDS_FILE).open("w", encoding="utf-8") as fh:
                for name, row in _rows(conn):
                    line = json.dumps({"table": name, "row": row}, sort_keys=True) + "\n"
                    fh.write(line)
                    digest.update(line.encode("utf-8"))
                    counts[name] = counts.get(name, 0) + 1
            conn.rollback()
    finally:
        if snapshot is not None:
            source.dispose()
            for leftover in folder.glob(".snapshot.sqlite3*"):
                leftover.unlink()
    copied = 0
    if files_dir is not None and Path(files_dir).is_dir():
        target = folder / PLANS_DIR
        target.mkdir()
        for plan_dir in sorted(Path(files_dir).iterdir()):
            if plan_dir.is_dir() and plan_dir.name.isdigit():
                shutil.copytree(
                    plan_dir, target / plan_dir.name, ignore=shutil.ignore_patterns("cache")
                )
                copied += 1
    manifest = {
        "format": FORMAT,
        "made_utc": dt.datetime.now(dt.UTC).isoformat(),
        "schema_revision": revision,
        "rows": counts,
        "records_sha256": digest.hexdigest(),
        "plan_folders": copied,
        "keys": "not included: back up the key folder apart (docs/deployment.md, 'Keys')",
    }
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return BackupSummary(folder, revision, counts, copied)


def current_revision_on(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def _read_manifest(folder: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((folder / MANIFEST_FILE).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise RecordsValueError(
            f"{folder}: not an openiort backup ({type(exc).__name__})"
        ) from None
    if manifest.get("format") != FORMAT:
        raise RecordsValueError(f"{folder}: backup format {manifest.get('format')!r} unknown")
    digest = hashlib.sha256((folder / RECORDS_FILE).read_bytes()).hexdigest()
    if digest != manifest.get("records_sha256"):
        raise RecordsValueError(f"{folder}: {RECORDS_FILE} does not match its SHA-256: damaged")
    return manifest


def _reset_sequences(conn: Connection) -> None:
    if conn.dialect.name != "postgresql":
        return
    for table in _tables():
        # Integer ids only: a text id (plan_jobs) has no sequence.
        if "id" in table.c and table.c.id.type.python_type is int:
            conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                    f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {table.name}), false)"
                )
            )


def restore(engine: Engine, folder: Path, files_dir: Path | None) -> list[str]:
    """Restore a backup into an empty database (and its plan files into ``files_dir``);
    the problems the checks found afterwards (empty when every seal and chain verifies)."""
    folder = Path(folder)
    manifest = _read_manifest(folder)
    with engine.connect() as conn:
        if inspect(conn).get_table_names() and current_revision(engine) is not None:
            with Session(bind=conn) as s:
                if any(s.scalar(select(func.count()).select_from(t)) for t in _tables()):
                    raise RecordsValueError(
                        "the database is not empty: restore into a new, empty database"
                    )
    revision = manifest["schema_revision"]
    upgrade(engine, revision or "head")
    tables = {t.name: t for t in _tables()}
    with engine.begin() as conn:
        with (folder / RECORDS_FILE).open(encoding="utf-8") as fh:
            batch: dict[str, list[dict[str, Any]]] = {}
            order = [t.name for t in _tables()]
            for line in fh:
                item = json.loads(line)
                batch.setdefault(item["table"], []).append(
                    {k: _revive(v) for k, v in item["row"].items()}
                )
        for name in order:
            if batch.get(name):
                conn.execute(tables[name].insert(), batch[name])
        _reset_sequences(conn)
    upgrade(engine)  # a backup of an older release: migrated (and its genesis written) now
    if files_dir is not None and (folder / PLANS_DIR).is_dir():
        target = Path(files_dir)
        target.mkdir(parents=True, exist_ok=True, mode=0o700)
        for plan_dir in sorted((folder / PLANS_DIR).iterdir()):
            if (target / plan_dir.name).exists():
                raise RecordsValueError(f"plan folder {target / plan_dir.name} exists already")
            shutil.copytree(plan_dir, target / plan_dir.name)
    with Session(engine) as s:
        # The heads kept outside point past the backup: set them back to the restored record.
        heads = {
            r.chain: (r.chain_seq, "")
            for r in s.execute(
                select(
                    AuditLog.chain,
                    func.max(AuditLog.chain_seq).label("chain_seq"),
                )
                .where(AuditLog.chain.is_not(None))
                .group_by(AuditLog.chain)
            )
        }
        full: dict[str, tuple[int, str]] = {}
        for name, (seq, _) in heads.items():
            entry = s.scalars(
                select(AuditLog).where(AuditLog.chain == name, AuditLog.chain_seq == seq)
            ).one()
            full[name] = (seq, entry.entry_hmac or "")
        path = chain.heads_file_for(s)
        if path is not None:
            anchor.reset(full, path)
        audit.record(
            s,
            None,
            "restore",
            "record",
            None,
            {"backup_made_utc": manifest.get("made_utc"), "rows": manifest.get("rows")},
        )
        s.commit()
    with Session(engine) as s:
        problems = [str(f) for f in verify_all_plans(s)]
        problems += [f"{r.chain}: {r.problems[0]}" for r in chain.verify(s) if not r.ok]
    return problems


__all__ = ["BackupSummary", "RecordsError", "backup", "restore"]
