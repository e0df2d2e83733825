"""CLI end to end: `iort demo` and `iort plan` write the outputs; a bad case writes nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import yaml
from typer.testing import CliRunner

from openiort.cli import app, demo_case_path

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_demo_writes_report_and_plan_json(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--out", str(out)])
    assert result.exit_code == 0, result.output
    plan = json.loads((out / "plan.json").read_text())
    assert plan["technique"] == "xray"
    assert plan["applicator_diameter_cm"] == 3.0
    assert plan["prescription"] == {
        "dose_gy": 20.0,
        "dose_definition": "TARGIT",
        "point": "applicator surface",
    }
    assert set(plan["dose_at_depth_gy"]) == {"0", "5", "10", "20"}
    assert set(plan["dose_at_depth_water_gy"]) == {"0", "5", "10", "20"}
    assert plan["dose_at_depth_gy"]["0"] == 20.0
    for name in ("target", "skin", "breast", "chest_wall", "ribs", "lung", "heart"):
        assert {"volume_cc", "mean_gy", "max_gy"} <= set(plan["metrics"][name])
    assert any("example source, not your source" in w for w in plan["warnings"])
    assert plan["provenance"]["device_data_sha256"]
    assert plan["uncertainty"]["components"]
    assert "not a medical device" in plan["notice"]
    html = (out / "report.html").read_text()
    assert "not a medical device" in html and "<svg" in html
    assert not re.search(
        r"""(src|href)\s*=\s*["']?(https?:)?//""", html
    )  # self-contained: loads nothing
    arrays = np.load(out / "plan_arrays.npz")
    assert arrays["dose_gy"].shape == tuple(plan["dose"]["grid"]["shape_zyx"])


def test_plan_for_an_example_warns_about_the_skin(tmp_path: Path) -> None:
    out = tmp_path / "plan"
    result = runner.invoke(
        app, ["plan", str(EXAMPLES / "left_skin_close_20mm.yaml"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    plan = json.loads((out / "plan.json").read_text())
    assert any(w.startswith("skin is 4 mm") for w in plan["warnings"])


def test_bad_case_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    data = yaml.safe_load(demo_case_path().read_text())
    data["anatomy"]["cavity_diameter_mm"] = "big"
    data["anatomy"]["spare_key"] = 1
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    result = runner.invoke(app, ["plan", str(bad), "--out", str(out)])
    assert result.exit_code == 2
    assert "anatomy.cavity_diameter_mm" in result.output and "anatomy.spare_key" in result.output
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [bad]


def test_impossible_geometry_writes_nothing(tmp_path: Path) -> None:
    data = yaml.safe_load(demo_case_path().read_text())
    data["anatomy"].update(
        cavity_diameter_mm=60,
        skin_distance_mm=40,
        breast_base_diameter_mm=100,
        breast_projection_mm=60,
    )
    bad = tmp_path / "huge.yaml"
    bad.write_text(yaml.safe_dump(data))
    result = runner.invoke(app, ["plan", str(bad), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "larger than the breast" in result.output
    assert not (tmp_path / "out").exists()


def test_schema_is_json_schema() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert {"patient", "anatomy", "intent"} <= set(schema["properties"])


def test_every_technique_plans_end_to_end(tmp_path: Path) -> None:
    """HDR and electron cases go through the same pipeline and outputs as x-ray."""
    for name, technique, key, defaults in (
        (
            "left_hdr_balloon_30mm.yaml",
            "hdr",
            "dwell_times_s",
            {"intent.hdr_applicator": "single_lumen_balloon", "hdr.prescription_depth_mm": 10.0},
        ),
        (
            "left_electron_eliot.yaml",
            "electron",
            "monitor_units",
            {
                "electron.isodose_pct": 90.0,
                "electron.lateral_margin_mm": 0.0,
                "electron.pressure_hpa": 934.7,
                "electron.disc": "al_pb",
                "electron.bolus_mm": 3.0,  # the build-up bolus the 90 % isodose needs
            },
        ),
    ):
        out = tmp_path / technique
        result = runner.invoke(app, ["plan", str(EXAMPLES / name), "--out", str(out)])
        assert result.exit_code == 0, result.output
        plan = json.loads((out / "plan.json").read_text())
        assert plan["technique"] == technique and plan[key]
        # The planner's own defaults (the case has no field for them) are listed and printed.
        assert {d["field"]: d["value"] for d in plan["defaults_applied"]} == defaults
        assert all(d["why"] for d in plan["defaults_applied"])
        flat = " ".join(result.output.split())
        for field in defaults:
            assert f"default applied: {field} = " in flat
        assert set(plan["dose_at_depth_gy"]) == {"0", "5", "10", "20"}
        # The electron plan's operating-room phantom ends below the ribs and lung: no heart.
        organs = {"target", "skin", "lung"} | ({"heart"} if technique != "electron" else set())
        assert organs <= set(plan["metrics"])
        assert "radiobiology" in plan and "clinical" in plan
        assert (out / "report.html").exists() and (out / "patient-summary.html").exists()
