"""Database location, engines, migrations and sessions.

The database is a SQLite file in the user's data directory unless ``OPENIORT_DATABASE_URL``
names another (PostgreSQL in a team: ``postgresql://user@host/dbname``; the psycopg 3 driver is
used). The schema is created and migrated only by the Alembic migrations shipped inside this
package, run programmatically by :func:`upgrade`; no ``alembic.ini`` is needed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import platformdirs
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from openiort.records.errors import RecordsValueError, SchemaError

APP_NAME = "openiort"
DATABASE_URL_ENV = "OPENIORT_DATABASE_URL"
DATA_DIR_ENV = "OPENIORT_DATA_DIR"
SQLITE_FILENAME = "openiort.sqlite3"
MIGRATIONS = "openiort.records:migrations"
# Revisions older than the record chains (0003): upgrading from one writes the genesis events.
PRE_CHAIN_REVISIONS: frozenset[str] = frozenset({"0001", "0002"})
# Seconds a SQLite writer waits for another writer's lock before failing.
SQLITE_BUSY_TIMEOUT_S = 15.0


def data_dir() -> Path:
    """The directory for openiort's data (database, seal key).

    ``OPENIORT_DATA_DIR`` when set, else the platform's user data directory
    (``~/.local/share/openiort`` on Linux). Not created here.
    """
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env) if env else platformdirs.user_data_path(APP_NAME)


def database_url() -> str:
    """The database URL: ``OPENIORT_DATABASE_URL``, else a SQLite file in :func:`data_dir`."""
    env = os.environ.get(DATABASE_URL_ENV, "").strip()
    if env:
        return normalise_url(env)
    return f"sqlite:///{data_dir() / SQLITE_FILENAME}"


def normalise_url(url: str) -> str:
    """Name the psycopg 3 driver in bare ``postgresql://`` (and ``postgres://``) URLs.

    Raises
    ------
    RecordsValueError
        If the URL cannot be parsed or names a backend other than SQLite or PostgreSQL.
    """
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError; never echo credentials
        raise RecordsValueError(f"database URL cannot be parsed: {type(exc).__name__}") from None
    backend = parsed.get_backend_name()
    if backend == "postgres":
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend == "postgresql":
        if "+" not in parsed.drivername:  # no driver named: psycopg 3, the one installed
            parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend != "sqlite":
        raise RecordsValueError(
            f"database URL: backend {backend!r} is not supported (use sqlite or postgresql)"
        )
    return parsed.render_as_string(hide_password=False)


def _sqlite_connect_hook(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    # WAL lets page views read while a writer commits; ignored for in-memory databases.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """An engine for ``url`` (default :func:`database_url`).

    SQLite gets foreign keys enforced, WAL journalling and a busy timeout, and its parent
    directory is created (mode 0700); PostgreSQL connections are checked before use.

    Parameters
    ----------
    url:
        SQLAlchemy URL; ``postgresql://`` URLs use psycopg 3.
    **kwargs:
        Passed on to :func:`sqlalchemy.create_engine`.
    """
    url = normalise_url(url or database_url())
    parsed = make_url(url)
    # SQL parameters hold patient data: keep them out of SQLAlchemy's log lines (should
    # someone switch its statement logging on) and out of its error messages.
    kwargs.setdefault("hide_parameters", True)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        connect_args = dict(kwargs.pop("connect_args", {}))
        connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_S)
        engine = create_engine(url, connect_args=connect_args, **kwargs)
        event.listen(engine, "connect", _sqlite_connect_hook)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration pointing at the migrations shipped in this package."""
    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS)
    # '%' is Alembic's interpolation character: escape it in passwords.
    cfg.set_main_option("sqlalchemy.url", normalise_url(url or database_url()).replace("%", "%%"))
    return cfg


def head_revision() -> str:
    """The newest migration revision shipped with this version of openiort."""
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise SchemaError("no migrations are shipped with this installation")
    return head


def current_revision(engine: Engine) -> str | None:
    """The migration revision the database is at (``None`` for an empty database)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(
    url: str | Engine | None = None, revision: str = "head", *, key: bytes | None = None
) -> None:
    """Create or migrate the schema to ``revision`` (default: the newest).

    A database migrated past the record chains (revision 0003) gets a genesis event per
    chain attesting the records it holds, signed with ``key`` (default: the server's).

    Parameters
    ----------
    url:
        Database URL or engine (default :func:`database_url`).
    revision:
        Alembic revision to upgrade to.
    key:
        Seal key for the genesis events (needed only when there are records to attest).
    """
    from openiort.records import anchor, chain

    engine = url if isinstance(url, Engine) else make_engine(url)
    heads: dict[str, tuple[int, str]] = {}
    heads_path: Path | None = None
    try:
        cfg = alembic_config(engine.url.render_as_string(hide_password=False))
        with engine.begin() as conn:
            before = MigrationContext.configure(conn).get_current_revision()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            after = MigrationContext.configure(conn).get_current_revision()
            if before in PRE_CHAIN_REVISIONS and after not in PRE_CHAIN_REVISIONS:
                # The records stored so far enter their chains, in the same transaction.
                session = Session(bind=conn)
                chain.write_genesis(session, key=key)
                heads = dict(session.info.get(chain.HEADS_INFO, {}))
                heads_path = (
                    chain.heads_file_for(session) if key is None else anchor.configured_heads_file()
                )
                session.info.clear()
    finally:
        if not isinstance(url, Engine):
            engine.dispose()
    if heads and heads_path is not None:
        anchor.advance(heads, heads_path)


def check_schema(engine: Engine) -> None:
    """Raise :class:`SchemaError` unless the database is at :func:`head_revision`."""
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    if current is None:
        raise SchemaError(
            "the database has no openiort schema yet: run `iort db upgrade` to create it"
        )
    raise SchemaError(
        f"the database schema is at revision {current} but this openiort expects {head}: "
        "back up the database, then run `iort db upgrade`"
    )


def prepare_database(url: str | None = None, *, create_schema: bool = True) -> Engine:
    """An engine for a database ready for use.

    An empty database gets the schema created (unless ``create_schema`` is false: several
    processes starting at once must not race to create it, so `iort db upgrade` runs first);
    a database at an older revision is refused (:class:`SchemaError`), because migrating
    existing records is a step an administrator takes deliberately, after a backup, with
    ``iort db upgrade``.
    """
    check_sqlite_writable(url or database_url())
    engine = make_engine(url)
    with engine.connect() as conn:
        empty = not inspect(conn).get_table_names()
    if empty and create_schema:
        upgrade(engine)
    check_schema(engine)
    return engine


def check_sqlite_writable(url: str) -> None:
    """Refuse, with the reason, a SQLite database this process cannot write.

    A read-only database file answers every change with an error, and a read-only ``-shm``
    file (WAL's shared memory) kills the process with SIGBUS and no log line; both are found
    here, at start, instead.

    Raises
    ------
    RecordsValueError
        Naming the file or folder that is not writable.
    """
    parsed = make_url(normalise_url(url))
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return
    if database.startswith("file:"):
        return
    path = Path(database).expanduser()
    for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if candidate.exists() and not os.access(candidate, os.R_OK | os.W_OK):
            raise RecordsValueError(
                f"the database file {candidate} cannot be written by this user: fix its owner "
                "or permissions (the server must write the database and its -wal and -shm "
                "files)"
            )
    if path.parent.exists() and not os.access(path.parent, os.W_OK | os.X_OK):
        raise RecordsValueError(
            f"the database folder {path.parent} cannot be written by this user (SQLite makes "
            "its -wal and -shm files there)"
        )


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory whose objects stay readable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session in one transaction: committed on success, rolled back on any error."""
    session = Session(bind=engine, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
