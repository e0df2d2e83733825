"""``iort user ...`` and ``iort db ...``: user administration and database maintenance.

Register in the main app with::

    from openiort.records.commands import db_app, user_app
    app.add_typer(user_app, name="user")   # iort user add NAME --role ROLE, passwd, role, ...
    app.add_typer(db_app, name="db")       # iort db upgrade, status, verify

Passwords are read from standard input: typed without echo (and asked twice) at a terminal,
or the first line of piped input (``printf '%s\\n' "$PW" | iort user add ...``). They are never
echoed, logged or put in the audit log. Errors print one ``error: ...`` line on stderr with
exit status 2; ``iort db verify`` exits 1 when a plan fails its seal check.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable
from typing import Annotated, TypeVar

import typer
from alembic import command
from sqlalchemy import make_url
from sqlalchemy.orm import Session

from openiort.records.db import (
    alembic_config,
    current_revision,
    database_url,
    head_revision,
    make_engine,
    prepare_database,
    session_scope,
    upgrade,
)
from openiort.records.errors import RecordsError
from openiort.records.roles import ROLES
from openiort.records.sealed_plans import verify_all_plans
from openiort.records.users import create_user, list_users, set_active, set_password, set_role

EXIT_TAMPERED = 1
EXIT_BAD_INPUT = 2

user_app = typer.Typer(
    no_args_is_help=True, help="Manage the users of the records database and web app."
)
db_app = typer.Typer(no_args_is_help=True, help="Create, migrate and check the records database.")

T = TypeVar("T")
DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="SQLAlchemy URL (default: OPENIORT_DATABASE_URL, else the SQLite file in the "
        "user data directory).",
        show_default=False,
    ),
]


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(code=EXIT_BAD_INPUT)


def _shown(url: str | None) -> str:
    """The database URL without its password."""
    return make_url(url or database_url()).render_as_string(hide_password=True)


def _in_session(database: str | None, action: Callable[[Session], T]) -> T:
    """Run ``action`` in one transaction on the (prepared) database; errors exit with code 2."""
    try:
        engine = prepare_database(database)
        try:
            with session_scope(engine) as s:
                return action(s)
        finally:
            engine.dispose()
    except (RecordsError, ValueError) as exc:
        raise _fail(exc) from None


def read_password(confirm: bool = True) -> str:
    """A password from standard input, without echo at a terminal.

    At a terminal the password is asked for (twice when ``confirm``); otherwise the first line
    of standard input is taken, without its line ending.
    """
    if sys.stdin is not None and sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if confirm and getpass.getpass("Repeat password: ") != password:
            raise ValueError("the two passwords differ")
        return password
    line = sys.stdin.readline() if sys.stdin is not None else ""
    password = line.rstrip("\r\n")
    if not password:
        raise ValueError("no password on standard input")
    return password


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="Username (letters, digits, '.', '_', '-').")],
    role: Annotated[str, typer.Option("--role", help=f"One of: {', '.join(ROLES)}.")],
    database: DatabaseOption = None,
) -> None:
    """Add a user; the password is read from standard input."""
    try:
        password = read_password()
    except ValueError as exc:
        raise _fail(exc) from None
    _in_session(database, lambda s: create_user(s, name, role, password))
    typer.echo(f"user {name} added with role {role}")


@user_app.command("passwd")
def user_passwd(
    name: Annotated[str, typer.Argument(help="Username.")],
    database: DatabaseOption = None,
) -> None:
    """Set a user's password, read from standard input."""
    try:
        password = read_password()
    except ValueError as exc:
        raise _fail(exc) from None
    _in_session(database, lambda s: set_password(s, name, password))
    typer.echo(f"password of {name} changed")


@user_app.command("role")
def user_role(
    name: Annotated[str, typer.Argument(help="Username.")],
    role: Annotated[str, typer.Argument(help=f"New role: {', '.join(ROLES)}.")],
    database: DatabaseOption = None,
) -> None:
    """Change a user's role."""
    _in_session(database, lambda s: set_role(s, name, role))
    typer.echo(f"{name} is now {role}")


def _set_active(name: str, active: bool, database: str | None) -> None:
    _in_session(database, lambda s: set_active(s, name, active))
    typer.echo(f"{name} {'enabled' if active else 'disabled'}")


@user_app.command("disable")
def user_disable(
    name: Annotated[str, typer.Argument(help="Username.")],
    database: DatabaseOption = None,
) -> None:
    """Disable a user (users are never deleted: the audit log refers to them)."""
    _set_active(name, False, database)


@user_app.command("enable")
def user_enable(
    name: Annotated[str, typer.Argument(help="Username.")],
    database: DatabaseOption = None,
) -> None:
    """Enable a disabled user."""
    _set_active(name, True, database)


@user_app.command("list")
def user_list(database: DatabaseOption = None) -> None:
    """List users with their roles."""
    rows = _in_session(database, lambda s: [(u.username, u.role, u.active) for u in list_users(s)])
    for username, role, active in rows:
        typer.echo("\t".join([username, role] + ([] if active else ["(disabled)"])))


@db_app.command("upgrade")
def db_upgrade(
    database: DatabaseOption = None,
    sql: Annotated[
        bool, typer.Option("--sql", help="Print the SQL instead of running it (for a DBA).")
    ] = False,
) -> None:
    """Create the schema, or migrate it to this version of openiort. Back up first."""
    try:
        if sql:
            command.upgrade(alembic_config(database), "head", sql=True)
            return
        upgrade(database)
        engine = make_engine(database)
        try:
            revision = current_revision(engine)
        finally:
            engine.dispose()
    except (RecordsError, ValueError) as exc:
        raise _fail(exc) from None
    typer.echo(f"{_shown(database)}: schema at revision {revision}")


@db_app.command("status")
def db_status(database: DatabaseOption = None) -> None:
    """Show the database, its schema revision and the revision this openiort expects."""
    try:
        engine = make_engine(database)
        try:
            current = current_revision(engine)
        finally:
            engine.dispose()
    except (RecordsError, ValueError) as exc:
        raise _fail(exc) from None
    head = head_revision()
    state = "up to date" if current == head else "needs `iort db upgrade`"
    typer.echo(f"database: {_shown(database)}")
    typer.echo(f"schema revision: {current or '(none)'}; expected: {head} ({state})")


@db_app.command("verify")
def db_verify(database: DatabaseOption = None) -> None:
    """Check the seal of every approved and delivered plan; exit 1 if any fails."""
    failures = _in_session(database, verify_all_plans)
    for failure in failures:
        typer.echo(f"TAMPERED: {failure}", err=True)
    if failures:
        raise typer.Exit(code=EXIT_TAMPERED)
    typer.echo("every sealed plan matches its seal")
