"""Database plumbing: migrations from empty on both backends, URLs, timestamps, seal keys."""

from __future__ import annotations

import datetime as dt
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.orm import Session

from openiort.records import SchemaError, SealKeyError, User
from openiort.records.db import (
    check_schema,
    current_revision,
    database_url,
    head_revision,
    make_engine,
    normalise_url,
    prepare_database,
    upgrade,
)
from openiort.records.errors import RecordsValueError
from openiort.records.models import Base, SourceOutputCheck
from openiort.records.seal import create_key, key_id, seal_key

TABLES = {
    "users",
    "patients",
    "cases",
    "plans",
    "plan_reviews",
    "plan_approvals",
    "deliveries",
    "invivo_readings",
    "qa_output_checks",
    "qa_isotropy_checks",
    "audit_log",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with nothing in it."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    server: str = request.getfixturevalue("pg_server_url")
    name = f"empty_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.replace("/postgres?", f"/{name}?")
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_migrations_from_empty_match_the_models(empty_url: str) -> None:
    engine = make_engine(empty_url)
    try:
        with pytest.raises(SchemaError, match="no openiort schema yet"):
            check_schema(engine)
        upgrade(empty_url)
        assert current_revision(engine) == head_revision()
        assert set(sa.inspect(engine).get_table_names()) >= TABLES
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(ctx, Base.metadata) == []
        # Reversible: down to nothing and up again.
        upgrade(empty_url, "head")  # idempotent
        from alembic import command

        from openiort.records.db import alembic_config

        with engine.begin() as conn:
            cfg = alembic_config(empty_url)
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "base")
        assert not TABLES & set(sa.inspect(engine).get_table_names())
        upgrade(engine)
        check_schema(engine)
    finally:
        engine.dispose()


def test_prepare_database_creates_an_empty_one_and_refuses_an_unknown_revision(
    empty_url: str,
) -> None:
    engine = prepare_database(empty_url)
    try:
        check_schema(engine)
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '0000old'"))
        with pytest.raises(SchemaError, match="run `iort db upgrade`"):
            prepare_database(empty_url)
    finally:
        engine.dispose()


def test_timestamps_come_back_aware_utc(engine: sa.Engine, users: dict[str, User]) -> None:
    cet = dt.timezone(dt.timedelta(hours=1))
    when = dt.datetime(2025, 3, 4, 9, 30, 15, 123456, tzinfo=cet)
    with Session(engine) as s:
        check = SourceOutputCheck(
            device="d",
            technique="xray",
            performed_at=when,
            performed_by_id=users["phys"].id,
            measured_value=1.0,
            expected_value=1.0,
            unit="Gy/min",
            deviation_pct=0.0,
            tolerance_pct=2.0,
            passed=True,
        )
        s.add(check)
        s.commit()
        check_id = check.id
    with Session(engine) as s:
        stored = s.get(SourceOutputCheck, check_id)
        assert stored is not None
        assert stored.performed_at == when
        assert stored.performed_at.utcoffset() == dt.timedelta(0)
        stored_naive = SourceOutputCheck(
            device="d",
            technique="xray",
            performed_at=dt.datetime(2025, 3, 4, 9, 30),
            performed_by_id=users["phys"].id,
            measured_value=1.0,
            expected_value=1.0,
            unit="Gy/min",
            deviation_pct=0.0,
            tolerance_pct=2.0,
            passed=True,
        )
        s.add(stored_naive)
        with pytest.raises(sa.exc.StatementError, match="timezone-aware"):
            s.flush()


def test_database_url_defaults_and_normalisation(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OPENIORT_DATA_DIR", str(tmp_path / "d"))
    assert database_url() == f"sqlite:///{tmp_path / 'd' / 'openiort.sqlite3'}"
    monkeypatch.setenv("OPENIORT_DATABASE_URL", "postgresql://iort:s3cret@db.example/iort")
    assert database_url() == "postgresql+psycopg://iort:s3cret@db.example/iort"
    assert normalise_url("postgres://u@h/d") == "postgresql+psycopg://u@h/d"
    with pytest.raises(RecordsValueError, match="backend 'mysql' is not supported"):
        normalise_url("mysql://u@h/d")
    with pytest.raises(RecordsValueError, match="cannot be parsed"):
        normalise_url("not a url")


def test_sqlite_file_and_directory_are_created(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'dir' / 'records.sqlite3'}"
    engine = prepare_database(url)
    engine.dispose()
    assert (tmp_path / "new" / "dir" / "records.sqlite3").is_file()


def test_seal_key_file_is_created_private_and_reused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("OPENIORT_SEAL_KEY")
    monkeypatch.setenv("OPENIORT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("OPENIORT_KEY_DIR", str(tmp_path / "keys"))
    with pytest.raises(SealKeyError, match="iort key init"):
        seal_key()  # a missing key is never made silently
    create_key()
    key = seal_key()
    path = tmp_path / "keys" / "seal.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) == 32 and seal_key() == key
    assert len(key_id(key)) == 16
    os.chmod(path, 0o644)
    with pytest.raises(SealKeyError, match="readable by other users"):
        seal_key()
    os.chmod(path, 0o600)
    path.write_text("not hex\n")
    with pytest.raises(SealKeyError, match="hexadecimal"):
        seal_key()


def test_short_seal_key_from_the_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENIORT_SEAL_KEY", "too-short")
    with pytest.raises(SealKeyError, match="at least 32 characters"):
        seal_key()


def test_a_read_only_sqlite_file_is_refused_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from openiort.records.db import check_sqlite_writable
    from openiort.records.errors import RecordsValueError

    db = tmp_path / "records.sqlite3"
    prepare_database(f"sqlite:///{db}").dispose()
    shm = tmp_path / "records.sqlite3-shm"
    shm.touch()
    real = os.access
    # Tests run as root, who may write anything: the check is fed what a server user sees.
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == shm else real(p, mode))
    with pytest.raises(RecordsValueError, match=r"records\.sqlite3-shm cannot be written"):
        check_sqlite_writable(f"sqlite:///{db}")
    with pytest.raises(RecordsValueError, match="-shm cannot be written"):
        prepare_database(f"sqlite:///{db}")
