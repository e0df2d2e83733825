"""Point sources in spheres: analytic primary dose, energy conservation, published buildup."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from openiort.dose.mc import radial_dose
from openiort.dose.mc.constants import KEV_TO_JOULE
from openiort.dose.mc.physics import (
    PhysicsOptions,
    mass_attenuation_cm2_g,
    mass_energy_absorption_cm2_g,
)
from openiort.dose.mc.references import ans643_water_exposure_gp
from openiort.dose.mc.runner import RunSettingsError
from openiort.dose.mc.sources import PointSource, SourceError
from openiort.dose.mc.sphere import GeometryError, shell_dose


def _shell_average(func, edges_mm, points=401):
    """Volume average over spherical shells of func(r) / (4 pi r^2) (per mm^3)."""
    out = []
    for r1, r2 in itertools.pairwise(edges_mm):
        r = np.linspace(r1, r2, points)
        out.append(np.trapezoid(func(r), r) / (4.0 / 3.0 * np.pi * (r2**3 - r1**3)))
    return np.array(out)


GY_PER_KEV_CM2_G_PER_MM2 = KEV_TO_JOULE * 0.1 * 1e6  # keV x cm^2/g x mm^-2 -> Gy


@pytest.mark.parametrize(
    ("energy_kev", "material"), [(20.0, "water"), (30.0, "adipose"), (50.0, "cortical_bone")]
)
def test_no_scatter_limit_equals_analytic_primary_dose(energy_kev, material):
    edges = np.array([5.0, 10.0, 20.0, 30.0, 40.0])
    opts = PhysicsOptions(scatter=False)
    dose, unc = radial_dose(energy_kev, material, edges, 500_000, seed=1, options=opts)
    from openiort.anatomy.materials import get_material

    mu_mm = (
        float(mass_attenuation_cm2_g(material, energy_kev))
        * get_material(material).density_g_cm3
        / 10
    )
    muen = float(mass_energy_absorption_cm2_g(material, energy_kev))
    analytic = (
        _shell_average(lambda r: np.exp(-mu_mm * r), edges)
        * energy_kev
        * muen
        * GY_PER_KEV_CM2_G_PER_MM2
    )
    # 1 %: with scatter off the shell-averaged analytic dose is exact for the same coefficients,
    # so only statistics remain: about 0.1-0.5 % per shell (asserted below 0.6 %, the batch
    # estimate of it being itself uncertain by about 25 % with 10 batches); 1 % is two
    # standard uncertainties of the noisiest shell, with a fixed seed.
    assert np.all(unc < 0.006)
    np.testing.assert_allclose(dose, analytic, rtol=0.01)


def test_energy_is_conserved_with_analog_scoring():
    spectrum = (np.array([10.0, 20.0, 30.0, 40.0, 50.0]), np.array([0.1, 0.4, 0.3, 0.2]))
    source = PointSource(
        tuple(spectrum[0]),
        tuple(spectrum[1]),
        "test",
        shadow_axis=(0, 0, 1),
        shadow_half_angle_deg=30,
    )
    edges = np.linspace(0.0, 40.0, 21)
    result = shell_dose(
        source,
        [(15.0, "applicator_pei"), (40.0, "cortical_bone")],
        edges,
        50_000,
        seed=3,
        analog=True,
    )
    emitted, deposited, escaped, blocked = result.balance_kev
    assert blocked > 0 and escaped > 0 and deposited > 0
    # exact up to floating-point rounding of ~1e5 additions (relative 1e-12)
    assert deposited + escaped + blocked == pytest.approx(emitted, rel=1e-12)
    assert result.deposited_kev_per_photon.sum() * result.histories == pytest.approx(
        deposited, rel=1e-12
    )
    # blocked share = solid angle of the 30 degree cone, (1 - cos 30)/2 = 6.70 %, within 4 sigma
    assert blocked / emitted == pytest.approx(
        0.0670, abs=4 * np.sqrt(0.067 * 0.933 / 50_000) + 0.002
    )


def _ans643_comparison(energy_kev, histories, seed, options):
    radii = np.array([5.0, 10.0, 20.0, 30.0, 40.0])
    edges = np.sort(np.concatenate([radii - 0.25, radii + 0.25]))
    gp = ans643_water_exposure_gp()[energy_kev]
    dose, unc = radial_dose(
        energy_kev, "water", edges, histories, seed=seed, options=options, response="air"
    )
    mu_mm = gp.mu_no_coherent_cm2_g / 10.0
    muen_air = float(mass_energy_absorption_cm2_g("air", energy_kev))
    ref = _shell_average(lambda r: np.exp(-mu_mm * r) * gp.buildup(mu_mm * r), edges)
    ref *= energy_kev * muen_air * GY_PER_KEV_CM2_G_PER_MM2
    return dose[::2], unc[::2], ref[::2]


@pytest.mark.parametrize(
    ("energy_kev", "histories"), [(20.0, 2_000_000), (30.0, 1_000_000), (50.0, 1_000_000)]
)
def test_point_source_in_water_matches_ans643_buildup(energy_kev, histories):
    """Radial dose at 20, 30, 50 keV against ANSI/ANS-6.4.3 point-source buildup factors.

    The reference (data/ans643_water_point_source_buildup.csv) neglects coherent scattering and
    electron binding, so the Monte Carlo runs with the same physics (the full-physics result is
    compared in the validate test below). Both are air-kerma responses (exposure buildup).
    """
    opts = PhysicsOptions(coherent=False, binding=False)
    dose, unc, ref = _ans643_comparison(energy_kev, histories, 8, opts)
    assert np.all(unc < 0.005)
    # 3 %: the uncertainty of the reference itself, the GP fit to the moments-method buildup
    # tables (Harima 1986: typically 1-3 %), plus statistics (< 0.5 %, asserted above).
    # Observed at 4e6 histories: +0.6 to -2.7 % (20 keV, the largest deviation at 40 mm = 3 mean
    # free paths), -0.2 to -2.0 % (30 keV), +0.7 to -0.9 % (50 keV).
    np.testing.assert_allclose(dose, ref, rtol=0.03)


@pytest.mark.validate
@pytest.mark.parametrize("energy_kev", [20.0, 30.0, 50.0])
def test_point_source_in_water_ans643_high_statistics(energy_kev):
    matched = PhysicsOptions(coherent=False, binding=False)
    dose, unc, ref = _ans643_comparison(energy_kev, 20_000_000, 21, matched)
    assert np.all(unc < 0.0015)
    np.testing.assert_allclose(dose, ref, rtol=0.03)
    # Full physics (coherent scattering, bound-electron Compton) against the same reference:
    # coherent scattering, which the reference ignores, lowers the dose at 3 mean free paths by
    # about 2 % at 20 keV; 5 % covers it.
    dose_full, _, _ = _ans643_comparison(energy_kev, 20_000_000, 22, PhysicsOptions())
    np.testing.assert_allclose(dose_full, ref, rtol=0.05)


def test_same_seed_same_answer_whatever_the_workers():
    edges = np.array([2.0, 5.0, 10.0, 20.0])
    a = radial_dose(25.0, "gland", edges, 40_000, seed=5, workers=1)
    b = radial_dose(25.0, "gland", edges, 40_000, seed=5, workers=2)
    c = radial_dose(25.0, "gland", edges, 40_000, seed=6, workers=2)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_spectrum_argument_and_bad_inputs():
    edges = [5.0, 10.0]
    dose, unc = radial_dose(([20.0, 30.0, 40.0], [0.5, 0.5]), "breast_50_50", edges, 20_000, seed=1)
    assert dose.shape == (1,) and dose[0] > 0 and 0 < unc[0] < 0.05
    with pytest.raises(GeometryError):
        radial_dose(30.0, "water", [10.0, 5.0], 1000, seed=1)
    with pytest.raises(GeometryError):
        radial_dose(30.0, "water", [10.0, 200.0], 1000, seed=1)
    with pytest.raises(SourceError):
        radial_dose(300.0, "water", [5.0, 10.0], 1000, seed=1)
    with pytest.raises(SourceError):
        radial_dose(([20.0, 30.0], [0.5, 0.5]), "water", [5.0, 10.0], 1000, seed=1)
    with pytest.raises(RunSettingsError):
        radial_dose(30.0, "water", [5.0, 10.0], 1000, seed=-1)
    with pytest.raises(RunSettingsError):
        radial_dose(30.0, "water", [5.0, 10.0], 5, seed=1)
