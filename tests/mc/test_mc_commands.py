"""The `iort commission` command function, through a small Typer app."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from openiort.datafiles import parse_commented_csv
from openiort.devices.xray import _depth_dose_tables
from openiort.dose.mc.commands import commission
from openiort.dose.mc.commissioning import DEPTHS_MM, load_calibration


def test_commission_writes_a_table_the_table_engine_reads(tmp_path):
    app = typer.Typer()
    app.command("commission")(commission)
    app.command("noop")(lambda: None)  # two commands, so "commission" is addressed by name
    table = tmp_path / "dd.csv"
    calib = tmp_path / "calib.csv"
    result = CliRunner().invoke(
        app,
        [
            "commission",
            "--histories",
            "6000",
            "--seed",
            "3",
            "--out",
            str(table),
            "--calibration",
            str(calib),
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Gy at 10 mm" in result.output and "r^-" in result.output
    text = table.read_text()
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert any("origin:" in line for line in header) and any(
        "statistics" in line for line in header
    )
    rows = parse_commented_csv(text)
    assert list(rows[0]) == ["applicator_diameter_cm", "depth_mm", "relative_dose_water"]
    diameters = sorted({float(r["applicator_diameter_cm"]) for r in rows})
    assert diameters == [1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0]
    assert len(rows) == 8 * len(DEPTHS_MM) == 8 * 121
    tables, origin = _depth_dose_tables(text)  # the table engine's own parser accepts it
    assert "Monte Carlo" in origin
    for d, (depth, rel) in tables.items():
        assert depth[0] == 0.0 and depth[-1] == 60.0 and rel[0] == 1.0
        assert rel[-1] < 0.2, d  # dose falls steeply with depth (a loose sanity bound)
    assert set(load_calibration(calib)) == set(diameters)


def test_commission_reports_bad_settings(tmp_path):
    app = typer.Typer()
    app.command("commission")(commission)
    app.command("noop")(lambda: None)
    result = CliRunner().invoke(
        app,
        [
            "commission",
            "--histories",
            "1",
            "--out",
            str(tmp_path / "x.csv"),
            "--calibration",
            str(tmp_path / "c.csv"),
            "--no-progress",
        ],
    )
    assert result.exit_code == 2
    assert "error" in result.output
    assert not (tmp_path / "x.csv").exists()
