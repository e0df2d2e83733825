"""`iort qa output`, `iort qa isotropy` and `iort qa list` through Typer's test runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from openiort.records.commands import user_app
from openiort.records.qa_command import qa_app

PASSWORD = "a long passphrase 42"


@pytest.fixture
def cli(tmp_path: Path) -> tuple[typer.Typer, str]:
    app = typer.Typer()
    app.add_typer(user_app, name="user")
    app.add_typer(qa_app, name="qa")
    url = f"sqlite:///{tmp_path / 'qa.sqlite3'}"
    runner = CliRunner()
    for name, role in (("alice", "physicist"), ("olga", "oncologist")):
        r = runner.invoke(
            app, ["user", "add", name, "--role", role, "--database-url", url], input=PASSWORD + "\n"
        )
        assert r.exit_code == 0, r.output
    return app, url


OUTPUT_ARGS = [
    "--source-serial", "XRS-1", "--chamber-serial", "PTW-1", "--reading", "10.1",
    "--reference-reading", "10.0", "--pressure-hpa", "1000", "--temperature-c", "22",
    "--tolerance-pct", "5",
]  # fmt: skip


def test_output_and_isotropy_recorded_and_listed(cli: tuple[typer.Typer, str]) -> None:
    app, url = cli
    runner = CliRunner()
    r = runner.invoke(
        app, ["qa", "output", "--user", "alice", *OUTPUT_ARGS, "--database-url", url],
        input=PASSWORD + "\n",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    k_tp = (1013.25 / 1000.0) * (295.15 / 293.15)  # IAEA TRS-398 k_TP, by hand
    assert f"k_TP {k_tp:.4f}" in r.output and f"output factor {10.1 * k_tp / 10:.4f}" in r.output
    assert PASSWORD not in r.output
    r = runner.invoke(
        app,
        ["qa", "isotropy", "--user", "alice", "--source-serial", "XRS-1", "--array-serial",
         "PDA-1", "--reading", "+x=1.0", "--reading", "-x=1.04", "--tolerance-pct", "1",
         "--database-url", url],
        input=PASSWORD + "\n",
    )  # fmt: skip
    # mean 1.02: each diode 1.96 % from it (100 x 0.02 / 1.02), beyond 1 %
    assert r.exit_code == 0 and "1.96 %" in r.output and "FAILED" in r.output
    listed = json.loads(runner.invoke(app, ["qa", "list", "--json", "--database-url", url]).output)
    assert [row["kind"] for row in listed] == ["output", "isotropy"]


@pytest.mark.parametrize(
    ("user", "extra", "message"),
    [
        ("olga", [], "record quality-assurance checks"),
        ("alice", ["--pressure-hpa", "101.3"], "pressure_hpa"),
        ("nobody", [], "unknown user or wrong password"),
    ],
)
def test_refusals_exit_2_and_store_nothing(
    cli: tuple[typer.Typer, str], user: str, extra: list[str], message: str
) -> None:
    app, url = cli
    runner = CliRunner()
    r = runner.invoke(
        app, ["qa", "output", "--user", user, *OUTPUT_ARGS, *extra, "--database-url", url],
        input=PASSWORD + "\n",
    )  # fmt: skip
    assert r.exit_code == 2 and message in r.output, r.output
    assert "no QA checks" in runner.invoke(app, ["qa", "list", "--database-url", url]).output
