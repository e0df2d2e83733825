"""Table engine: the 3D dose reproduces the published surface rates and the tabulated
depth-dose on every axis, checked against the data files read here, not the device model."""

from __future__ import annotations

import csv
import hashlib
from importlib import resources
from typing import Any

import numpy as np
import pytest

from openiort.anatomy.breast_phantom import build_breast_phantom
from openiort.devices.xray import load_example_source, treatment_time
from openiort.dose import table

# TG-292 Table IV (Culberson et al., Med Phys 2020;47:e913), 3.0 cm applicator of the example
# source: surface dose rates in Gy/min in the V4.0 and TARGIT definitions.
TG292_RATE_V40_3CM = 1.2292
TG292_RATE_TARGIT_3CM = 0.9927
DATA = resources.files("openiort.devices").joinpath("data")


def _data_text(name: str) -> str:
    return DATA.joinpath(name).read_text("utf-8")


def _depth_dose_table(diameter_cm: float) -> tuple[np.ndarray, np.ndarray]:
    """(depth_mm, relative dose) of one applicator, read straight from the data file."""
    lines = [ln for ln in _data_text("xray50_depth_dose_water.csv").splitlines() if ln[:1] != "#"]
    rows = [r for r in csv.DictReader(lines) if float(r["applicator_diameter_cm"]) == diameter_cm]
    return (
        np.array([float(r["depth_mm"]) for r in rows]),
        np.array([float(r["relative_dose_water"]) for r in rows]),
    )


@pytest.fixture(scope="module")
def planned(demo_case: Any = None) -> Any:
    from pathlib import Path

    import yaml

    from openiort.case import parse_case

    data = yaml.safe_load(
        (
            Path(__file__).resolve().parents[2] / "examples" / "left_upper_outer_30mm.yaml"
        ).read_text()
    )
    case = parse_case(data)
    source = load_example_source()
    t = treatment_time(source, 3.0, 20.0, "TARGIT")
    phantom = build_breast_phantom(case, applicator_radius_mm=15.0)
    return source, t, phantom, table.compute(source, 3.0, t.time_min, phantom)


def test_dose_on_every_axis_matches_the_depth_dose(planned: Any) -> None:
    _source, t, phantom, dose = planned
    grid = phantom.grid
    centre_idx = np.round(grid.position_to_index(np.array(phantom.applicator_centre_mm))).astype(
        int
    )
    body = phantom.material_ids != phantom.materials.index("air")
    # 20 Gy TARGIT at the surface is 20 x V4.0/TARGIT in V4.0, the definition of the water table.
    surface_gy = 20.0 * TG292_RATE_V40_3CM / TG292_RATE_TARGIT_3CM
    assert t.time_min * TG292_RATE_TARGIT_3CM == pytest.approx(20.0, rel=1e-12)
    table_depth, table_dose = _depth_dose_table(3.0)
    # Reference: log-linear interpolation of the tabulated curve (the dose falls nearly
    # exponentially between the 0.5 mm nodes); the engine interpolates linearly. Between two
    # nodes whose log-dose differs by delta the two schemes differ by at most delta^2 / 8
    # (relative), largest at the surface where the fall-off is steepest.
    delta = np.abs(np.diff(np.log(table_dose[table_depth <= 30.0])))
    axis_tolerance = float(delta.max() ** 2 / 8) * 1.01 + 1e-9
    assert axis_tolerance < 0.0015  # 0.12 %: about 20 %/mm fall-off over a 0.5 mm step
    checked = 0
    for axis in range(3):
        for sign in (-1, 1):
            for step in range(16, 45):
                idx = centre_idx.copy()
                idx[axis] += sign * step
                if not (0 <= idx[axis] < grid.shape[axis]) or not body[tuple(idx)]:
                    continue
                pos = grid.index_to_position_mm(idx.astype(float))
                depth = np.linalg.norm(pos - np.array(phantom.applicator_centre_mm)) - 15.0
                relative = np.exp(np.interp(depth, table_depth, np.log(table_dose)))
                expected = surface_gy * float(relative)
                assert dose.dose_gy[tuple(idx)] == pytest.approx(expected, rel=axis_tolerance)
                checked += 1
    assert checked > 100


def test_surface_dose_is_the_prescription_in_water(planned: Any) -> None:
    _source, _t, _phantom, dose = planned
    # V4.0 equivalent of 20 Gy TARGIT, from the published rates (the example source has no
    # output correction); 1e-6: floating-point rounding only.
    ratio = TG292_RATE_V40_3CM / TG292_RATE_TARGIT_3CM
    assert dose.dose_gy.max() == pytest.approx(20.0 * ratio, rel=1e-6)


def test_air_gets_no_dose_and_result_is_labelled(planned: Any) -> None:
    source, _t, phantom, dose = planned
    air = phantom.material_ids == phantom.materials.index("air")
    assert np.all(dose.dose_gy[air] == 0)
    assert dose.medium == "water_in_water"
    # The device-data hash names the exact data files: SHA-256 over the surface-rate table
    # then the depth-dose table, computed here from the files themselves.
    files = hashlib.sha256(
        (
            _data_text("xray50_tg292_example_source.csv")
            + _data_text("xray50_depth_dose_water.csv")
        ).encode("utf-8")
    ).hexdigest()
    assert dose.provenance.device_data_sha256 == source.data_sha256 == files


def test_inputs_hash_follows_the_inputs(planned: Any) -> None:
    source, t, phantom, dose = planned
    # Same inputs, same hash (a result can be matched to its inputs); any change, another hash.
    same = table.compute(source, 3.0, t.time_min, phantom)
    longer = table.compute(source, 3.0, t.time_min * 1.001, phantom)
    assert same.provenance.inputs_sha256 == dose.provenance.inputs_sha256
    assert longer.provenance.inputs_sha256 != dose.provenance.inputs_sha256


def test_bad_inputs(planned: Any) -> None:
    source, _, phantom, _ = planned
    with pytest.raises(ValueError, match="positive"):
        table.compute(source, 3.0, 0.0, phantom)
    with pytest.raises(ValueError, match="does not match"):
        table.compute(source, 3.5, 10.0, phantom)
