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
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from alembic import command
from sqlalchemy import make_url
from sqlalchemy.orm import Session

from openiort.records import anchor, audit, chain, department, seal
from openiort.records.db import (
    alembic_config,
    current_revision,
    data_dir,
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
key_app = typer.Typer(
    no_args_is_help=True, help="Make, show and rotate the seal key (kept outside the data folder)."
)

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


def _verify_plan_files(s: Session, files_dir: Path) -> list[str]:
    """Each plan folder against its record (the sealed files' hashes in the plan JSON) and
    its signed manifest (every file, the viewer arrays and derived downloads among them)."""
    from sqlalchemy import select

    from openiort.records.models import Plan
    from openiort.web.artifacts import PlanFiles, PlanFilesError
    from openiort.web.worker import OUTPUTS_KEY

    files = PlanFiles(files_dir, key=seal.seal_key())
    problems: list[str] = []
    for plan in s.scalars(select(Plan).order_by(Plan.id)):
        if not files.plan_dir(plan.id).is_dir():
            continue
        try:
            if plan.sealed and OUTPUTS_KEY in plan.plan_json:
                files.check(plan.id, plan.plan_json)
            manifest = files.manifest(plan.id)
            if manifest is not None:
                files.verify_files(plan.id, sorted(manifest))
        except PlanFilesError as exc:
            problems.append(f"plan files: {exc}")
    return problems


def _verify_records(
    s: Session, files_dir: Path | None
) -> tuple[list[str], list[chain.ChainReport]]:
    failures = [str(f) for f in verify_all_plans(s)]
    if files_dir is not None and files_dir.is_dir():
        failures += _verify_plan_files(s, files_dir)
    return failures, chain.verify(s)


@db_app.command("verify")
def db_verify(
    database: DatabaseOption = None,
    files_dir: Annotated[
        Path | None,
        typer.Option(
            "--files-dir", help="The plans' files (default: plans/ in the data folder, if any)."
        ),
    ] = None,
) -> None:
    """Check every plan's seal, every record chain and the plan files; exit 1 at the first
    break of any.

    For each broken record the first break is printed (what changed, where); the records of
    other patients are not affected by it.
    """
    folder = _files_dir(files_dir)
    failures, reports = _in_session(database, lambda s: _verify_records(s, folder))
    for failure in failures:
        typer.echo(f"TAMPERED: {failure}", err=True)
    broken = [r for r in reports if not r.ok]
    for report in broken:
        more = len(report.problems) - 1
        extra = f" ({more} further problem(s) after it)" if more else ""
        typer.echo(f"TAMPERED: {report.chain}: {report.problems[0]}{extra}", err=True)
    if anchor.heads_file() is None:
        typer.echo(
            f"note: the chain heads are not kept outside the database (set "
            f"{anchor.HEADS_FILE_ENV} or keep the seal key in a file): a deletion of a "
            "record's newest events cannot be detected",
            err=True,
        )
    if failures or broken:
        raise typer.Exit(code=EXIT_TAMPERED)
    events = sum(r.events for r in reports)
    typer.echo("every sealed plan matches its seal")
    typer.echo(f"every record chain verifies ({len(reports)} chains, {events} events)")


@key_app.command("init")
def key_init() -> None:
    """Make the seal key, once, on a new installation (never over an existing key)."""
    try:
        path, kid = seal.create_key()
    except RecordsError as exc:
        raise _fail(exc) from None
    typer.echo(f"seal key {kid} made at {path} (mode 0600): back it up apart from the database")


@key_app.command("show")
def key_show() -> None:
    """Show where the seal key is, its id, the retired keys and where chain heads are kept."""
    try:
        current = seal.seal_key()
        retired = seal.retired_keys()
    except RecordsError as exc:
        raise _fail(exc) from None
    where = seal.key_file_in_use()
    typer.echo(f"seal key: {seal.key_id(current)} ({where or 'from ' + seal.SEAL_KEY_ENV})")
    for kid in retired:
        typer.echo(f"retired key: {kid} (verifies, never signs)")
    heads = anchor.heads_file()
    typer.echo(f"chain heads: {heads if heads is not None else 'not kept (see iort db verify)'}")


@key_app.command("rotate")
def key_rotate() -> None:
    """Retire the current key (it still verifies what it sealed) and make a new one."""
    try:
        old, new = seal.rotate_key()
    except RecordsError as exc:
        raise _fail(exc) from None
    typer.echo(f"key {old} retired; new seal key {new}: back up the key folder")


@db_app.command("setting")
def db_setting(
    name: Annotated[str, typer.Argument(help="Setting: four-eyes.")],
    value: Annotated[str | None, typer.Argument(help="on or off (leave out to show it).")] = None,
    reason: Annotated[
        str, typer.Option("--reason", help="Why it changes (goes into the audit log).")
    ] = "",
    database: DatabaseOption = None,
) -> None:
    """Show or change a department setting; a change is an audited event of the department's
    record (four-eyes: whether the author or reviewer of a plan may also approve it)."""
    if value is None:
        current = _in_session(database, lambda s: department.setting(s, name))
        typer.echo(f"{name}: {'on' if current else 'off'}")
        return
    if value not in ("on", "off"):
        raise _fail(ValueError(f"value: 'on' or 'off', not {value!r}"))
    old = _in_session(
        database, lambda s: department.set_setting(s, name, value == "on", reason=reason)
    )
    typer.echo(f"{name}: {'on' if old else 'off'} -> {value} (recorded in the audit log)")


audit_app = typer.Typer(no_args_is_help=True, help="Export the audit log for the hospital.")


@audit_app.callback()
def audit_main() -> None:
    """Export the audit log for the hospital's log system."""


@audit_app.command("export")
def audit_export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
    since_id: Annotated[
        int, typer.Option("--since-id", min=0, help="Only entries with a larger id.")
    ] = 0,
    database: DatabaseOption = None,
) -> None:
    """The audit log as JSON lines (one entry a line, oldest first): every change, security
    event and view of a record (who viewed which), with event and recording times and the
    chain HMACs; run it on a schedule with --since-id the last exported id."""

    def write(s: Session) -> int:
        fh = output.open("a", encoding="utf-8") if output is not None else sys.stdout
        count = 0
        try:
            for entry in audit.export_entries(s, since_id):
                fh.write(json.dumps(audit.export_entry(entry), sort_keys=True) + "\n")
                count += 1
        finally:
            if output is not None:
                fh.close()
        return count

    count = _in_session(database, write)
    if output is not None:
        typer.echo(f"{count} audit entries written to {output}", err=True)


def _files_dir(files_dir: Path | None) -> Path:
    # The web app's default (openiort.web.config.default_files_dir): plans/ in the data folder.
    return files_dir if files_dir is not None else data_dir() / "plans"


FilesDirOption = Annotated[
    Path | None,
    typer.Option("--files-dir", help="The plans' files (default: plans/ in the data folder)."),
]


def backup(
    folder: Annotated[Path, typer.Argument(help="A new, empty folder for the backup.")],
    files_dir: FilesDirOption = None,
    database: DatabaseOption = None,
) -> None:
    """Back up the records (a consistent copy, while the server runs) and the plan files.
    The keys are not included: back up the key folder apart."""
    from openiort.records.backup import backup as do_backup

    try:
        engine = prepare_database(database)
        try:
            summary = do_backup(engine, folder, _files_dir(files_dir))
        finally:
            engine.dispose()
    except (RecordsError, OSError, ValueError) as exc:
        raise _fail(exc) from None
    rows = sum(summary.rows.values())
    typer.echo(
        f"backup in {summary.folder}: {rows} rows (schema {summary.revision}), "
        f"{summary.plan_folders} plan folders; keys NOT included: back up "
        f"{seal.key_file_in_use() or seal.SEAL_KEY_ENV} and its folder apart"
    )


def restore(
    folder: Annotated[Path, typer.Argument(help="A folder made by `iort backup`.")],
    files_dir: FilesDirOption = None,
    database: DatabaseOption = None,
) -> None:
    """Restore a backup into a new, empty database (and plan folder), then check every seal
    and record chain; exit 1 if anything fails its check."""
    from openiort.records.backup import restore as do_restore

    try:
        engine = make_engine(database)
        try:
            problems = do_restore(engine, folder, _files_dir(files_dir))
        finally:
            engine.dispose()
    except (RecordsError, OSError, ValueError) as exc:
        raise _fail(exc) from None
    for problem in problems:
        typer.echo(f"TAMPERED: {problem}", err=True)
    if problems:
        raise typer.Exit(code=EXIT_TAMPERED)
    typer.echo(f"restored from {folder}; every seal and record chain verifies")
