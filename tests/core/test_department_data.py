"""A department's own x-ray source data: their manifest, and a plan that records whose they are."""

from __future__ import annotations

import json
from pathlib import Path

from test_xray_device import write_department_source
from typer.testing import CliRunner

from openiort.cli import app

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_manifest_command_records_and_checks_the_folder(tmp_path: Path) -> None:
    write_department_source(tmp_path)
    (tmp_path / "manifest_sha256.csv").unlink()
    made = runner.invoke(app, ["devices", "manifest", str(tmp_path)])
    assert made.exit_code == 0, made.output
    assert "wrote" in made.stdout and "transfer.csv" in made.stdout
    header = (tmp_path / "manifest_sha256.csv").read_text()
    assert f"iort devices manifest {tmp_path}" in header
    ok = runner.invoke(app, ["devices", "manifest", str(tmp_path), "--check"])
    assert ok.exit_code == 0 and "3 files match" in ok.stdout
    (tmp_path / "bare.csv").write_text("distance_from_source_mm,dose_rate_gy_min\n5,1\n")
    changed = runner.invoke(app, ["devices", "manifest", str(tmp_path), "--check"])
    assert changed.exit_code == 1 and "bare.csv" in changed.output


def test_plan_with_department_data_records_whose_data(tmp_path: Path) -> None:
    source = write_department_source(tmp_path / "source")
    case = REPO / "examples" / "left_upper_outer_30mm.yaml"
    out = tmp_path / "plan"
    result = runner.invoke(
        app, ["plan", str(case), "--out", str(out), "--source-data", str(source)]
    )
    assert result.exit_code == 0, result.output
    device = json.loads((out / "plan.json").read_text())["delivery"]["device"]
    assert device["status"] == "department"
    assert (device["serial"], device["version"], device["commissioned_by"]) == (
        "XRS-TEST",
        "2026-1",
        "A. Physicist",
    )
    assert device["effective_date"] == "2026-01-20"
