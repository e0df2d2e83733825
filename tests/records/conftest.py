"""Database fixtures: every database test runs on SQLite and on a throwaway PostgreSQL server.

The PostgreSQL cluster is started once per test session (per xdist worker) by
scripts/pg_test_cluster.sh, on a unix socket in a temporary directory, and removed at the
end. Missing PostgreSQL binaries fail the tests loudly: `make test` installs them. Each
test gets an empty migrated database holding the test users: a copy of a template file on
SQLite, a database emptied after each test on PostgreSQL.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from argon2 import PasswordHasher
from sqlalchemy.orm import Session

from openiort.records import users as users_module
from openiort.records.db import make_engine, upgrade
from openiort.records.models import AuditLog, Base, User
from openiort.records.users import create_user, list_users

REPO = Path(__file__).resolve().parents[2]
PG_SCRIPT = REPO / "scripts" / "pg_test_cluster.sh"
EXAMPLE_CASE = REPO / "examples" / "left_upper_outer_30mm.yaml"
PASSWORD = "correct horse battery"
SEAL_KEY = "k" * 16 + "test-seal-key-not-for-production" + "0" * 16
# username -> role; "phys2" lets the four-eyes tests use a second physicist.
TEST_USERS = {
    "phys": "physicist",
    "phys2": "physicist",
    "onc": "oncologist",
    "surg": "surgeon",
    "view": "viewer",
}
BACKENDS = ["sqlite", "postgresql"]


def _cheap_hasher() -> PasswordHasher:
    # Test-only parameters: the production argon2 profile costs ~0.5 s a hash on this machine.
    return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture(autouse=True)
def _test_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Cheap hashing, a fixed seal key, and a data directory that is not the user's."""
    old = users_module._hasher
    users_module.use_password_hasher(_cheap_hasher())
    monkeypatch.setenv("OPENIORT_SEAL_KEY", SEAL_KEY)
    monkeypatch.delenv("OPENIORT_SEAL_KEY_FILE", raising=False)
    monkeypatch.setenv("OPENIORT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("OPENIORT_DATABASE_URL", raising=False)
    yield
    users_module.use_password_hasher(old)


def _populate(url: str) -> None:
    upgrade(url)
    engine = make_engine(url)
    users_module.use_password_hasher(_cheap_hasher())
    with Session(engine) as s:
        for name, role in TEST_USERS.items():
            create_user(s, name, role, PASSWORD)
        s.commit()
    engine.dispose()


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """URL of the maintenance database of a throwaway PostgreSQL cluster."""
    if shutil.which("bash") is None:
        raise RuntimeError("bash is needed to start the PostgreSQL test cluster")
    proc = subprocess.run(
        ["bash", str(PG_SCRIPT), "start"], capture_output=True, text=True, timeout=180
    )
    if proc.returncode != 0:
        raise RuntimeError(
            "could not start the throwaway PostgreSQL cluster for the database tests "
            f"(run `make system-deps`):\n{proc.stderr}"
        )
    url = proc.stdout.strip().splitlines()[-1]
    cluster_dir = url.split("host=", 1)[1].removesuffix("/socket")
    try:
        yield url
    finally:
        subprocess.run(["bash", str(PG_SCRIPT), "stop", cluster_dir], timeout=60, check=False)


@pytest.fixture(scope="session")
def pg_database(pg_server_url: str) -> tuple[str, dict[str, list[dict[str, Any]]]]:
    """URL of a migrated PostgreSQL database, and its test users' rows (and the audit entries
    that record them, the department's record chain) for resetting it."""
    admin = sa.create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text("CREATE DATABASE openiort_test"))
    admin.dispose()
    url = pg_server_url.replace("/postgres?", "/openiort_test?")
    _populate(url)
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = {
            t.name: [dict(r._mapping) for r in conn.execute(sa.select(t))]
            for t in (User.__table__, AuditLog.__table__)
        }
    engine.dispose()
    return url, rows


def _reset_pg(url: str, user_rows: dict[str, list[dict[str, Any]]]) -> None:
    """Empty every table and put the test users back (much faster than a new database)."""
    engine = make_engine(url)
    with engine.begin() as conn:
        # A test that leaked a connection must not block the reset.
        conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
        conn.execute(sa.text("SET LOCAL lock_timeout = '10s'"))
        # DELETE beats TRUNCATE on a few rows; ids keep counting, which no test relies on.
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
        conn.execute(sa.insert(User.__table__), user_rows["users"])
        conn.execute(sa.insert(AuditLog.__table__), user_rows["audit_log"])
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file holding the test users."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.sqlite3"
    _populate(f"sqlite:///{path}")
    return path


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database with the test users, on each backend."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "records.sqlite3"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    url, user_rows = request.getfixturevalue("pg_database")
    try:
        yield url
    finally:
        _reset_pg(url, user_rows)


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine: sa.Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as s:
        yield s


@pytest.fixture
def users(session: Session) -> dict[str, User]:
    return {u.username: u for u in list_users(session)}


@pytest.fixture
def case_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE_CASE.read_text())
    return data


def _plan_json(technique: str = "xray", case_id: str = "DEMO-001", **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "technique": technique,
        "case_id": case_id,
        "status": "draft",
        "dose_at_depth_gy": {"0": 20.0, "5": 8.12, "10": 4.61, "20": 1.93},
        # Lifecycle tests need approvable plans: department device data (example data are
        # refused at approval; tests of that rule use the real example plans).
        "device": {"status": "department", "example_source": False},
    }
    if technique == "xray":
        base |= {
            "prescription": {"dose_gy": 20.0, "dose_definition": "TARGIT", "point": "surface"},
            "applicator_diameter_cm": 3.5,
            "treatment_time_min": 24.6,
        }
    elif technique == "electron":
        base |= {
            "prescription": {"dose_gy": 21.0, "dose_definition": None, "point": "90% isodose"},
            "applicator_diameter_cm": 5,
            "energy_mev": 9,
            "bevel_deg": 15,
            "monitor_units": 2480,
            "treatment_time_min": 2.0,
        }
    else:
        base |= {
            "prescription": {"dose_gy": 10.0, "dose_definition": None, "point": "5 mm"},
            "applicator": "balloon",
            "total_time_s": 300.0,
            "treatment_time_min": 5.0,
        }
    base.update(extra)
    return copy.deepcopy(base)


@pytest.fixture
def make_plan_json() -> Callable[..., dict[str, Any]]:
    """Factory of small hand-written plan dicts with the keys the records layer reads."""
    return _plan_json


@pytest.fixture
def case_id(session: Session, users: dict[str, User], case_data: dict[str, Any]) -> int:
    """Record id of a committed case for patient DEMO-001, entered by the surgeon."""
    from openiort.records.service import create_case, create_patient

    patient = create_patient(session, users["surg"], "DEMO-001", name="Jane Testpatient")
    case = create_case(session, users["surg"], patient.id, case_data)
    session.commit()
    return case.id
