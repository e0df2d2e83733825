"""Photon data to 1.5 MeV (issue 19): NIST element tables, mixture rule, xraydb, Ir-192 lines."""

from __future__ import annotations

import numpy as np
import pytest
import xraydb

from openiort.anatomy.materials import ELEMENTS, get_material
from openiort.dose.mc import physics as ph
from openiort.dose.mc.constants import AVOGADRO_PER_MOL, HC_KEV_ANGSTROM
from openiort.dose.mc.ir192_spectrum import ir192_spectrum
from openiort.dose.mc.photon_data import (
    PhotonDataError,
    element_tables,
    material_coefficients,
    mixture_coefficients,
    nist_tissue_tables,
)
from openiort.dose.mc.references import nist_coefficients

TISSUES = ("water", "adipose", "gland", "muscle", "cortical_bone", "lung", "air")


def _max_rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a / b - 1.0)))


@pytest.mark.parametrize("material", TISSUES)
def test_mixture_rule_matches_nist_compound_tables(material):
    # NIST SRD 126 Table 4 (ICRU-44 tissues) against the mixture rule over Table 3 elements,
    # at NIST's 19 energies from 10 keV to 1.5 MeV. 1 % asked by issue 19; measured at most
    # 0.06 % for mu/rho and 0.16 % for mu_en/rho (bone at 60 keV).
    ref = nist_tissue_tables()[material]
    assert ref.energy_kev[0] == 10.0 and ref.energy_kev[-1] == 1500.0
    assert ref.energy_kev.size == 19
    got = material_coefficients(material, ref.energy_kev)
    assert _max_rel(got.mu_over_rho_cm2_g, ref.mu_over_rho_cm2_g) < 0.01
    assert _max_rel(got.muen_over_rho_cm2_g, ref.muen_over_rho_cm2_g) < 0.01


def test_loglog_interpolation_between_nist_energies():
    # Water at 1.125 MeV, midway (in log) between NIST's 1.0 and 1.25 MeV rows: log-log
    # interpolation of the element rows must agree with log-log interpolation of Table 4.
    ref = nist_tissue_tables()["water"]
    e = float(np.sqrt(1000.0 * 1250.0))
    expected = np.exp(np.interp(np.log(e), np.log(ref.energy_kev), np.log(ref.mu_over_rho_cm2_g)))
    got = float(material_coefficients("water", e).mu_over_rho_cm2_g[0])
    assert got == pytest.approx(expected, rel=0.002)


def test_transcription_agrees_with_independent_copy_10_60kev():
    # The 10-60 keV rows were copied from another transcription of the same NIST pages
    # (nist_srd126_mu_muen_10_60kev.csv, via CTSim); both must agree to the printed 4 digits.
    tables = nist_tissue_tables()
    checked = 0
    for ref in nist_coefficients():
        if ref.material not in tables:
            continue
        t = tables[ref.material]
        i = int(np.flatnonzero(t.energy_kev == ref.energy_kev)[0])
        assert t.mu_over_rho_cm2_g[i] == pytest.approx(ref.mu_over_rho_cm2_g, rel=1e-3)
        assert t.muen_over_rho_cm2_g[i] == pytest.approx(ref.muen_over_rho_cm2_g, rel=1e-3)
        checked += 1
    assert checked >= 30


def _edge_rows(energy_kev: np.ndarray) -> np.ndarray:
    """Both rows of each absorption edge (two energies within 1e-6 of each other)."""
    close = np.diff(energy_kev) < 1e-6 * energy_kev[1:]
    return np.concatenate([close, [False]]) | np.concatenate([[False], close])


def test_xraydb_and_nist_tables_agree_where_both_are_valid():
    # 10-60 keV: xraydb's Elam totals per element (what the kV engine transports) against NIST
    # Table 3, and the kV engine's material mu/rho and mu_en/rho against the new mixture rule.
    # 2 % tolerance (the kV engine's own check against NIST); measured at most 0.06 % (elements,
    # mu/rho), 0.05 % (materials, mu/rho) and 0.45 % (mu_en/rho, cortical bone at 10 keV).
    for symbol, table in element_tables().items():
        # Iodine's K-edge rows (33.1694 keV) are the two sides of a discontinuity: left out.
        sel = (table.energy_kev <= 60.0) & ~_edge_rows(table.energy_kev)
        elam = np.asarray(xraydb.mu_elam(symbol, table.energy_kev[sel] * 1000.0))
        assert _max_rel(elam, table.mu_over_rho_cm2_g[sel]) < 0.02, symbol
    energies = np.array([10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0])
    for material in (*TISSUES, "skin", "breast_g20"):
        new = material_coefficients(material, energies)
        kv_mu = np.array([float(ph.mass_attenuation_cm2_g(material, e)) for e in energies])
        kv_muen = np.array([float(ph.mass_energy_absorption_cm2_g(material, e)) for e in energies])
        assert _max_rel(kv_mu, new.mu_over_rho_cm2_g) < 0.02, material
        assert _max_rel(kv_muen, new.muen_over_rho_cm2_g) < 0.02, material


def test_xraydb_tables_stop_below_1p5_mev():
    # Why the NIST tables are needed: xraydb's Elam tables return their 800 keV value above
    # 800 keV (oxygen at 1.0 and 1.5 MeV equals 800 keV), while NIST's oxygen falls by 27 %.
    with pytest.warns(UserWarning):
        elam = np.asarray(xraydb.mu_elam("O", np.array([800e3, 1000e3, 1500e3])))
    assert elam[1] == elam[0] and elam[2] == elam[0]
    o = element_tables()["O"]
    assert o.mu_over_rho_cm2_g[-1] / o.mu_over_rho_cm2_g[o.energy_kev == 800.0][0] < 0.75


def test_energies_outside_the_tables_are_refused():
    for bad in (9.9, 1500.1, float("nan")):
        with pytest.raises(PhotonDataError):
            material_coefficients("water", bad)
    with pytest.raises(PhotonDataError, match="Fe"):
        mixture_coefficients({"Fe": 1.0}, 100.0)
    # the grid end points are inside
    assert material_coefficients("water", [10.0, 1500.0]).mu_over_rho_cm2_g.shape == (2,)


def _incoherent_kn_s_cm2_g(symbol: str, energy_kev: float) -> float:
    """Integral of Klein-Nishina x S(x, Z) with the kV engine's S model and its fitted p.

    F(x) is evaluated at the true momentum transfer (xraydb's Waasmaier-Kirfel form factor,
    fitted up to x = 6 per Angstrom, set to 0 beyond), not on the kV engine's x grid, which ends
    at the 60.5 keV limit.
    """
    z, a = int(xraydb.atomic_number(symbol)), float(xraydb.atomic_mass(symbol))
    mu = np.linspace(-1.0, 1.0, 4001)
    x = np.sqrt((1.0 - mu) / 2.0) * energy_kev / HC_KEV_ANGSTROM
    f = np.clip(np.asarray(xraydb.f0(symbol, np.minimum(x, 6.0))) / z, 0.0, 1.0)
    f = np.where(x > 6.0, 0.0, f)
    s = z * (1.0 - f ** ph.incoherent_s_exponent(symbol))
    kn = 2 * np.pi * ph.klein_nishina_dcs_cm2(energy_kev, mu)
    return float(np.trapezoid(kn * s, mu)) * AVOGADRO_PER_MOL / a


def _photo_plus_coherent_cm2_g(symbol: str, energy_kev: float) -> float:
    # xraydb (Elam) is valid to 800 keV; above it the 800 keV value is an upper bound of both
    # (they fall with energy) and below 0.2 % of the total for these elements.
    ev = min(energy_kev, 800.0) * 1000.0
    return float(xraydb.mu_elam(symbol, ev, kind="photo") + xraydb.mu_elam(symbol, ev, kind="coh"))


def test_incoherent_model_over_the_whole_range():
    # Above 60 keV incoherent scattering is over 97 % of mu/rho for these elements, so the
    # binding-corrected KN x S model plus photo and coherent must reproduce NIST's total mu/rho
    # (pair production, < 0.1 % at 1.25-1.5 MeV, left out). Measured from 60 keV to 1.5 MeV:
    # elements at most 1.3 % (C at 60 keV), tissues at most 1.0 % (adipose at 60 keV).
    worst_element = 0.0
    for symbol, table in element_tables().items():
        if symbol not in ELEMENTS:  # iodine (contrast): photoabsorption, not scattering, rules
            continue
        for e, ref in zip(table.energy_kev, table.mu_over_rho_cm2_g, strict=True):
            if e < 60.0:
                continue
            model = _incoherent_kn_s_cm2_g(symbol, e) + _photo_plus_coherent_cm2_g(symbol, e)
            worst_element = max(worst_element, abs(model / ref - 1.0))
    assert worst_element < 0.015
    for material in ("water", "adipose", "cortical_bone"):
        ref = nist_tissue_tables()[material]
        comp = get_material(material).composition
        for e, mu_ref in zip(ref.energy_kev, ref.mu_over_rho_cm2_g, strict=True):
            if e < 60.0:
                continue
            model = sum(
                w * (_incoherent_kn_s_cm2_g(el, e) + _photo_plus_coherent_cm2_g(el, e))
                for el, w in comp.items()
            )
            assert model == pytest.approx(mu_ref, rel=0.012), (material, e)


def test_ir192_spectrum_mean_energy_and_yield():
    full = ir192_spectrum(min_energy_kev=0.0)
    assert full.energy_kev.size == 41
    lines = ir192_spectrum()  # L x-rays (8.9, 9.4 keV) dropped
    assert lines.energy_kev.size == 39 and lines.energy_kev.min() > 60.0
    # Mean photon energy of the lines >= 10 keV: 354.9 keV (computed from the NNDC file).
    # Issue 19 / brief: about 355-380 keV. Published for comparison: "an energy range of
    # 201-884 keV, with an average of 360 keV" for the gamma emission (Bahreyni Toossi MT et
    # al., Contemp Oncol (Pozn) 2016;20(4):327, introduction); our gamma lines >= 110 keV give
    # 372.2 keV and all lines >= 10 keV 354.9 keV, bracketing it.
    assert 345.0 <= lines.mean_energy_kev <= 380.0
    assert lines.mean_energy_kev == pytest.approx(354.9, abs=0.1)
    gammas = ir192_spectrum(min_energy_kev=100.0)
    assert set(gammas.kind) == {"gamma"}
    assert gammas.mean_energy_kev == pytest.approx(360.0, rel=0.04)
    # The three strongest lines (NNDC): 316.5 keV (82.86 %), 468.1 keV (47.84 %), 308.5 keV.
    top = np.argsort(lines.photons_per_decay)[::-1][:3]
    assert np.round(lines.energy_kev[top], 1).tolist() == [316.5, 468.1, 308.5]
    assert lines.probabilities.sum() == pytest.approx(1.0)
    # every line the transport samples lies inside the photon tables
    material_coefficients("water", lines.energy_kev)
