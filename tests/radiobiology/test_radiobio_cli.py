"""`iort radiobio` through typer's CliRunner on a small app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from openiort.radiobiology import LqModel, Timing, eqd2
from openiort.radiobiology.commands import radiobio

app = typer.Typer()
app.command("radiobio")(radiobio)


@app.command("noop")
def _noop() -> None:  # a second command keeps "radiobio" a subcommand, as in the real CLI
    pass


runner = CliRunner()


def _run(*args: str) -> typer.testing.Result:
    return runner.invoke(app, ["radiobio", *args])


def test_schedule_json() -> None:
    result = _run("--schedule", "START-B", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    tumour, late = data["results"]
    assert tumour["kind"] == "tumour" and late["kind"] == "late"
    # 40 Gy/15, alpha/beta 2.88 Gy: EQD2 = 45.464 Gy (hand value)
    assert tumour["eqd2_gy"] == pytest.approx(45.464, abs=1e-3)
    assert "not a medical device" in data["notice"]


def test_custom_schedule_with_delivery_time_and_tissue() -> None:
    result = _run(
        "--dose-gy",
        "20",
        "--fractions",
        "1",
        "--delivery-time-min",
        "30",
        "--tissue",
        "breast_tumour_start10y",
        "--json",
    )
    assert result.exit_code == 0, result.output
    (res,) = json.loads(result.output)["results"]
    expected = eqd2(20.0, LqModel(3.5, repair_half_time_h=0.3), Timing(1, 30.0))
    assert res["eqd2_gy"] == pytest.approx(expected, rel=1e-12)
    assert any("UNVERIFIED_recall" in w for w in res["warnings"])


def test_alpha_beta_override_and_text_output() -> None:
    result = _run("--schedule", "FAST-Forward", "--tissue", "late", "--alpha-beta-gy", "3")
    assert result.exit_code == 0, result.output
    # 26 Gy/5, alpha/beta 3: 26 (5.2 + 3)/(2 + 3) = 42.64 Gy
    assert "42.6" in result.output
    assert "not a medical device" in result.output.replace("\n", " ")


def test_targit_schedule_needs_a_dose_to_water() -> None:
    result = _run("--schedule", "TARGIT")
    assert result.exit_code == 2
    assert "not a dose to water" in result.output
    ok = _run("--schedule", "TARGIT", "--applicator-cm", "3", "--json")
    assert ok.exit_code == 0, ok.output
    res = json.loads(ok.output)["results"][0]
    assert res["total_dose_water_gy"] == pytest.approx(20 * 1.2292 / 0.9927, rel=1e-9)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--dose-gy", "-5", "--fractions", "1"), "must be >= 0"),
        (("--dose-gy", "20", "--fractions", "0"), "n_fractions must be >= 1"),
        (
            ("--dose-gy", "20", "--fractions", "1", "--alpha-beta-gy", "0", "--tissue", "tumour"),
            "alpha_beta_gy must be > 0",
        ),
        (("--dose-gy", "20"), "needs both --dose-gy and --fractions"),
        (("--schedule", "START-B", "--plan", "x"), "exactly one of"),
        ((), "exactly one of"),
        (("--schedule", "START-B", "--model", "lq-l"), "needs transition_dose_gy"),
        (("--schedule", "nope"), "unknown schedule"),
    ],
)
def test_bad_input_exit_2_with_a_message(args: tuple[str, ...], message: str) -> None:
    result = _run(*args)
    assert result.exit_code == 2
    assert message in result.output


def _plan(tmp_path: Path, **overrides: object) -> Path:
    plan = {
        "dose_at_depth_water_gy": {"0": 24.8, "5": 11.2, "10": 6.0, "20": 2.4},
        "dose_at_depth_gy": {"0": 20.0, "5": 9.3, "10": 5.1, "20": 2.1},
        "treatment_time_min": 29.8,
        "technique": "xray",
        **overrides,
    }
    (tmp_path / "plan.json").write_text(json.dumps(plan), "utf-8")
    return tmp_path


def test_plan_mode_json_and_html(tmp_path: Path) -> None:
    html = tmp_path / "rb.html"
    result = _run("--plan", str(_plan(tmp_path)), "--json", "--html", str(html))
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["mode"] == "plan" and data["delivery_time_min"] == 29.8
    rows = data["depth_table"]
    assert [r["depth_mm"] for r in rows] == [0, 5, 10, 20]
    # the water dose is used, not dose_at_depth_gy
    assert rows[0]["dose_water_gy"] == 24.8
    assert rows[0]["eqd2_tumour_gy"] == pytest.approx(
        eqd2(24.8, LqModel(2.88, repair_half_time_h=0.3), Timing(1, 29.8)), rel=1e-12
    )
    page = html.read_text("utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page


def test_plan_mode_text(tmp_path: Path) -> None:
    result = _run("--plan", str(_plan(tmp_path)))
    assert result.exit_code == 0, result.output
    assert "EQD2 versus depth" in result.output


def test_plan_without_water_dose_is_refused(tmp_path: Path) -> None:
    plan = {"dose_at_depth_gy": {"0": 20.0}, "treatment_time_min": 20, "technique": "xray"}
    (tmp_path / "plan.json").write_text(json.dumps(plan), "utf-8")
    result = _run("--plan", str(tmp_path))
    assert result.exit_code == 2
    assert "dose_at_depth_water_gy" in result.output and "TARGIT" in result.output


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"technique": "protons"}, "technique"),
        ({"treatment_time_min": None}, "missing"),
        ({"treatment_time_min": "long"}, "number of minutes"),
    ],
)
def test_bad_plan_files(tmp_path: Path, overrides: dict, message: str) -> None:
    result = _run("--plan", str(_plan(tmp_path, **overrides)))
    assert result.exit_code == 2 and message in result.output
    missing = _run("--plan", str(tmp_path / "nothing"))
    assert missing.exit_code == 2 and "no plan file" in missing.output


def test_list() -> None:
    result = _run("--list", "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert any(s["schedule_id"] == "START-B" for s in data["schedules"])
    assert any(t["default_for"] == "tumour" for t in data["tissues"])


def test_plan_profile_is_read_from_the_typed_plan_document(tmp_path):
    from pathlib import Path

    from openiort.radiobiology.commands import read_plan_profile

    stored = Path(__file__).resolve().parents[1] / "reference_outputs" / "demo_case.plan.json"
    data = json.loads(stored.read_text())
    depth, dose, minutes, technique = read_plan_profile(stored)
    assert technique == "xray" and minutes == data["treatment_time_min"]
    assert depth == [0.0, 5.0, 10.0, 20.0]
    assert dose == [data["dose_at_depth_water_gy"][k] for k in ("0", "5", "10", "20")]
    data["dose_at_depth_water_gy"] = "none"  # a typed document refuses it, naming the key
    bad = tmp_path / "plan.json"
    bad.write_text(json.dumps(data))
    result = runner.invoke(app, ["radiobio", "--plan", str(bad)])
    assert result.exit_code == 2 and "dose_at_depth_water_gy" in result.output
