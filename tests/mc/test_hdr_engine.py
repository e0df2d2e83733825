"""The Ir-192 Monte Carlo (issue 19): line source, analytic primary, energy balance, kerma,
voxel phantoms, determinism and Dask. Reduced statistics: each test runs in a few seconds."""

from __future__ import annotations

import itertools

import distributed  # noqa: F401  (a dependency: missing fails, never skips)
import numpy as np
import pytest

from openiort.anatomy.materials import get_material
from openiort.anatomy.phantom import Phantom
from openiort.dose.mc.hdr_engine import (
    build_hdr_voxel_problem,
    hdr_shell_dose,
    ir192_source_arrays,
    line_source_arrays,
    radial_dose_function,
    shell_inverse_square_mm2,
)
from openiort.dose.mc.hdr_physics import hdr_coefficients
from openiort.dose.mc.ir192_spectrum import LineSpectrum, ir192_spectrum
from openiort.dose.mc.kernel_common import DEPOSITED, EMITTED, ESCAPED, energy_at
from openiort.dose.mc.physics import resolve_material
from openiort.dose.mc.scoring import KERMA_TALLY_TO_GY_MM3
from openiort.dose.mc.sphere import GeometryError
from openiort.dose.mc.voxel import run_problem
from openiort.grid import Grid


def _primary_kerma_gy(material: str, r_mm: np.ndarray) -> np.ndarray:
    """Analytic primary collision kerma of the bare Ir-192 point source, Gy per photon."""
    lines = ir192_spectrum()
    c = hdr_coefficients(resolve_material(material), lines.energy_kev)
    mu_mm = c.total * get_material(material).density_g_cm3 / 10.0
    fluence = np.exp(-np.outer(r_mm, mu_mm)) / (4 * np.pi * r_mm[:, None] ** 2)  # per mm2
    per_line = lines.energy_kev * c.muen * lines.probabilities
    return np.asarray(fluence @ per_line * KERMA_TALLY_TO_GY_MM3)


def _shell_primary_gy(material: str, edges: np.ndarray) -> np.ndarray:
    out = []
    for lo, hi in itertools.pairwise(edges):
        r = np.linspace(lo, hi, 201)
        k = _primary_kerma_gy(material, r) * 4 * np.pi * r**2
        out.append(np.trapezoid(k, r) / (4.0 / 3.0 * np.pi * (hi**3 - lo**3)))
    return np.asarray(out)


def test_line_source_samples_only_the_lines_with_their_intensities():
    lines = ir192_spectrum()
    src = ir192_source_arrays()
    y = (np.arange(200_000) + 0.5) / 200_000
    e = np.array([energy_at(src, float(v)) for v in y])
    assert set(np.round(np.unique(e), 6)) <= set(np.round(lines.energy_kev, 6))
    counts = np.array([np.count_nonzero(e == x) for x in lines.energy_kev]) / e.size
    np.testing.assert_allclose(counts, lines.probabilities, atol=2e-5)  # quantile grid step
    with pytest.raises(GeometryError):
        line_source_arrays(LineSpectrum(np.array([300.0, 300.0]), np.ones(2), ("g", "g")))


def test_primary_kerma_matches_analytic_attenuation():
    # scatter=False ends each photon at its first interaction: the track-length kerma must
    # equal the analytic sum over lines of E mu_en exp(-mu r) / (4 pi r^2). Tolerance: 4 standard
    # uncertainties plus 0.2 % for the kernels' linear energy grid. Measured 200 000 histories:
    # -0.1 to -0.5 % out to 10 cm, each within 1.1 sigma.
    edges = np.arange(5.0, 101.0, 5.0)
    res = hdr_shell_dose([(150.0, "water")], edges, 200_000, seed=1, scatter=False, workers=1)
    ref = _shell_primary_gy("water", edges)
    dev = np.abs(res.dose_gy_per_photon / ref - 1.0)
    assert np.all(dev < 4 * res.rel_unc + 0.002)


def test_energy_balance_and_kerma_equals_deposit():
    # Analog scoring: every emitted keV is deposited or escapes (1e-12). Collision kerma by
    # track length and energy deposited at interactions agree where both are scored
    # (beyond 5 mm: charged-particle equilibrium is not an issue without electron transport).
    edges = np.array([5.0, 10.0, 20.0, 30.0, 50.0, 80.0])
    analog = hdr_shell_dose([(100.0, "water")], edges, 60_000, seed=3, analog=True, workers=1)
    emitted, deposited, escaped = (analog.balance_kev[k] for k in (EMITTED, DEPOSITED, ESCAPED))
    assert deposited + escaped == pytest.approx(emitted, rel=1e-12)
    # the escaping share in a 10 cm water sphere: a third to two thirds of the energy
    assert 0.3 < escaped / emitted < 0.7
    kerma = hdr_shell_dose([(100.0, "water")], edges, 60_000, seed=3, workers=1)
    sigma = np.hypot(analog.rel_unc, kerma.rel_unc)
    dev = np.abs(kerma.dose_gy_per_photon / analog.dose_gy_per_photon - 1.0)
    assert np.all(dev < 4 * sigma + 0.003)  # mu_en vs mu_tr (radiative yield) 0.1-0.3 %


def test_same_seed_same_answer_whatever_the_workers():
    edges = np.array([10.0, 20.0, 40.0])
    a = hdr_shell_dose([(100.0, "water")], edges, 20_000, seed=5, n_batches=4, workers=1)
    b = hdr_shell_dose([(100.0, "water")], edges, 20_000, seed=5, n_batches=4, workers=2)
    c = hdr_shell_dose([(100.0, "water")], edges, 20_000, seed=6, n_batches=4, workers=2)
    np.testing.assert_array_equal(a.dose_gy_per_photon, b.dose_gy_per_photon)
    np.testing.assert_array_equal(a.rel_unc, b.rel_unc)
    assert not np.array_equal(a.dose_gy_per_photon, c.dose_gy_per_photon)


def test_radial_dose_function_geometry():
    edges = np.array([9.0, 11.0, 29.0, 31.0])
    g_inv = shell_inverse_square_mm2(edges)
    # a 2 mm shell at 10 mm: <1/r^2> = 1/r^2 (1 - (dr/r)^2/12 + ...), 0.33 % below
    assert g_inv[0] == pytest.approx(1.0 / 100.0 * (1 - 0.04 / 12), rel=1e-4)
    res = hdr_shell_dose([(100.0, "water")], edges, 20_000, seed=2, workers=1)
    r, g = radial_dose_function(res)
    assert r[0] == pytest.approx(10.0) and g[0] == pytest.approx(1.0)
    with pytest.raises(GeometryError):
        radial_dose_function(res, r0_mm=5.0)
    with pytest.raises(GeometryError):
        hdr_shell_dose([(50.0, "water")], np.array([10.0, 60.0]), 100, seed=1)


def _slab_phantom(spacing_mm: float = 2.0, size_mm: float = 80.0, bone: bool = True) -> Phantom:
    grid = Grid.centred((0.0, 0.0, 0.0), (size_mm, size_mm, size_mm), spacing_mm)
    _, _, x = grid.axes_mm()
    materials = ("water", "cortical_bone")
    ids = np.zeros(grid.shape, dtype=np.uint8)
    if bone:
        ids[:, :, (x > 20.0) & (x < 30.0)] = 1  # a 1 cm bone slab 2-3 cm from the source
    rho = np.array([get_material(m).density_g_cm3 for m in materials], dtype=np.float32)[ids]
    return Phantom(
        grid=grid, material_ids=ids, density_g_cm3=rho, materials=materials, structures={}
    )


def test_voxel_primary_kerma_matches_analytic():
    ph = _slab_phantom(bone=False)
    problem = build_hdr_voxel_problem(ph, (0.0, 0.0, 0.0), scatter=False)
    res = run_problem(problem, ph.grid.shape, 8.0, 60_000, seed=4, n_batches=6, workers=1)
    r = ph.grid.distance_from_mm((0.0, 0.0, 0.0))
    ring = (r > 15.0) & (r < 25.0)
    ratio = res.dose_medium_gy_per_photon[ring] / _primary_kerma_gy("water", r[ring])
    # the mean over ~2700 voxels: statistics about 0.3 %, the voxel average of 1/r^2 against
    # its centre value + 0.1 %; 1.5 % asked
    assert float(np.mean(ratio)) == pytest.approx(1.0, abs=0.015)
    # in water, dose to medium and dose to water are the same tally
    np.testing.assert_allclose(res.dose_medium_gy_per_photon, res.dose_water_gy_per_photon)


def _bone_to_water_ratio(scatter: bool, seed: int) -> float:
    ph = _slab_phantom()
    problem = build_hdr_voxel_problem(ph, (0.0, 0.0, 0.0), scatter=scatter)
    res = run_problem(problem, ph.grid.shape, 8.0, 60_000, seed=seed, n_batches=6, workers=1)
    bone = ph.material_ids == 1
    near = bone & (ph.grid.distance_from_mm((0.0, 0.0, 0.0)) < 35.0)
    water = ph.material_ids == 0
    np.testing.assert_allclose(
        res.dose_medium_gy_per_photon[water], res.dose_water_gy_per_photon[water], rtol=1e-6
    )
    return float(
        res.dose_medium_gy_per_photon[near].sum() / res.dose_water_gy_per_photon[near].sum()
    )


def test_voxel_bone_dose_to_medium_versus_water():
    # D_m,m / D_w,m in a bone slab is the fluence-weighted ratio of (mu_en/rho)_bone to
    # (mu_en/rho)_water (both tallies see the same photons). Primary photons only: the ratio
    # over the lines weighted by their energy fluence after 2.5 cm (water, then bone; the
    # 61-78 keV K x-rays, where bone absorbs more, are filtered out faster): 0.960, against
    # 0.967 at the source; the Monte Carlo matches it to 0.5 % (measured 0.960).
    # With scatter the photons scattered below 100 keV, where bone's photoelectric absorption
    # makes its mu_en/rho up to 3-4 times water's, raise it above 1: measured 1.022 (60 000
    # histories) in the 1 cm slab at 2-3 cm; asserted between 0.98 and 1.08.
    lines = ir192_spectrum()
    spec_b, spec_w = resolve_material("cortical_bone"), resolve_material("water")
    cb, cw = (hdr_coefficients(s, lines.energy_kev) for s in (spec_b, spec_w))
    rho_b = spec_b.density_g_cm3
    w = lines.probabilities * lines.energy_kev
    at_source = float(np.dot(w, cb.muen) / np.dot(w, cw.muen))
    assert at_source == pytest.approx(0.967, abs=0.003)
    w_slab = w * np.exp(-2.0 * cw.total - 0.5 * rho_b * cb.total)  # 2 cm water, 0.5 cm bone
    in_slab = float(np.dot(w_slab, cb.muen) / np.dot(w_slab, cw.muen))
    assert _bone_to_water_ratio(False, 8) == pytest.approx(in_slab, rel=0.005)
    assert 0.98 < _bone_to_water_ratio(True, 8) < 1.08


def test_voxel_source_outside_is_refused():
    ph = _slab_phantom(bone=False, size_mm=20.0)
    with pytest.raises(GeometryError):
        build_hdr_voxel_problem(ph, (0.0, 0.0, 50.0))


def test_dask_and_local_runs_are_identical():
    edges = np.array([10.0, 20.0, 40.0])
    local = hdr_shell_dose([(80.0, "water")], edges, 8_000, seed=9, n_batches=4, workers=2)
    dask = hdr_shell_dose(
        [(80.0, "water")], edges, 8_000, seed=9, n_batches=4, use_dask=True, workers=2
    )
    np.testing.assert_array_equal(local.dose_gy_per_photon, dask.dose_gy_per_photon)
    np.testing.assert_array_equal(local.rel_unc, dask.rel_unc)
