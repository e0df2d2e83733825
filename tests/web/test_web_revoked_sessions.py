"""Logged-out sessions are kept in the database (issue 17): a session logged out on one server
process is refused by every other and after a restart; the deny list is looked up by its key,
pruned by expiry, and grows only with logins, never with anonymous requests."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from web_testkit import SEAL_KEY, SESSION_SECRET, api_client, build_app, web_of

from openiort.records.models import RevokedSession
from openiort.web.app import create_app
from openiort.web.sessions import DbRevocations, SessionData, SessionManager


@pytest.fixture
def apps(tmp_path: Path) -> Iterator[tuple[FastAPI, FastAPI]]:
    """Two app instances (as two server processes) on one SQLite database."""
    root = tmp_path / "web"
    first = build_app(root)
    second = create_app(
        f"sqlite:///{root / 'records.sqlite3'}",
        seal_key=SEAL_KEY,
        files_dir=root / "plans",
        session_secret_key=SESSION_SECRET,
        executor="thread",
    )
    with TestClient(first), TestClient(second):
        yield first, second


def _rows(app: FastAPI) -> int:
    with web_of(app).engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(RevokedSession)) or 0)


def _replay(app: FastAPI, cookie: str) -> TestClient:
    client = TestClient(app)
    client.cookies.set("openiort_session", cookie)
    return client


@pytest.mark.parametrize("logout_on", [0, 1])
def test_a_session_logged_out_on_one_process_is_refused_on_the_other(
    apps: tuple[FastAPI, FastAPI], logout_on: int
) -> None:
    client = api_client(apps[0], "phys")
    cookie = client.cookies["openiort_session"]
    for app in apps:
        assert _replay(app, cookie).get("/api/session").status_code == 200
    logout = _replay(apps[logout_on], cookie)
    logout.headers["X-CSRF-Token"] = client.headers["X-CSRF-Token"]
    assert logout.delete("/api/session").status_code == 204
    for app in apps:
        assert _replay(app, cookie).get("/api/session").status_code == 401
    assert _rows(apps[0]) == 1
    # Another user's session on the same database is untouched.
    other = api_client(apps[1], "view")
    assert (
        _replay(apps[0], other.cookies["openiort_session"]).get("/api/session").status_code == 200
    )


def test_a_restarted_process_still_refuses_the_logged_out_session(tmp_path: Path) -> None:
    root = tmp_path / "web"
    first = build_app(root)
    with TestClient(first):
        client = api_client(first, "phys")
        cookie = client.cookies["openiort_session"]
        assert client.delete("/api/session").status_code == 204
    again = create_app(
        f"sqlite:///{root / 'records.sqlite3'}",
        seal_key=SEAL_KEY,
        files_dir=root / "plans",
        session_secret_key=SESSION_SECRET,
        executor="thread",
    )
    with TestClient(again):
        assert _replay(again, cookie).get("/api/session").status_code == 401


def test_anonymous_sessions_never_grow_the_list(apps: tuple[FastAPI, FastAPI]) -> None:
    app = apps[0]
    for _ in range(20):
        anon = TestClient(app)
        r = anon.get("/login")
        assert r.status_code == 200
        anon.post("/logout", data={"csrf_token": "x"})
        anon.delete("/api/session")
    manager = web_of(app).sessions
    manager.revoke(SessionData.fresh(time.time()))  # no user: nothing to refuse
    assert _rows(app) == 0


def test_expired_rows_are_pruned_when_a_row_is_added(apps: tuple[FastAPI, FastAPI]) -> None:
    engine = web_of(apps[0]).engine
    store = DbRevocations(engine)
    now = time.time()
    for i in range(50):
        store.revoke(f"old-{i}", until=now - 10)
    store.revoke("old-49", until=now - 10)  # twice: no error
    store.revoke("live", until=now + 100)
    assert _rows(apps[0]) == 1
    assert store.is_revoked("live", now) and not store.is_revoked("old-3", now)
    assert not store.is_revoked("live", now + 101)  # expired: the cookie is refused anyway


def test_the_lookup_uses_the_key_not_a_scan(apps: tuple[FastAPI, FastAPI]) -> None:
    engine = web_of(apps[0]).engine
    table = RevokedSession.__table__
    query = select(table.c.expires_at).where(table.c.sid_sha256 == "ab" * 32)
    compiled = query.compile(engine, compile_kwargs={"literal_binds": True})
    with engine.connect() as conn:
        plan = " ".join(str(r[-1]) for r in conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
    assert "SEARCH" in plan and ("PRIMARY KEY" in plan or "INDEX" in plan), plan
    prune = select(table.c.sid_sha256).where(
        table.c.expires_at < dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    )
    compiled = prune.compile(engine, compile_kwargs={"literal_binds": True})
    with engine.connect() as conn:
        plan = " ".join(str(r[-1]) for r in conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
    assert "ix_revoked_sessions_expires_at" in plan, plan


def test_the_memory_store_works_alike_for_single_process_tools() -> None:
    manager = SessionManager(b"s" * 32, max_age_s=100, idle_s=10, secure=None)
    data = manager.login(7)
    manager.revoke(data)
    assert manager.revocations.is_revoked(data.sid, time.time())
    assert not manager.revocations.is_revoked(data.sid, time.time() + 200)
