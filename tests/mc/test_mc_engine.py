"""Planning engine: absolute normalisation, TG-186 media, errors, interruption."""

from __future__ import annotations

import numpy as np
import pytest

from openiort.anatomy.materials import get_material
from openiort.anatomy.phantom import Phantom
from openiort.devices.xray import load_example_source
from openiort.dose.mc import engine, runner
from openiort.dose.mc.box_phantoms import box_phantom
from openiort.dose.mc.commissioning import CommissioningError, regenerate_depth_dose_table
from openiort.dose.mc.runner import RunSettingsError, SimulationInterruptedError
from openiort.dose.mc.sphere import GeometryError
from openiort.grid import Grid


@pytest.fixture(scope="module")
def calibration(tmp_path_factory):
    d = tmp_path_factory.mktemp("mc-calib")
    curves = regenerate_depth_dose_table(
        1_000_000, 17, d / "table.csv", calibration_path=d / "calib.csv", diameters_cm=(3.0,)
    )
    return str(d / "calib.csv"), curves[0]


def _water_phantom(spacing_mm: float = 1.0, size_mm: float = 70.0) -> Phantom:
    grid = Grid.centred((0.0, 0.0, 0.0), (size_mm, size_mm, size_mm), spacing_mm)
    return Phantom(
        grid=grid,
        material_ids=np.zeros(grid.shape, dtype=np.uint8),
        density_g_cm3=np.ones(grid.shape, dtype=np.float32),
        materials=("water",),
        structures={},
        applicator_centre_mm=(0.0, 0.0, 0.0),
        applicator_radius_mm=15.0,
        shaft_direction=(0.0, 0.0, 1.0),
    )


def test_water_phantom_reproduces_the_v40_surface_dose(calibration):
    calib_path, curve = calibration
    ph = _water_phantom(size_mm=90.0)  # 20 mm of water beyond the 10 mm shell for its scatter
    dwell_s = 600.0
    dm, dw = engine.compute(
        ph,
        3.0,
        dwell_time_s=dwell_s,
        histories=1_000_000,
        seed=3,
        progress=False,
        calibration_path=calib_path,
    )
    assert dm.medium == "medium_in_medium" and dw.medium == "water_in_medium"
    assert dm.rel_uncertainty is not None and "V4.0" in dm.provenance.calibration
    surface_gy = load_example_source().applicator(3.0).surface_rate_v40_gy_min * dwell_s / 60.0
    r = ph.grid.distance_from_mm((0.0, 0.0, 0.0))
    z = ph.grid.axes_mm()[0][:, None, None] * np.ones(ph.grid.shape)
    equator = np.abs(z) < 8.0  # away from the shaft's shadow cone (45 deg about +z)
    for depth in (0.5, 2.0, 5.0, 10.0):
        shell = (np.abs(r - 15.0 - depth) < 0.25) & equator
        expected = surface_gy * float(np.interp(depth, curve.depth_mm, curve.relative))
        # in water D_m,m = D_w,m = D_w,w: the table value at that depth. 3 %: statistics
        # (< 0.5 % for the shell; the 1e6-history curve 0.4 % at the surface, 0.8 % at 10 mm),
        # 1 mm voxel averaging (< 0.5 %) and the scatter missing from the shadow cone and beyond
        # the 9 cm box (a 7 cm box loses 2.5 % at 10 mm).
        assert dw.dose_gy[shell].mean() == pytest.approx(expected, rel=0.03), depth
        np.testing.assert_allclose(dm.dose_gy[shell], dw.dose_gy[shell], rtol=1e-12)
    assert np.all(dm.dose_gy[r < 15.0] == 0.0)
    # the probe shadow: along the shaft the dose is far lower than on the opposite side
    on_axis = np.abs(r - 25.0) < 1.0
    x, y = ph.grid.axes_mm()[2][None, None, :], ph.grid.axes_mm()[1][None, :, None]
    near_axis = on_axis & (np.hypot(x, y) < 4.0)
    assert dm.dose_gy[near_axis & (z > 0)].mean() < 0.5 * dm.dose_gy[near_axis & (z < 0)].mean()


def test_breast_tissue_gets_less_dose_to_medium_than_water(calibration):
    calib_path, _ = calibration
    ph = box_phantom(3.0, size_mm=70.0, spacing_mm=1.0, tissue="breast_20_80", skin_mm=2.0)
    dm, dw = engine.compute(
        ph,
        3.0,
        surface_dose_gy=20.0,
        histories=400_000,
        seed=4,
        progress=False,
        calibration_path=calib_path,
    )
    r = ph.grid.distance_from_mm((0.0, 0.0, 0.0))
    shell = np.abs(r - 20.0) < 0.5
    ratio = dm.dose_gy[shell].sum() / dw.dose_gy[shell].sum()
    # mu_en(breast 20/80)/mu_en(water) is 0.66-0.72 from 20 to 50 keV (NIST / this physics)
    assert 0.62 < ratio < 0.76
    tissue_density = get_material("breast_20_80").density_g_cm3
    assert tissue_density < 1.0


def test_settings_errors(calibration):
    calib_path, _ = calibration
    ph = _water_phantom(spacing_mm=5.0)
    with pytest.raises(RunSettingsError, match="exactly one"):
        engine.compute(ph, 3.0, histories=1000, progress=False, calibration_path=calib_path)
    with pytest.raises(RunSettingsError, match="exactly one"):
        engine.compute(
            ph,
            3.0,
            dwell_time_s=10.0,
            surface_dose_gy=1.0,
            histories=1000,
            calibration_path=calib_path,
        )
    with pytest.raises(RunSettingsError, match="positive"):
        engine.compute(
            ph, 3.0, dwell_time_s=-1.0, histories=1000, progress=False, calibration_path=calib_path
        )
    with pytest.raises(GeometryError, match="does not match"):
        engine.compute(
            ph, 3.5, dwell_time_s=10.0, histories=1000, progress=False, calibration_path=calib_path
        )
    with pytest.raises(CommissioningError):
        engine.compute(
            ph,
            3.0,
            dwell_time_s=10.0,
            histories=1000,
            progress=False,
            calibration_path=str(calib_path) + ".missing",
        )


def test_ctrl_c_stops_cleanly(calibration, monkeypatch):
    calib_path, _ = calibration
    ph = _water_phantom(spacing_mm=5.0)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "wait", interrupted)
    with pytest.raises(SimulationInterruptedError, match="interrupted"):
        engine.compute(
            ph,
            3.0,
            dwell_time_s=10.0,
            histories=100_000,
            progress=False,
            calibration_path=calib_path,
        )


def test_interrupted_commissioning_writes_nothing(tmp_path, monkeypatch):
    table = tmp_path / "table.csv"
    table.write_text("old\n")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "wait", interrupted)
    with pytest.raises(SimulationInterruptedError):
        regenerate_depth_dose_table(
            10_000, 1, table, calibration_path=tmp_path / "c.csv", diameters_cm=(3.0,)
        )
    assert table.read_text() == "old\n"
    assert not (tmp_path / "c.csv").exists()
