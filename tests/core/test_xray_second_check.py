"""The 50 kV second check shares none of the primary's tables, so it can disagree.

Primary: TG-292 Table IV rates x the package depth-dose x the ratio table (example source), or
a department's bare-probe x transfer tables. Second: the Monte Carlo source model
(openiort.devices.xray_second_check). Both must agree within the department's tolerance
(default 5 %) on the example source and the department data set, and a table of either path
altered by 10 % must make them disagree beyond it.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from openiort.datafiles import read_data
from openiort.devices.xray import (
    ApplicatorData,
    DeviceDataError,
    XraySource,
    load_commissioning,
    load_example_source,
    treatment_time,
)
from openiort.devices.xray_second_check import FILES, load_model, parse_model, second_check_time

DEPARTMENT = Path(__file__).resolve().parents[1] / "data" / "department_xray_source"
# The model's surface rates fit TG-292 Table IV within -3.1/+1.3 % (the 5.0 cm applicator's
# -3.1 % is the largest) and its TARGIT model the 24 ratios within 1 %
# (xray50_second_check_model.yaml residuals); the two Monte Carlo depth-dose curves (the
# package table's and the model's, independent runs) differ by up to about 1 % more: 4.5 %
# (found: 4.1 %, 5.0 cm at 5 mm, V4.0), below the 5 % tolerance that the test guards.
AGREEMENT_PCT = 4.5
CORRUPTION = 1.10  # a 10 % error in one table: twice the default tolerance
DEPTHS_MM = (0.0, 5.0, 10.0, 20.0)


def _sources() -> list[XraySource]:
    return [load_example_source(), load_commissioning(DEPARTMENT / "source.yaml")]


@pytest.mark.parametrize("which", ["example", "department"])
@pytest.mark.parametrize("definition", ["TARGIT", "V4.0"])
def test_agrees_within_tolerance(which: str, definition: str) -> None:
    source = _sources()[0 if which == "example" else 1]
    assert source.second_check_tolerance_pct == 5.0
    for d in source.diameters_cm:
        for z in DEPTHS_MM:
            t = treatment_time(source, d, 20.0, definition, z)  # type: ignore[arg-type]
            assert abs(t.difference_pct) < AGREEMENT_PCT, (d, z, t.difference_pct)
            assert t.agrees
    assert "Monte Carlo source model" in t.second_path
    assert "TG-292" in t.primary_path or "department" in t.primary_path


def test_the_department_anchor_is_used() -> None:
    source = _sources()[1]
    assert source.second_check_reference is not None
    t = treatment_time(source, 3.0, 20.0, "V4.0")
    assert "department's reference output" in t.second_path
    doubled = replace(
        source,
        second_check_reference=replace(
            source.second_check_reference,
            dose_rate_gy_min=2 * source.second_check_reference.dose_rate_gy_min,
        ),
    )
    # twice the anchor: half the second-check time, the primary unchanged
    t2 = treatment_time(doubled, 3.0, 20.0, "V4.0")
    assert t2.time_min == pytest.approx(t.time_min, rel=1e-12)
    assert t2.second_check_time_min == pytest.approx(t.second_check_time_min / 2, rel=1e-9)


def _corruptions(source: XraySource) -> dict[str, XraySource]:
    def app_map(f: object) -> XraySource:
        apps: dict[float, ApplicatorData] = {d: f(a) for d, a in source.applicators.items()}  # type: ignore[operator]
        return replace(source, applicators=apps)

    return {
        "rate": app_map(
            lambda a: replace(
                a,
                surface_rate_v40_gy_min=a.surface_rate_v40_gy_min * CORRUPTION,
                surface_rate_targit_gy_min=a.surface_rate_targit_gy_min * CORRUPTION,
            )
        ),
        # depth-dose 10 % high from 1 mm on (the prescription at 10 mm sees it)
        "depth-dose": app_map(
            lambda a: replace(
                a,
                relative_dose_water=np.where(
                    a.depth_mm > 0.9, a.relative_dose_water * CORRUPTION, a.relative_dose_water
                ),
            )
        ),
        "ratio": app_map(
            lambda a: replace(
                a, ratio_v40_over_targit=tuple(r * CORRUPTION for r in a.ratio_v40_over_targit)
            )
        ),
    }


@pytest.mark.parametrize("table", ["rate", "depth-dose", "ratio"])
def test_a_corrupted_primary_table_warns(table: str) -> None:
    bad = _corruptions(load_example_source())[table]
    t = treatment_time(bad, 3.0, 20.0, "TARGIT", 10.0)
    assert not t.agrees, (table, t.difference_pct)


def _department_copy(tmp_path: Path, name: str, column: str, factor: float) -> XraySource:
    folder = tmp_path / "dept"
    shutil.copytree(DEPARTMENT, folder)
    path = folder / name
    lines = path.read_text().splitlines()
    header = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    col = lines[header].split(",").index(column)
    for i in range(header + 1, len(lines)):
        cells = lines[i].split(",")
        cells[col] = f"{float(cells[col]) * factor:.8g}"
        lines[i] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    from openiort.datafiles import write_manifest

    write_manifest(folder)
    return load_commissioning(folder / "source.yaml")


@pytest.mark.parametrize(
    ("name", "column"),
    [("bare_probe.csv", "dose_rate_gy_min"), ("transfer.csv", "transfer_coefficient")],
)
def test_a_corrupted_department_table_warns(tmp_path: Path, name: str, column: str) -> None:
    bad = _department_copy(tmp_path, name, column, CORRUPTION)
    t = treatment_time(bad, 3.0, 20.0, "V4.0")
    assert not t.agrees and t.difference_pct == pytest.approx(100 * (CORRUPTION - 1), abs=2.0)


def _model_texts() -> list[str]:
    return [read_data("openiort.devices", name).text for name in FILES]


def _scale_column(text: str, column: str, factor: float, where: object = None) -> str:
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    names = lines[header].split(",")
    col = names.index(column)
    for i in range(header + 1, len(lines)):
        cells = lines[i].split(",")
        row = dict(zip(names, cells, strict=True))
        if where is None or where(row):  # type: ignore[operator]
            cells[col] = f"{float(cells[col]) * factor:.8g}"
        lines[i] = ",".join(cells)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("table", ["rate", "depth-dose", "transfer", "ratio"])
def test_a_corrupted_second_check_table_warns(table: str) -> None:
    bare, trans, params = _model_texts()
    if table == "rate":  # the nominal output (the anchor of the example source)
        params = params.replace("dose_rate_v40_gy_min: ", "dose_rate_v40_gy_min: 1.1*", 1)
        value = float(params.split("1.1*", 1)[1].split()[0])
        params = params.replace(f"1.1*{value}", f"{value * CORRUPTION}")
    elif table == "depth-dose":  # the bare-probe curve beyond 20 mm from the source
        bare = _scale_column(
            bare,
            "relative_dose_water",
            CORRUPTION,
            lambda r: float(r["distance_from_source_mm"]) > 20.0,
        )
    elif table == "transfer":
        trans = _scale_column(trans, "transmission", CORRUPTION)
    else:  # the TARGIT model's factor
        factor = float(params.split("factor: ", 1)[1].split()[0])
        params = params.replace(f"factor: {factor}", f"factor: {factor * CORRUPTION}")
    model = parse_model(bare, trans, params)
    assert model.sha256 != load_model().sha256
    source = load_example_source()
    t = treatment_time(source, 3.0, 20.0, "TARGIT", 10.0)
    second = second_check_time(source, 3.0, 20.0, "TARGIT", 10.0, model=model)
    diff_pct = 100 * (second.time_min - t.time_min) / t.time_min
    assert abs(diff_pct) > source.second_check_tolerance_pct, (table, diff_pct)


def test_department_tolerance_and_bad_reference(tmp_path: Path) -> None:
    folder = tmp_path / "dept"
    shutil.copytree(DEPARTMENT, folder)
    yaml_path = folder / "source.yaml"
    text = yaml_path.read_text()
    yaml_path.write_text(text + "second_check_tolerance_pct: 0.1\n")
    from openiort.datafiles import write_manifest

    write_manifest(folder)
    tight = load_commissioning(yaml_path)
    assert tight.second_check_tolerance_pct == 0.1
    assert not treatment_time(tight, 5.0, 20.0, "V4.0").agrees  # the 5 cm differs by about 3 %
    yaml_path.write_text(
        text.replace("dose_definition: V4.0\n  source", "dose_definition: X\n  source")
    )
    write_manifest(folder)
    with pytest.raises(DeviceDataError, match="second_check_reference"):
        load_commissioning(yaml_path)


def test_a_plan_with_a_corrupted_table_carries_the_warning() -> None:
    from importlib import resources

    from openiort.case import load_case
    from openiort.planning.xray import plan_xray

    case = load_case(Path(str(resources.files("openiort").joinpath("data/demo_case.yaml"))))
    bad = _corruptions(load_example_source())["rate"]
    plan = plan_xray(case, source=bad, spacing_mm=4.0)
    check = plan.details.second_check  # type: ignore[union-attr]
    assert not check.agrees_within_tolerance and check.tolerance_pct == 5.0
    assert any("Second check differs" in w and "> 5 %" in w for w in plan.warnings)


def test_older_plans_with_a_fixed_5_pct_still_read() -> None:
    from openiort.plan_figures import XraySecondCheck

    old = {
        "agrees_within_5_pct": True,
        "difference_pct": 0.0,
        "primary_path": "p",
        "second_path": "s",
        "treatment_time_min": 20.147,
    }
    check = XraySecondCheck.model_validate(old)
    assert check.agrees_within_tolerance and check.tolerance_pct == 5.0
