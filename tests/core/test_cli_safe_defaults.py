"""Clinically safe by default: no silent defaults, implausible values confirmed, no output
folder overwritten unasked (`iort plan` and `iort demo`, and the library beneath them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from openiort.case import CaseError, implausible_values, parse_case
from openiort.cli import app
from openiort.plan import PlanResult
from openiort.plan_document import AppliedDefault, parse_plan_document
from openiort.report.outputs import OutputFolderError, check_output_folder, write_plan_outputs

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def _write_case(tmp_path: Path, data: dict[str, Any], name: str = "case.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def small_plan() -> PlanResult:
    """A quick x-ray plan (2 mm grid) for the output-folder tests."""
    from openiort.planning.xray import plan_xray

    data = yaml.safe_load((EXAMPLES / "left_upper_outer_30mm.yaml").read_text())
    return plan_xray(parse_case(data), spacing_mm=2.0)


# ------------------------------------------------------------------ defaults applied


def test_defaults_are_printed_and_listed_in_plan_json(
    tmp_path: Path, demo_data: dict[str, Any]
) -> None:
    for key in ("prescription_gy", "dose_definition"):
        del demo_data["intent"][key]
    del demo_data["anatomy"]["breast_density"]
    out = tmp_path / "out"
    result = runner.invoke(app, ["plan", str(_write_case(tmp_path, demo_data)), "--out", str(out)])
    assert result.exit_code == 0, result.output
    flat = _flat(result.output)
    assert "default applied: intent.prescription_gy = 20 (" in flat
    assert "default applied: intent.dose_definition = TARGIT (" in flat
    assert "default applied: anatomy.breast_density = unknown (" in flat
    plan = json.loads((out / "plan.json").read_text())
    listed = {d["field"]: d for d in plan["defaults_applied"]}
    assert set(listed) == {
        "intent.prescription_gy",
        "intent.dose_definition",
        "anatomy.breast_density",
    }
    assert listed["intent.prescription_gy"]["value"] == 20.0
    assert "TARGIT-A" in listed["intent.prescription_gy"]["why"]
    assert listed["intent.dose_definition"]["value"] == "TARGIT"
    assert plan["prescription"]["dose_gy"] == 20.0
    assert plan["prescription"]["dose_definition"] == "TARGIT"
    assert "20 %" in listed["anatomy.breast_density"]["why"]  # TG-186's 20 % gland
    parse_plan_document(plan)  # the published schema holds the new block


def test_a_complete_case_lists_no_default(small_plan: PlanResult) -> None:
    # The demo case gives every value planning needs (the example data's warnings aside).
    assert small_plan.defaults_applied == []
    assert small_plan.to_json_dict()["defaults_applied"] == []


def test_phantom_defaults_name_every_assumed_field(demo_data: dict[str, Any]) -> None:
    from openiort.pipeline import phantom_defaults

    for key in ("laterality", "quadrant", "clock_position"):
        demo_data["preoperative"][key] = None
    for key in ("breast_cup", "breast_density"):
        demo_data["anatomy"][key] = None
    fields = {d.field: d.value for d in phantom_defaults(parse_case(demo_data))}
    assert fields == {
        "preoperative.laterality": "left",
        "anatomy.breast_cup": "C",
        "anatomy.breast_density": "unknown",
        "preoperative.clock_position": "central",
    }
    demo_data["anatomy"].update(breast_base_diameter_mm=130, breast_projection_mm=60)
    fields = {d.field for d in phantom_defaults(parse_case(demo_data))}
    assert "anatomy.breast_cup" not in fields  # measured dimensions: no cup needed


def test_plan_document_refuses_a_default_without_its_reason() -> None:
    from pydantic import ValidationError

    AppliedDefault(field="intent.prescription_gy", value=20.0, why="TARGIT-A")
    with pytest.raises(ValidationError):
        AppliedDefault.model_validate({"field": "intent.prescription_gy", "value": 20.0})
    with pytest.raises(ValidationError):
        AppliedDefault.model_validate({"field": "f", "value": 1.0, "why": "w", "extra": 1})


def test_old_plan_json_without_defaults_still_reads() -> None:
    stored = json.loads((REPO / "tests/reference_outputs/demo_case.plan.json").read_text())
    stored.pop("defaults_applied", None)
    assert parse_plan_document(stored).defaults_applied == []


# ------------------------------------------------------------------ implausible values


def test_unit_slip_is_refused_without_the_flag(tmp_path: Path, demo_data: dict[str, Any]) -> None:
    demo_data["anatomy"]["skin_distance_mm"] = 0.8  # 0.8 cm typed as mm
    out = tmp_path / "out"
    result = runner.invoke(app, ["plan", str(_write_case(tmp_path, demo_data)), "--out", str(out)])
    assert result.exit_code == 2, result.output
    flat = _flat(result.output)
    assert "anatomy.skin_distance_mm: value 0.8 mm is under 1 mm" in flat
    assert "0.8 cm = 8 mm" in flat
    assert "--accept-implausible" in flat and "nothing was written" in flat
    assert not out.exists()


def test_unit_slip_is_planned_with_the_flag_and_kept_in_view(
    tmp_path: Path, demo_data: dict[str, Any]
) -> None:
    # A chest wall at 0 mm (excision to the fascia) is common: a warning, never a refusal.
    demo_data["anatomy"].update(skin_distance_mm=0.8, chest_wall_distance_mm=0)
    out = tmp_path / "out"
    case_file = _write_case(tmp_path, demo_data)
    result = runner.invoke(app, ["plan", str(case_file), "--out", str(out), "--accept-implausible"])
    assert result.exit_code == 0, result.output
    assert "accepted (--accept-implausible): anatomy.skin_distance_mm" in _flat(result.output)
    warnings = json.loads((out / "plan.json").read_text())["warnings"]
    assert any(w.startswith("anatomy.skin_distance_mm: value 0.8 mm") for w in warnings)
    assert any(w.startswith("skin is 0.8 mm") for w in warnings)  # the 50 kV 5 mm limit
    assert any(w.startswith("chest wall is 0 mm") for w in warnings)


def test_only_the_skin_distance_under_1_mm_is_implausible(demo_data: dict[str, Any]) -> None:
    demo_data["anatomy"].update(skin_distance_mm=1.0, chest_wall_distance_mm=0)
    assert implausible_values(parse_case(demo_data)) == []  # 1 mm and a 0 mm chest wall
    demo_data["anatomy"]["skin_distance_mm"] = 0
    (found,) = implausible_values(parse_case(demo_data))
    assert found.path == "anatomy.skin_distance_mm" and found.value == 0
    assert " cm = " not in found.message  # 0 is 0 in any unit: no conversion offered


def test_a_cavity_in_centimetres_is_refused_with_the_hint(demo_data: dict[str, Any]) -> None:
    demo_data["anatomy"]["cavity_diameter_mm"] = 3  # the model's minimum is 10 mm
    with pytest.raises(CaseError) as info:
        parse_case(demo_data)
    (msg,) = info.value.problems
    assert msg.startswith("anatomy.cavity_diameter_mm: value 3 rejected")
    assert "centimetres typed as millimetres? 3 cm = 30 mm" in msg
    demo_data["anatomy"]["cavity_diameter_mm"] = 0.5  # 5 mm either way: no hint
    with pytest.raises(CaseError) as info:
        parse_case(demo_data)
    assert "centimetres" not in info.value.problems[0]


# ------------------------------------------------------------------ output folder


def test_plan_refuses_a_folder_with_files_and_writes_nothing(
    tmp_path: Path, demo_data: dict[str, Any]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    case_file = _write_case(tmp_path, demo_data)
    for extra in ([], ["--overwrite"]):  # --overwrite replaces a plan's folder only
        result = runner.invoke(app, ["plan", str(case_file), "--out", str(out), *extra])
        assert result.exit_code == 2, result.output
        assert "nothing was written" in result.output
        assert [p.name for p in out.iterdir()] == ["notes.txt"]
    flat = _flat(runner.invoke(app, ["plan", str(case_file), "--out", str(out)]).output)
    assert "--overwrite" in flat
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case.yaml", "out"]  # no temporary


def test_demo_refuses_an_earlier_output_unless_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    out.mkdir()
    (out / "plan.json").write_text("{}")
    (out / "stale.txt").write_text("from an older run")
    result = runner.invoke(app, ["demo", "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "not empty" in _flat(result.output) and "--overwrite" in _flat(result.output)
    assert (out / "plan.json").read_text() == "{}"
    result = runner.invoke(app, ["demo", "--out", str(out), "--overwrite"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "plan.json").read_text())["case_id"] == "DEMO-001"
    assert not (out / "stale.txt").exists()  # replaced as a whole
    assert {"plan.json", "report.html", "plan_arrays.npz"} <= {p.name for p in out.iterdir()}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]


def test_make_demo_overwrites_its_own_output() -> None:
    makefile = (REPO / "Makefile").read_text()
    (line,) = [ln for ln in makefile.splitlines() if "iort demo" in ln]
    assert "--out demo-output" in line and "--overwrite" in line


def test_overwrite_is_all_or_nothing(small_plan: PlanResult, tmp_path: Path) -> None:
    out = tmp_path / "plan"
    write_plan_outputs(small_plan, out)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    (out / "stale.txt").write_text("old")

    def failing(folder: Path) -> None:
        (folder / "half-written.txt").write_text("x")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_plan_outputs(small_plan, out, extra_writers=(failing,), overwrite=True)
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert after == {**before, "stale.txt": b"old"}  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan"]  # no temporary left
    with pytest.raises(OutputFolderError):
        write_plan_outputs(small_plan, out)  # without overwrite: refused, untouched
    assert (out / "stale.txt").exists()
    written = write_plan_outputs(small_plan, out, overwrite=True)
    assert not (out / "stale.txt").exists()
    assert set(written) == {p.name for p in out.iterdir()}


def test_an_empty_folder_keeps_its_permissions(small_plan: PlanResult, tmp_path: Path) -> None:
    out = tmp_path / "staging"
    out.mkdir(mode=0o700)  # the web app's private staging folder
    write_plan_outputs(small_plan, out)
    assert (out.stat().st_mode & 0o777) == 0o700
    assert (out / "plan.json").is_file()


def test_the_output_folder_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    check_output_folder(tmp_path / "new")  # absent: fine
    (tmp_path / "empty").mkdir()
    check_output_folder(tmp_path / "empty")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputFolderError, match="not a folder"):
        check_output_folder(tmp_path / "file", overwrite=True)
    plan_dir = tmp_path / "old-plan"
    plan_dir.mkdir()
    (plan_dir / "plan.json").write_text("{}")
    check_output_folder(plan_dir, overwrite=True)
    monkeypatch.chdir(plan_dir)
    with pytest.raises(OutputFolderError, match="current folder"):
        check_output_folder(Path("."), overwrite=True)
    with pytest.raises(OutputFolderError, match="current folder"):
        check_output_folder(tmp_path, overwrite=True)
