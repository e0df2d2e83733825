"""`iort user ...` and `iort db ...` through Typer's test runner, on a SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
import typer
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from openiort.records import Plan, approve_plan, authenticate, review_plan, store_plan
from openiort.records.commands import db_app, user_app
from openiort.records.db import head_revision, make_engine
from openiort.records.department import set_setting
from openiort.records.service import create_case, create_patient
from openiort.records.users import get_user

PASSWORD = "a long passphrase 42"


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(user_app, name="user")
    app.add_typer(db_app, name="db")
    return app


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.sqlite3'}"


def test_user_add_reads_the_password_from_stdin(app: typer.Typer, url: str) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["user", "add", "alice", "--role", "physicist", "--database-url", url],
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    assert "user alice added with role physicist" in result.output
    assert PASSWORD not in result.output
    engine = make_engine(url)
    with Session(engine) as s:
        assert authenticate(s, "alice", PASSWORD) is not None
    engine.dispose()
    listed = runner.invoke(app, ["user", "list", "--database-url", url])
    assert listed.output.split() == ["alice", "physicist"]


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["user", "add", "bob", "--role", "nurse"], PASSWORD + "\n", "role: 'nurse'"),
        (["user", "add", "bob", "--role", "viewer"], "", "no password on standard input"),
        (
            ["user", "add", "bob", "--role", "viewer"],
            "short\n",
            "password: must be at least 8 characters",
        ),
        (["user", "passwd", "nobody"], PASSWORD + "\n", "no user named 'nobody'"),
    ],
)
def test_user_command_errors(
    app: typer.Typer, url: str, args: list[str], stdin: str, message: str
) -> None:
    result = CliRunner().invoke(app, [*args, "--database-url", url], input=stdin)
    assert result.exit_code == 2
    assert f"error: {message}" in result.output
    assert "Traceback" not in result.output


def test_role_disable_and_password_commands(app: typer.Typer, url: str) -> None:
    runner = CliRunner()
    runner.invoke(
        app,
        ["user", "add", "carol", "--role", "viewer", "--database-url", url],
        input=PASSWORD + "\n",
    )
    assert (
        runner.invoke(app, ["user", "role", "carol", "surgeon", "--database-url", url]).exit_code
        == 0
    )
    assert (
        runner.invoke(
            app, ["user", "passwd", "carol", "--database-url", url], input="new passphrase 7\n"
        ).exit_code
        == 0
    )
    assert runner.invoke(app, ["user", "disable", "carol", "--database-url", url]).exit_code == 0
    engine = make_engine(url)
    with Session(engine) as s:
        carol = get_user(s, "carol")
        assert (carol.role, carol.active) == ("surgeon", False)
        assert authenticate(s, "carol", "new passphrase 7") is None  # disabled
    engine.dispose()
    assert "(disabled)" in runner.invoke(app, ["user", "list", "--database-url", url]).output


def test_db_upgrade_status_and_verify(
    app: typer.Typer, url: str, make_plan_json: object, case_data: dict[str, object]
) -> None:
    runner = CliRunner()
    status = runner.invoke(app, ["db", "status", "--database-url", url])
    assert "schema revision: (none)" in status.output and "needs `iort db upgrade`" in status.output
    upgraded = runner.invoke(app, ["db", "upgrade", "--database-url", url])
    assert upgraded.exit_code == 0 and f"schema at revision {head_revision()}" in upgraded.output
    assert "up to date" in runner.invoke(app, ["db", "status", "--database-url", url]).output
    sql = runner.invoke(app, ["db", "upgrade", "--sql", "--database-url", url])
    assert "CREATE TABLE plans" in sql.output

    runner.invoke(
        app,
        ["user", "add", "phys", "--role", "physicist", "--database-url", url],
        input=PASSWORD + "\n",
    )
    engine = make_engine(url)
    with Session(engine, expire_on_commit=False) as s:
        phys = get_user(s, "phys")
        patient = create_patient(s, phys, "DEMO-001")
        case = create_case(s, phys, patient.id, case_data)
        plan = store_plan(s, phys, case.id, make_plan_json())  # type: ignore[operator]
        review_plan(s, phys, plan.id)
        # One physicist alone: the department turned the four-eyes rule off (audited).
        set_setting(s, "four-eyes", False, reason="test: one user")
        approve_plan(s, phys, plan.id)
        s.commit()
        plan_id = plan.id
        ok = runner.invoke(app, ["db", "verify", "--database-url", url])
        assert ok.exit_code == 0 and "every sealed plan matches its seal" in ok.output
        s.execute(sa.update(Plan).where(Plan.id == plan.id).values(technique="electron"))
        s.execute(
            sa.update(Plan)
            .where(Plan.id == plan.id)
            .values(plan_json={**plan.plan_json, "treatment_time_min": 1.0})
        )
        s.commit()
    engine.dispose()
    bad = runner.invoke(app, ["db", "verify", "--database-url", url])
    assert bad.exit_code == 1
    assert f"TAMPERED: plan {plan_id} failed its seal check" in bad.output
