"""Interaction tables of the Ir-192 Monte Carlo (issue 19): partials against NIST, mu_en, grids."""

from __future__ import annotations

import numpy as np
import pytest

from openiort.dose.mc.hdr_physics import (
    CUTOFF_KEV,
    KERNEL_STEP_KEV,
    build_hdr_tables,
    element_partials,
    hdr_coefficients,
    incoherent_function,
    kernel_grid_kev,
    log_grid_kev,
)
from openiort.dose.mc.photon_data import element_tables, material_coefficients, nist_tissue_tables
from openiort.dose.mc.physics import MaterialDataError, MaterialSpec, resolve_material

TISSUES = ("water", "adipose", "gland", "muscle", "cortical_bone", "lung", "air")


def _rel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray(a / b - 1.0)


@pytest.mark.parametrize("material", TISSUES)
def test_partials_sum_to_nist_totals(material):
    # photoelectric + incoherent + coherent against NIST SRD 126 Table 4 mu/rho at NIST's 19
    # energies, 10 keV-1.5 MeV. Issue brief: 1-2 %; asserted 0.5 %. Measured: within 0.04 % to
    # 1 MeV, then -0.07 to -0.10 % at 1.25 MeV and -0.22 to -0.34 % at 1.5 MeV (pair
    # production, left out, and the KN x S continuation above 800 keV).
    ref = nist_tissue_tables()[material]
    c = hdr_coefficients(resolve_material(material), ref.energy_kev)
    dev = _rel(c.total, ref.mu_over_rho_cm2_g)
    assert np.max(np.abs(dev)) < 0.005
    assert np.max(np.abs(dev[ref.energy_kev <= 1000.0])) < 0.001


def test_partials_sum_to_nist_totals_per_element():
    # The same per element H..Ca (NIST Table 3): measured at most 0.62 % (calcium at 1.5 MeV);
    # 0.75 % asserted.
    worst = 0.0
    for symbol, table in element_tables().items():
        if symbol == "I":  # the contrast's iodine: its own test below
            continue
        spec = MaterialSpec(symbol, ((symbol, 1.0),), 1.0)
        c = hdr_coefficients(spec, table.energy_kev)
        worst = max(worst, float(np.max(np.abs(_rel(c.total, table.mu_over_rho_cm2_g)))))
    assert worst < 0.0075


def test_iodine_partials_sum_to_nist_totals():
    # Balloon contrast. Off the K edge (33.1694 keV, a discontinuity in both): measured within
    # 0.04 % to 800 keV (0.1 % asserted), -0.31 % at 1 MeV, -1.0 % at 1.25 and -2.7 % at
    # 1.5 MeV, where the KN x S continuation and pair
    # production (left out) matters more at Z = 53 (3 % asserted; Ir-192 emits under 0.1 % of
    # its photons above 1 MeV).
    table = element_tables()["I"]
    e = table.energy_kev
    off_edge = np.abs(e / 33.1694 - 1.0) > 1e-3
    spec = MaterialSpec("I", (("I", 1.0),), 4.93)
    dev = _rel(hdr_coefficients(spec, e[off_edge]).total, table.mu_over_rho_cm2_g[off_edge])
    assert np.max(np.abs(dev[e[off_edge] <= 800.0])) < 0.001
    assert np.max(np.abs(dev)) < 0.03


def test_incoherent_sampling_model_over_the_whole_range():
    # The angular model the kernel samples (KN x S, S = Z [1 - (F/Z)^p]) integrated over angle
    # against the bound-electron incoherent cross section it is used with (xraydb/Elam, Hubbell's
    # S(x, Z) tables). Measured over H..Ca: -2.8 to +2.4 % from 10 to 100 keV (carbon and oxygen
    # at 10-20 keV, the limit of the one-parameter S model), -0.9 to 0.0 % from 100 to 800 keV.
    # Above 800 keV the model is the cross section (scaled to join at 800 keV by 1.0036-1.0043).
    for symbol in element_tables():
        p = element_partials(symbol)
        low = (p.energy_kev >= 10.0) & (p.energy_kev < 100.0)
        mid = (p.energy_kev >= 100.0) & (p.energy_kev <= 800.0)
        high = p.energy_kev > 800.0
        # Iodine (balloon contrast, a few % of the fill by mass): 3.5 % at 10 keV, 4 % asserted.
        low_limit = 0.04 if symbol == "I" else 0.03
        assert np.max(np.abs(_rel(p.incoh_model[low], p.incoh[low]))) < low_limit, symbol
        assert np.max(np.abs(_rel(p.incoh_model[mid], p.incoh[mid]))) < 0.01, symbol
        scale = p.incoh[high] / p.incoh_model[high]
        # The join: 1.0036-1.0043 for H..Ca, 0.99977 for iodine.
        assert np.allclose(scale, scale[0]) and 0.999 <= scale[0] < 1.005, symbol


@pytest.mark.parametrize("material", TISSUES)
def test_muen_is_nist_above_10kev_and_continuous_below(material):
    ref = nist_tissue_tables()[material]
    spec = resolve_material(material)
    c = hdr_coefficients(spec, ref.energy_kev)
    # NIST mixture rule (photon_data), itself within 0.16 % of NIST Table 4
    np.testing.assert_allclose(c.muen, ref.muen_over_rho_cm2_g, rtol=0.002)
    # below 10 keV the kV engine's mu_en (xraydb partials, same fluorescence-escape definition):
    # it meets NIST at 10 keV within 0.5 % (measured 0.45 % at most, cortical bone)
    just_below = hdr_coefficients(spec, np.array([9.999]))
    assert float(just_below.muen[0]) == pytest.approx(float(c.muen[0]), rel=0.006)


def test_incoherent_function_limits():
    x = np.array([0.0, 0.5, 5.0, 50.0])
    for symbol, z in (("H", 1), ("O", 8), ("Ca", 20)):
        s = incoherent_function(symbol, x)
        assert s[0] == pytest.approx(0.0, abs=1e-3 * z)  # no incoherent scatter at x = 0
        assert np.all(np.diff(s) >= -1e-9)  # grows with momentum transfer
        assert s[-1] == pytest.approx(z)  # free electrons at large x


def test_incoherent_tends_to_free_electron_klein_nishina_at_high_energy():
    # At 1.25 MeV, binding changes the water incoherent cross section by < 0.1 % (Hubbell 1975,
    # XCOM): KN x S must equal Z x KN per atom to that level.
    from openiort.dose.mc.constants import AVOGADRO_PER_MOL
    from openiort.dose.mc.physics import klein_nishina_total_cm2

    p = element_partials("O")
    i = int(np.argmin(np.abs(p.energy_kev - 1250.0)))
    free = float(klein_nishina_total_cm2(np.array([p.energy_kev[i]]))[0]) * 8 * AVOGADRO_PER_MOL
    free /= 15.999
    assert p.incoh_model[i] == pytest.approx(free, rel=0.002)


def test_kernel_grid_reproduces_the_log_tables():
    # The kernels interpolate linearly on a 0.25 keV grid: within 0.1 % of the log-log tables
    # above 10 keV, 0.5 % from 5 keV (measured 0.33 % at 5 keV, water mu/rho).
    tables = build_hdr_tables([resolve_material("water")])
    e = kernel_grid_kev()
    assert e[1] - e[0] == pytest.approx(KERNEL_STEP_KEV)
    for low, high, tol in ((10.0, 1499.0, 0.001), (5.0, 10.0, 0.005)):
        probe = np.geomspace(low, high, 300)
        exact = hdr_coefficients(resolve_material("water"), probe)
        lin = np.interp(probe, e, tables.arrays.mu_rho[0])
        assert np.max(np.abs(_rel(lin, exact.total))) < tol
        lin_muen = np.interp(probe, e, tables.arrays.muen_rho[0])
        assert np.max(np.abs(_rel(lin_muen, exact.muen))) < tol
    a = tables.arrays
    assert a.cutoff_kev == CUTOFF_KEV
    assert np.all(a.cum_photo <= a.cum_incoh) and np.all(a.cum_incoh <= 1.0)
    assert a.fl_count.sum() == 0  # no fluorescence for H..Ca (K lines < 4.1 keV)
    assert log_grid_kev()[0] == pytest.approx(1.0) and log_grid_kev()[-1] == pytest.approx(1500.0)


def test_interaction_shares_at_ir192_energies():
    # Above 100 keV incoherent scattering is nearly every interaction in water (NIST XCOM:
    # photoelectric 0.3 % at 300 keV); coherent 1-2 % at 300 keV.
    c = hdr_coefficients(resolve_material("water"), np.array([300.0]))
    assert c.incoh[0] / c.total[0] > 0.97
    assert c.photo[0] / c.total[0] < 0.005
    assert 0.003 < c.coh[0] / c.total[0] < 0.03


def test_bad_energies_and_elements_are_refused():
    water = resolve_material("water")
    for bad in (0.5, 1600.0, float("nan")):
        with pytest.raises(MaterialDataError):
            hdr_coefficients(water, np.array([bad]))
    lead = MaterialSpec("lead", (("Pb", 1.0),), 11.35)
    with pytest.raises(MaterialDataError, match="Pb"):
        hdr_coefficients(lead, np.array([300.0]))
    with pytest.raises(MaterialDataError):
        build_hdr_tables([])


def test_mixture_rule_consistent_with_photon_data_totals():
    # photon_data's NIST mixture (the source of mu_en) and the partials describe the same
    # material: their mu/rho agree to the same 1.5 % at the Ir-192 mean energy.
    for material in ("breast_g20", "skin", "applicator_pei"):
        spec = resolve_material(material)
        e = np.array([355.0])
        nist = material_coefficients(material, e).mu_over_rho_cm2_g
        assert float(hdr_coefficients(spec, e).total[0]) == pytest.approx(float(nist[0]), rel=0.006)
