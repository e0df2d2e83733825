"""Dose metrics (evaluation/metrics.py) on analytic dose distributions.

Each expected value is computed here from the dose formula (closed-form integrals or the
geometry of the structure), never from the DVH code; each tolerance says where it comes from.
"""

from __future__ import annotations

import numpy as np
import pytest

from openiort.anatomy.phantom import Phantom
from openiort.dosegrid import DoseGrid, Provenance
from openiort.evaluation.dvh import compute_dvh
from openiort.evaluation.limits import sbrt_reference_limits
from openiort.evaluation.metrics import (
    check_constraints,
    evaluate,
    exceeded_limits,
    metric_value,
    radial_profile_gy,
    structure_metrics,
)
from openiort.grid import Grid

PROVENANCE = Provenance("analytic test dose", "0", "none", "0" * 64, "0" * 64, "none")


def _dose_grid(grid: Grid, dose_gy: np.ndarray) -> DoseGrid:
    return DoseGrid(grid, dose_gy, "water_in_water", "analytic", PROVENANCE)


def _phantom(grid: Grid, structures: dict[str, np.ndarray]) -> Phantom:
    return Phantom(
        grid=grid,
        material_ids=np.zeros(grid.shape, dtype=np.uint8),
        density_g_cm3=np.ones(grid.shape, dtype=np.float32),
        materials=("water",),
        structures=structures,
    )


# ------------------------------------------------------------------ uniform dose in a sphere


def test_uniform_dose_in_a_sphere() -> None:
    grid = Grid.centred((0.0, 0.0, 0.0), (40.0, 40.0, 40.0), 1.0)
    sphere = grid.distance_from_mm((0.3, -0.2, 0.1)) <= 12.0
    dose = np.full(grid.shape, 12.5)
    dvh = compute_dvh(dose, sphere, grid)
    m = structure_metrics(dvh, "target")
    # A uniform dose has no gradient, so every voxel counts whole with its own value: the
    # statistics are exact up to floating-point rounding of the sums (1e-12).
    assert m.volume_cc == pytest.approx(sphere.sum() * grid.voxel_volume_cc, rel=1e-12)
    assert m.mean_gy == pytest.approx(12.5, rel=1e-12)
    assert m.max_gy == m.min_gy == m.d0_1cc_gy == 12.5
    assert m.extra["D90_gy"] == m.extra["D95_gy"] == 12.5
    # every voxel gets 12.5 Gy: all of the volume is above 5 and 10 Gy, none above 20 Gy
    assert (m.extra["V5Gy_pct"], m.extra["V10Gy_pct"], m.extra["V20Gy_pct"]) == (
        pytest.approx(100.0, rel=1e-12),
        pytest.approx(100.0, rel=1e-12),
        0.0,
    )
    assert metric_value(dvh, "Dmean") == pytest.approx(12.5, rel=1e-12)
    assert metric_value(dvh, "V12.5Gy") == pytest.approx(m.volume_cc, rel=1e-12)
    assert metric_value(dvh, "V12.6Gy") == 0.0
    # V<p>%Rx: the volume at p % of the prescription (12.5 Gy is 125 % of 10 Gy)
    assert metric_value(dvh, "V125%Rx", prescription_gy=10.0) == pytest.approx(m.volume_cc)
    assert metric_value(dvh, "V126%Rx", prescription_gy=10.0) == 0.0


# ------------------------------------------------------------ linear gradient across a box

G_GY_PER_MM = 0.2  # dose = 20 Gy + G x along x
HALF_LENGTH_MM = 20.0  # the box spans x in [-20, 20] mm, y and z in [-10, 10] mm


@pytest.fixture(scope="module")
def gradient_box() -> tuple[Grid, np.ndarray, np.ndarray]:
    grid = Grid.centred((0.0, 0.0, 0.0), (60.0, 30.0, 30.0), 1.0)
    z, y, x = grid.axes_mm()
    dose = np.broadcast_to(20.0 + G_GY_PER_MM * x[None, None, :], grid.shape).copy()
    box = (
        (np.abs(x)[None, None, :] < HALF_LENGTH_MM)
        & (np.abs(y)[None, :, None] < 10.0)
        & (np.abs(z)[:, None, None] < 10.0)
    )
    return grid, dose, box


def _d_pct_analytic(pct: float) -> float:
    """Minimum dose to the hottest pct % of the box: the slab x > 20 - 0.4 pct mm."""
    return 20.0 + G_GY_PER_MM * (HALF_LENGTH_MM - 2 * HALF_LENGTH_MM * pct / 100.0)


def test_linear_gradient_mean_median_and_dose_at_volume(
    gradient_box: tuple[Grid, np.ndarray, np.ndarray],
) -> None:
    grid, dose, box = gradient_box
    h = grid.spacing_mm[0]
    dvh = compute_dvh(dose, box, grid)
    # The box's faces lie on voxel faces: 40 x 20 x 20 voxels of 1 mm^3, 16 cc exactly. The
    # gradient (1.25 % of the dose per voxel at most) is below the DVH's 2 % sub-sampling
    # threshold, so each voxel counts whole.
    assert dvh.total_volume_cc == pytest.approx(16.0, rel=1e-12)
    # Mean over a box symmetric about x = 0 of a linear dose: the midpoint value, 20 Gy. Centre
    # sampling integrates a linear function exactly; sub-points interpolated in log-dose would
    # sit below the line by at most (G h)^2 / (8 D_min) (AM-GM), 3e-4 Gy here.
    assert dvh.mean_gy == pytest.approx(20.0, abs=(G_GY_PER_MM * h) ** 2 / (8 * 16.0) + 1e-9)
    # Dose at volume: the DVH steps by one 1 mm slab (2.5 % of the volume) at a time, so any
    # D_pct is within the dose change across one voxel, G h = 0.2 Gy, of the continuous value.
    for pct in (2.0, 5.0, 50.0, 90.0, 95.0, 98.0):
        assert dvh.dose_at_volume_pct(pct) == pytest.approx(
            _d_pct_analytic(pct), abs=G_GY_PER_MM * h
        ), pct
    assert dvh.dose_at_volume_pct(50) == pytest.approx(20.0, abs=G_GY_PER_MM * h)  # median
    # Extremes: the voxel centres nearest the faces, half a voxel inside: 24 and 16 Gy less
    # half a voxel of gradient (0.1 Gy).
    assert dvh.max_gy == pytest.approx(24.0, abs=G_GY_PER_MM * h / 2 + 1e-9)
    assert dvh.min_gy == pytest.approx(16.0, abs=G_GY_PER_MM * h / 2 + 1e-9)
    assert dvh.max_gy < 24.0 and dvh.min_gy > 16.0
    # Near-point maximum D0.03cc and D1cc: the hottest 0.03 cc and 1 cc are slabs 0.075 mm and
    # 2.5 mm thick at the +x face; within one voxel of gradient. Dmax is the hottest sample
    # itself, the metrics' max, not D0.03cc.
    assert metric_value(dvh, "D0.03cc") == pytest.approx(24.0 - 0.2 * 0.075, abs=G_GY_PER_MM * h)
    assert metric_value(dvh, "D1cc") == pytest.approx(24.0 - 0.2 * 2.5, abs=G_GY_PER_MM * h)
    assert metric_value(dvh, "Dmax") == dvh.max_gy
    assert metric_value(dvh, "Dmax") >= metric_value(dvh, "D0.03cc")


def test_linear_gradient_volume_at_dose(gradient_box: tuple[Grid, np.ndarray, np.ndarray]) -> None:
    grid, dose, box = gradient_box
    h = grid.spacing_mm[0]
    dvh = compute_dvh(dose, box, grid)
    slab_pct = 100.0 * h / (2 * HALF_LENGTH_MM)  # one voxel slab: 2.5 % of the box
    for d in (16.5, 18.0, 20.0, 22.0, 23.5):
        x_d = (d - 20.0) / G_GY_PER_MM  # the isodose plane
        analytic_pct = 100.0 * (HALF_LENGTH_MM - x_d) / (2 * HALF_LENGTH_MM)
        # the DVH resolves the isodose plane to one voxel slab
        assert dvh.volume_at_dose_pct(d) == pytest.approx(analytic_pct, abs=slab_pct), d
        assert metric_value(dvh, f"V{d:g}Gy") == pytest.approx(
            16.0 * analytic_pct / 100.0, abs=16.0 * slab_pct / 100.0
        ), d
    assert dvh.volume_at_dose_pct(15.0) == pytest.approx(100.0, rel=1e-12)
    assert dvh.volume_at_dose_pct(24.5) == 0.0


# ---------------------------------------------------- exponential fall-off along a slab

MU_PER_MM = 0.05


def test_exponential_slab_mean_is_the_integral_average() -> None:
    # D = 20 Gy exp(-mu (x + 20 mm)) over x in [-20, 20] mm, the slab spanning the whole grid
    # in y and z (no edges, so the structure boundary is two planes on voxel faces).
    grid = Grid.centred((0.0, 0.0, 0.0), (60.0, 16.0, 16.0), 1.0)
    x = grid.axis_mm("x")
    dose = np.broadcast_to(20.0 * np.exp(-MU_PER_MM * (x[None, None, :] + 20.0)), grid.shape).copy()
    slab = np.broadcast_to((np.abs(x) < 20.0)[None, None, :], grid.shape).copy()
    dvh = compute_dvh(dose, slab, grid)
    length = 40.0
    mean = 20.0 * (1.0 - np.exp(-MU_PER_MM * length)) / (MU_PER_MM * length)
    # Sampling each 1 mm voxel at its centre is the midpoint rule; for an exponential it
    # underestimates each voxel's integral by 1 - u / sinh(u), u = mu h / 2 (1.0e-4 here).
    # Sub-points (log-dose interpolation, exact for an exponential) can only do better.
    u = MU_PER_MM * grid.spacing_mm[0] / 2
    assert dvh.mean_gy == pytest.approx(mean, rel=1 - u / np.sinh(u) + 1e-9)
    assert dvh.mean_gy <= mean * (1 + 1e-12)
    # D_pct: the hottest pct % is x < -20 + 0.4 pct mm, D = 20 exp(-mu 0.4 pct); the DVH
    # resolves it to one voxel, a relative dose change of at most mu h (5 %).
    for pct in (10.0, 50.0, 90.0):
        expected = 20.0 * np.exp(-MU_PER_MM * length * pct / 100.0)
        assert dvh.dose_at_volume_pct(pct) == pytest.approx(expected, rel=MU_PER_MM * 1.0), pct


# -------------------------------------------------------- r^-2 fall-off in a spherical shell

R_IN_MM, R_OUT_MM, D_IN_GY = 15.0, 25.0, 20.0


def _inverse_square(offset_mm: tuple[float, float, float]) -> tuple[Grid, np.ndarray, np.ndarray]:
    grid = Grid.centred((0.0, 0.0, 0.0), (64.0, 64.0, 64.0), 1.0)
    r = grid.distance_from_mm(offset_mm)
    dose = D_IN_GY * (R_IN_MM / np.maximum(r, R_IN_MM)) ** 2
    return grid, dose, r


@pytest.mark.parametrize("offset", [(0.3, -0.2, 0.1), (0.5, 0.5, 0.5), (0.0, 0.0, 0.0)])
def test_inverse_square_shell_mean(offset: tuple[float, float, float]) -> None:
    grid, dose, r = _inverse_square(offset)
    shell = (r > R_IN_MM) & (r <= R_OUT_MM)
    m = structure_metrics(compute_dvh(dose, shell, grid), "shell")
    # Mean of D_in (R_in / r)^2 over the shell: integral of D 4 pi r^2 dr over the volume,
    # 3 D_in R_in^2 (R_out - R_in) / (R_out^3 - R_in^3) = 10.61 Gy.
    mean = 3 * D_IN_GY * R_IN_MM**2 * (R_OUT_MM - R_IN_MM) / (R_OUT_MM**3 - R_IN_MM**3)
    # 1 %: the mean moves by 8.8 % per mm of the inner radius (d ln mean / d R_in), so 1 % is
    # the inner surface placed 0.11 mm off, a ninth of the voxel; counting voxel centres in a
    # curved shell misplaces it by less (measured over these lattice offsets: <= 0.51 %).
    assert m.mean_gy == pytest.approx(mean, rel=0.01)
    # Max and min: the hottest and coldest samples lie within half a voxel of the inner and
    # outer surfaces, over which r^-2 changes by 2 (h / 2) / r of itself: 6.7 % at 15 mm and
    # 4 % at 25 mm (measured: max within 0.5 %, min 2.5 % low).
    assert m.max_gy == pytest.approx(D_IN_GY, rel=1.0 / R_IN_MM)
    assert m.min_gy == pytest.approx(D_IN_GY * (R_IN_MM / R_OUT_MM) ** 2, rel=1.0 / R_OUT_MM)
    assert m.volume_cc == pytest.approx(4 / 3 * np.pi * (R_OUT_MM**3 - R_IN_MM**3) / 1000, rel=0.01)


def test_radial_profile_is_bracketed_by_the_shell_edges() -> None:
    offset = (0.3, -0.2, 0.1)
    grid, dose, r = _inverse_square(offset)
    tissue = r > R_IN_MM
    depths = np.array([1.0, 3.0, 5.0, 8.0, 50.0])
    profile = radial_profile_gy(_dose_grid(grid, dose), offset, R_IN_MM, depths, tissue)

    def at(depth_mm: np.ndarray) -> np.ndarray:
        return D_IN_GY * (R_IN_MM / (R_IN_MM + depth_mm)) ** 2

    h = grid.spacing_mm[0]
    inner = depths[:4]
    # The profile averages the voxels whose centre lies within h/2 of each depth; the dose
    # falls monotonically with depth, so the average is bracketed by the values h/2 either side
    # (a bound, not an approximation).
    assert np.all(profile[:4] <= at(inner - h / 2))
    assert np.all(profile[:4] >= at(inner + h / 2))
    # and close to the value at the depth itself: the relative change over the +/- h/2 window
    # is +/- h / r, and the r^2 weighting of the shell's voxels is symmetric to first order
    # (measured <= 0.6 %); 1 % is a sixth of the +/- 6 % window at 1 mm depth.
    np.testing.assert_allclose(profile[:4], at(inner), rtol=0.01)
    # 50 mm from the sphere's surface (r = 65 mm) is beyond the 64 mm cube's corners (55 mm):
    # no voxels there, NaN.
    assert np.isnan(profile[4])


# -------------------------------------------------------------- organ-at-risk constraints

# The SBRT single-fraction reference set (evaluation/data/sbrt_single_fraction_reference.csv):
# SAFRON II, Siva S et al. BMC Cancer 2016;16:183 Table 2 (skin, heart, lungs; 28 Gy in 1
# fraction) and AAPM TG-101, Benedict SH et al. Med Phys 2010;37:4078 Table III (rib, 1
# fraction). Their "max point" (<= 0.035 cc) is D0.03cc.
PUBLISHED_LIMITS = {
    ("skin", "D0.03cc"): 26.0,
    ("skin", "D10cc"): 23.0,
    ("heart", "D0.03cc"): 22.0,
    ("heart", "D15cc"): 16.0,
    ("lung", "V7.4Gy"): 1000.0,
    ("ribs", "D0.03cc"): 30.0,
    ("ribs", "D1cc"): 22.0,
}
# Uniform dose per structure: skin exactly at its D10cc limit (a limit reached is not
# exceeded), heart and ribs above theirs, lung far below its volume limit.
BLOCK_DOSE_GY = {"skin": 23.0, "heart": 25.0, "lung": 10.0, "ribs": 31.0}


@pytest.fixture(scope="module")
def blocks() -> tuple[Phantom, DoseGrid]:
    """Four dose blocks side by side along x; each structure sits 2 voxels inside its block."""
    grid = Grid.centred((0.0, 0.0, 0.0), (100.0, 60.0, 60.0), 2.0)
    nx = grid.shape[2]
    edges = np.linspace(0, nx, len(BLOCK_DOSE_GY) + 1).astype(int)
    dose = np.zeros(grid.shape)
    structures: dict[str, np.ndarray] = {}
    for (name, gy), lo, hi in zip(BLOCK_DOSE_GY.items(), edges[:-1], edges[1:], strict=True):
        dose[:, :, lo:hi] = gy
        mask = np.zeros(grid.shape, dtype=bool)
        # 2 voxels from the dose steps: neither the structure nor its neighbours see a
        # gradient, so every voxel keeps its block's dose exactly.
        mask[:, :, lo + 2 : hi - 2] = True
        structures[name] = mask
    structures["chest_wall"] = np.zeros(grid.shape, dtype=bool)  # empty: not evaluated
    cavity = np.zeros(grid.shape, dtype=bool)
    cavity[:, :, edges[1] + 2 : edges[1] + 4] = True
    structures["cavity"] = cavity  # holds the applicator: never evaluated
    phantom = _phantom(grid, structures)
    return phantom, _dose_grid(grid, dose)


def test_sbrt_reference_limits_within_and_exceeded(blocks: tuple[Phantom, DoseGrid]) -> None:
    phantom, dose = blocks
    reference = sbrt_reference_limits()
    dvhs, metrics, checks = evaluate(phantom, dose, technique="hdr", limits=reference)
    assert set(dvhs) == set(BLOCK_DOSE_GY)  # not the empty chest wall, not the cavity
    for name, gy in BLOCK_DOSE_GY.items():
        assert metrics[name].mean_gy == pytest.approx(gy, rel=1e-12)
        assert metrics[name].max_gy == metrics[name].min_gy == gy
    by_key = {(c.structure, c.metric): c for c in checks}
    assert set(by_key) == set(PUBLISHED_LIMITS)  # only rows whose structure is present
    for key, limit in PUBLISHED_LIMITS.items():
        check = by_key[key]
        assert check.limit_value == limit, key
        assert check.dose_definition == "water" and check.limit_set == reference.label
        structure, metric = key
        # A uniform dose gives every dose metric that dose, and V<d>Gy the whole volume
        # when d is below it.
        if metric.startswith("V"):
            expected = phantom.volume_cc(structure)
        else:
            expected = BLOCK_DOSE_GY[structure]
        assert check.value == pytest.approx(expected, rel=1e-12), key
        assert check.passed is (expected <= limit), key
    assert by_key[("skin", "D10cc")].passed  # equal to the limit: within it
    assert by_key[("ribs", "D0.03cc")].verification == "recalled"
    failed = {(c.structure, c.metric) for c in checks if not c.passed}
    assert failed == {
        ("heart", "D0.03cc"),
        ("heart", "D15cc"),
        ("ribs", "D0.03cc"),
        ("ribs", "D1cc"),
    }
    lines = exceeded_limits(checks)
    assert len(lines) == 4
    assert any(line.startswith("heart D0.03cc = 25.00 Gy exceeds 22 Gy (water") for line in lines)
    assert not any(line.startswith(("skin", "lung")) for line in lines)


def test_check_constraints_directly_and_unknown_metric(blocks: tuple[Phantom, DoseGrid]) -> None:
    phantom, dose = blocks
    lung = compute_dvh(dose.dose_gy, phantom.structures["lung"], dose.grid)
    (check,) = check_constraints(
        {"lung": lung}, technique="electron", limits=sbrt_reference_limits()
    )
    assert (check.structure, check.metric, check.limit_unit) == ("lung", "V7.4Gy", "cc")
    assert check.value == pytest.approx(phantom.volume_cc("lung"), rel=1e-12) and check.passed
    assert metric_value(lung, "V10Gy") == pytest.approx(phantom.volume_cc("lung"), rel=1e-12)
    assert metric_value(lung, "V10.01Gy") == 0.0
    for wrong in ("D95", "V7.4Gy_cc", "DMax", "D0cc"):
        with pytest.raises(ValueError, match=f"unknown metric '{wrong}'"):
            metric_value(lung, wrong)
    with pytest.raises(ValueError, match="needs the prescription"):
        metric_value(lung, "V150%Rx")
