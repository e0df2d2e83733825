"""A department's electron machine data: the format, its checks, the two example machines.

The department set used here is synthetic (tables cut from the shipped Mobetron example, which
is itself estimated); it exercises the format and its checks, not a real machine.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from openiort.cli import app
from openiort.datafiles import parse_commented_csv, write_manifest
from openiort.devices.electron import (
    ElectronDataError,
    load_electron_device,
    load_machine_data,
    machine_json_schema,
)
from openiort.devices.electron.files import data_file_path
from openiort.devices.electron.worksheet import mu_worksheet
from openiort.planning.electron import MuRequest, calculate_mu, second_check

SETTINGS = {"applicators_cm": [5, 6], "bevels_deg": [0, 15], "energies_mev": [6, 9]}
TABLES = ("pdd", "profiles", "output_factors")


def _cut(name: str, out: Path) -> None:
    """Rows of a shipped Mobetron table for the department's settings only."""
    text = data_file_path(f"mobetron_1000_{name}.csv").read_text(encoding="utf-8")
    rows = parse_commented_csv(text)
    keep = [
        r
        for r in rows
        if int(r["applicator_cm"]) in SETTINGS["applicators_cm"]
        and int(r["bevel_deg"]) in SETTINGS["bevels_deg"]
        and int(r["energy_mev"]) in SETTINGS["energies_mev"]
    ]
    columns = list(rows[0])
    if name == "output_factors":  # calibrate to the 6 cm flat applicator of this set
        for r in keep:
            r["cgy_per_mu"] = f"{float(r['cgy_per_mu']) / _flat6(rows, r['energy_mev']):.4f}"
    out.write_text(
        "# synthetic test data (openiort tests), cut from the estimated Mobetron example\n"
        + ",".join(columns)
        + "\n"
        + "".join(",".join(r[c] for c in columns) + "\n" for r in keep),
        encoding="utf-8",
    )


def _flat6(rows: list[dict[str, str]], energy: str) -> float:
    (row,) = [
        r
        for r in rows
        if r["applicator_cm"] == "6" and r["bevel_deg"] == "0" and r["energy_mev"] == energy
    ]
    return float(row["cgy_per_mu"])


def department_machine(folder: Path, **changes: object) -> Path:
    """A department machine folder with its manifest; ``changes`` edit the machine file."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in TABLES:
        _cut(name, folder / f"{name}.csv")
    shutil.copy(data_file_path("shielding_discs.yaml"), folder / "discs.yaml")
    shutil.copy(folder / "output_factors.csv", folder / "output_factors_check.csv")
    machine = {
        "format": "openiort-electron-machine-1",
        "status": "department",
        "name": "Test linac",
        "manufacturer": "openiort tests",
        "model": "synthetic",
        "serial": "TEST-E-0001",
        "version": "test-1",
        "effective_date": "2026-01-20",
        "commissioned_by": "openiort test suite",
        **SETTINGS,
        "beam_data_kind": "pdd_profiles",
        "pdd_csv": "pdd.csv",
        "profiles_csv": "profiles.csv",
        "output_factors_csv": "output_factors.csv",
        "calibration": {
            "applicator_cm": 6,
            "bevel_deg": 0,
            "cgy_per_mu": 1.0,
            "description": "1 cGy/MU at zmax, 6 cm flat applicator (synthetic)",
        },
        "second_check": {
            "kind": "output_factors_csv",
            "csv": "output_factors_check.csv",
            "description": "synthetic independent table",
        },
        "monitor_chamber": {
            "correction": "pressure_temperature",
            "reference_pressure_hpa": {"value": 1013.25, "source": "calibration record"},
            "reference_temperature_c": {"value": 20.0, "source": "calibration record"},
        },
        "max_dose_cgy": 3000,
        "typical_beam_on_time_min": {
            "value": 2.0,
            "status": "measured",
            "source": "synthetic test data",
        },
        "discs_file": "discs.yaml",
    }
    machine.update(changes)
    (folder / "machine.yaml").write_text(yaml.safe_dump(machine), encoding="utf-8")
    write_manifest(folder, remake=f"iort devices manifest {folder}")
    return folder / "machine.yaml"


def _problems(path: Path) -> list[str]:
    with pytest.raises(ElectronDataError) as info:
        load_machine_data(path)
    return info.value.problems


# ---------------------------------------------------------------------------------------------
# the example machines


def test_liac_hwl_is_the_example_machine_in_the_format() -> None:
    by_name = load_machine_data("liac_hwl")
    default = load_electron_device()
    assert default.status == by_name.status == "example"
    assert default.output_factor_cgy_per_mu == by_name.output_factor_cgy_per_mu
    assert default.r90_measured_mm == by_name.r90_measured_mm
    assert len(default.output_factor_cgy_per_mu) == 144
    assert default.chamber_correction_mode == "pressure"
    assert default.data_ref().is_example
    assert "example machine, not your machine" in default.label


def test_example_machine_mu_at_sea_level_equal_the_worksheet_hand_calculation() -> None:
    """kali_mc worksheet: 21 Gy to the 90 % isodose, 6 cm / 45 deg / 12 MeV (OF 1.451 cGy/MU),
    MU = 2100 / 0.9 / 1.451 x P / 934.7 hPa, rounded: 1608 MU at 934.7 hPa, 1743 at 1013 hPa."""
    dev = load_electron_device()
    hand = {p: round(2100 / 0.9 / 1.451 * p / 934.7) for p in (934.7, 1013.0)}
    assert hand == {934.7: 1608, 1013.0: 1743}
    for p, mu in hand.items():
        assert calculate_mu(MuRequest(2100, 6, 45, 12, p), dev).monitor_units == mu
    # the report's hand-calculation lines of the plan at the reference pressure
    primary = calculate_mu(MuRequest(2100, 6, 45, 12, 934.7), dev)
    check = second_check(MuRequest(2100, 6, 45, 12, 934.7), dev)
    sheet = mu_worksheet(
        dev,
        prescription_gy=21.0,
        isodose_pct=90,
        applicator_cm=6,
        bevel_deg=45,
        energy_mev=12,
        pressure_hpa=934.7,
        temperature_c=None,
        chamber_correction=primary.chamber_correction,
        rescale=1.0,
        monitor_units=primary.monitor_units,
        monitor_units_exact=primary.monitor_units_exact,
        check_output_factor=check.output_factor_mc_cgy_per_mu,
        check_monitor_units=check.monitor_units,
        check_difference_pct=check.difference_pct,
        check_action_level_pct=check.action_level_pct,
    )
    values = {line.quantity.strip(): line.value for line in sheet.lines}
    assert values["MU = reference MU x k_air, rounded"] == "1608 MU"
    assert values["the same at 1013.25 hPa (sea level)"] == "1743 MU"
    assert values["output factor OF (6 cm, 45 deg, 12 MeV)"] == "1.451 cGy/MU"
    assert values["bevel factor OF / OF(6 cm, 0 deg)"] == f"{1.451 / 1.328:.4f}"
    assert "Monte Carlo" in sheet.second_check[0].note  # the check's own data
    assert sheet.example_machine


def test_mobetron_example_loads_in_the_same_format() -> None:
    dev = load_machine_data("mobetron_1000")
    assert (dev.name, dev.status, dev.chamber_correction_mode) == (
        "Mobetron 1000",
        "example",
        "daily_output_check",
    )
    assert dev.energies_mev == (4, 6, 9, 12)
    assert len(dev.output_factor_cgy_per_mu) == 8 * 3 * 4
    beam = dev.beam(6, 15, 9)
    # R90 read off the measured-style PDD equals the 3D beam's clinical-axis R90 (0.5 mm grid)
    assert beam.characteristics.r90_mm == pytest.approx(dev.r90_measured(6, 15, 9), abs=0.3)
    assert beam.relative_dose(0.0, 0.0, beam.characteristics.zmax_mm) == pytest.approx(
        100.0, abs=0.5
    )
    # flat applicator: the 90 % width at zmax is narrower than the applicator
    flat = dev.beam(6, 0, 9).characteristics
    assert 40.0 < flat.width90_x_mm < 60.0
    assert flat.width90_x_mm == pytest.approx(flat.width90_y_mm, abs=0.5)


def test_machine_schema_is_printed() -> None:
    result = CliRunner().invoke(app, ["schema", "--machine"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.output)
    assert schema == json.loads(json.dumps(machine_json_schema()))
    assert {"monitor_chamber", "output_factors_csv", "status"} <= set(schema["properties"])


# ---------------------------------------------------------------------------------------------
# a department's machine


def test_department_machine_loads_with_its_identity(tmp_path: Path) -> None:
    dev = load_machine_data(department_machine(tmp_path / "m"))
    ref = dev.data_ref()
    assert (ref.status, ref.serial, ref.version) == ("department", "TEST-E-0001", "test-1")
    assert not ref.is_example and dev.label == "Test linac (serial TEST-E-0001)"
    assert dev.output_factor(6, 0, 9) == pytest.approx(1.0)
    assert dev.chamber_correction_mode == "pressure_temperature"
    assert dev.independent_output_factor(5, 15, 6) == dev.output_factor(5, 15, 6)
    assert dev.second_check_method == "synthetic independent table"
    assert dev.disc("al_pb").thickness_mm == pytest.approx(6.0)


@pytest.mark.parametrize(
    ("table", "edit", "expected"),
    [
        (
            "output_factors.csv",
            lambda t: t.replace("cgy_per_mu", "output"),
            "output_factors.csv: missing column cgy_per_mu",
        ),
        (
            "output_factors.csv",
            lambda t: t.replace("\n5,0,6,", "\n5,0,6,-", 1),
            "output_factors.csv line 3: output factor -",
        ),
        (
            "pdd.csv",
            lambda t: "".join(
                line
                for line in t.splitlines(True)
                if line.startswith(("#", "applicator")) or line.split(",")[2] != "9"
            ),
            "pdd.csv: energy 9 MeV has no PDD",
        ),
    ],
)
def test_bad_tables_give_one_clear_problem(
    tmp_path: Path, table: str, edit: object, expected: str
) -> None:
    path = department_machine(tmp_path / "m")
    file = path.parent / table
    file.write_text(edit(file.read_text(encoding="utf-8")), encoding="utf-8")  # type: ignore[operator]
    write_manifest(path.parent, remake="test")
    problems = _problems(path)
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected), problems


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = department_machine(tmp_path / "m", serial=None, commissioned_by="")
    problems = _problems(path)
    assert len(problems) == 2
    assert all("required (department data name" in p for p in problems)


def test_department_data_need_their_reviewed_manifest(tmp_path: Path) -> None:
    path = department_machine(tmp_path / "m")
    (path.parent / "output_factors.csv").write_text(
        (path.parent / "output_factors.csv").read_text(encoding="utf-8").replace("1.0000", "1.1"),
        encoding="utf-8",
    )
    assert "output_factors.csv has SHA-256" in " ".join(_problems(path))
    (path.parent / "manifest_sha256.csv").unlink()
    assert "iort devices manifest" in _problems(path)[0]


def test_plan_with_bad_machine_data_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    path = department_machine(tmp_path / "m")
    of = path.parent / "output_factors.csv"
    of.write_text(of.read_text(encoding="utf-8").replace("\n5,0,6,", "\n5,0,6,-", 1))
    write_manifest(path.parent, remake="test")
    out = tmp_path / "plan"
    case = Path(__file__).resolve().parents[2] / "examples" / "left_electron_eliot.yaml"
    result = CliRunner().invoke(
        app, ["plan", str(case), "--machine-data", str(path), "--out", str(out)]
    )
    assert result.exit_code == 2, result.output
    assert "output factor -" in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_pdd_profiles_beam_reproduces_its_tables(tmp_path: Path) -> None:
    dev = load_machine_data(department_machine(tmp_path / "m"))
    rows = [
        r
        for r in parse_commented_csv((tmp_path / "m" / "pdd.csv").read_text(encoding="utf-8"))
        if (r["applicator_cm"], r["bevel_deg"], r["energy_mev"]) == ("5", "0", "9")
    ]
    depth = np.array([float(r["depth_mm"]) for r in rows])
    pdd = np.array([float(r["pdd_pct"]) for r in rows])
    beam = dev.beam(5, 0, 9)
    inside = depth[(depth >= 1.0) & (depth <= depth[-1] - 1.0)]
    # the clinical axis of the 3D beam is the measured PDD (1 % of the maximum)
    assert np.max(np.abs(beam.pdd(inside) - np.interp(inside, depth, pdd))) < 1.0


def test_hand_calculation_block_renders_in_the_report_and_the_web_page() -> None:
    from importlib import resources

    from jinja2 import Environment, FileSystemLoader

    dev = load_electron_device()
    primary = calculate_mu(MuRequest(2100, 6, 45, 12, 934.7), dev)
    sheet = mu_worksheet(
        dev,
        prescription_gy=21.0,
        isodose_pct=90,
        applicator_cm=6,
        bevel_deg=45,
        energy_mev=12,
        pressure_hpa=934.7,
        temperature_c=None,
        chamber_correction=primary.chamber_correction,
        rescale=1.0,
        monitor_units=primary.monitor_units,
        monitor_units_exact=primary.monitor_units_exact,
        check_output_factor=1.5,
        check_monitor_units=1556,
        check_difference_pct=-3.3,
        check_action_level_pct=3.0,
    )
    pages = []
    for package, name, context in (
        ("openiort.report", "sections/mu_worksheet.html", {"section": sheet}),
        ("openiort.web", "_mu_worksheet.html", {"ws": sheet.to_dict()}),
    ):
        folder = resources.files(package).joinpath("templates")
        env = Environment(loader=FileSystemLoader(str(folder)), autoescape=True)
        pages.append(env.get_template(name).render(**context))
    for html in pages:
        assert "hand calculation" in html and "1608 MU" in html and "1743 MU" in html
        assert "example machine, not your machine" in html
        assert "second check (its own data)" in html and "1.5 cGy/MU" in html


def test_a_plan_on_the_department_machine_records_whose_data(tmp_path: Path) -> None:
    from openiort.case import load_case
    from openiort.pipeline import plan_case

    case = load_case(Path(__file__).resolve().parents[2] / "examples" / "left_electron_eliot.yaml")
    plan = plan_case(case, machine_data=department_machine(tmp_path / "m"))
    device = plan.delivery.device
    assert (device.status, device.serial, device.version) == ("department", "TEST-E-0001", "test-1")
    assert plan.delivery.chamber_correction_mode == "pressure_temperature"
    assert plan.delivery.reference_temperature_c == 20.0
    assert not any("example" in w for w in plan.warnings)
    sheet = plan.sections["mu_worksheet"]
    assert not sheet.example_machine and sheet.machine == "Test linac (serial TEST-E-0001)"
    assert sheet.second_check[0].note == "synthetic independent table"


def test_the_web_app_takes_the_department_machine_and_refuses_bad_data(tmp_path: Path) -> None:
    from openiort.web.config import SECRET_BYTES, WebConfig

    secret = b"k" * SECRET_BYTES
    good = department_machine(tmp_path / "m")
    config = WebConfig(files_dir=tmp_path / "f", session_secret=secret, electron_machine_data=good)
    assert config.electron_machine_data == good
    (good.parent / "pdd.csv").write_text("applicator_cm\n", encoding="utf-8")
    with pytest.raises(ElectronDataError, match=r"pdd\.csv"):
        WebConfig(files_dir=tmp_path / "f", session_secret=secret, electron_machine_data=good)


def test_the_shipped_test_department_machine_is_current() -> None:
    """tests/data/department_electron_machine: what web and records tests may plan with."""
    folder = Path(__file__).resolve().parents[1] / "data" / "department_electron_machine"
    result = CliRunner().invoke(app, ["devices", "manifest", str(folder), "--check"])
    assert result.exit_code == 0, result.output
    dev = load_machine_data(folder / "machine.yaml")
    assert dev.data_ref().status == "department" and dev.serial == "TEST-E-0001"


@pytest.mark.parametrize(
    ("mode", "check_fields"),
    [("daily_output_check", True), ("pressure", False), ("sealed", False)],
)
def test_conditions_of_the_day_form_follows_the_chamber_mode(mode: str, check_fields: bool) -> None:
    from importlib import resources

    from jinja2 import Environment, FileSystemLoader

    folder = resources.files("openiort.web").joinpath("templates")
    env = Environment(loader=FileSystemLoader(str(folder)), autoescape=True)
    delivery = {
        "technique": "electron",
        "chamber_correction_mode": mode,
        "reference_pressure_hpa": 934.7,
        "device": {"name": "Mobetron 1000", "status": "example"},
    }
    html = env.get_template("_console_today.html").render(pj={"delivery": delivery}, plan={"id": 1})
    assert ('name="session_check_pressure_hpa"' in html) is check_fields
    assert ('name="session_pressure_hpa"' in html) is (mode != "sealed")
    assert "example machine, not your machine" in html
