"""Validation of the Ir-192 Monte Carlo against published data (issue 19).

The bare Ir-192 point source (NNDC lines, no capsule) at the centre of a water sphere:

(a) its radial dose function against a published Monte Carlo g(r) of an Ir-192 HDR source
    (egs_brachy, GammaMed Plus, unbounded phantom: Buchapudi et al. J Med Phys 2019;44:246,
    data/ir192_radial_dose_published.csv) in a 40 cm sphere, the radius that Perez-Calatayud
    et al. (Med Phys 2004;31:2075) give as equivalent to unbounded water to 20 cm for Ir-192;
(b) the same against the AAPM/ESTRO consensus g_L(r) of the GammaMed HDR Plus shipped with
    openiort (devices/data/tg43/hebd_gL.csv, Perez-Calatayud et al. Med Phys 2012;39:2904);
(c) the absolute air-kerma response of point sources of 100, 300 and 600 keV in water against
    the ANSI/ANS-6.4.3 buildup factors (data/ans643_water_point_source_buildup_80kev_1p5mev.csv).

(d) the modelled sources (core, capsule and cable) against their own TG-43 data in (r, theta)
    (the test at the end; the default run checks the GammaMed Plus in tests/mc/test_hdr_capsule.py).

Capsule, for (a)-(b): the published g(r) are for real sources whose iridium core and steel capsule harden
the spectrum (the 61-78 keV K x-rays are absorbed, the low gamma lines attenuated more than the
high ones). A harder spectrum has less scatter build-up at a few cm, so the bare point source's
g(r) lies above them, increasingly with distance: measured (10^7 histories) +0.3 % at 2 cm to
+1.0 % (egs_brachy) and +1.6 % (consensus) at 5 cm. The 2 % tolerance of issue 19 holds for the bare point;
with the capsule modelled (d) the sources reproduce their own data.

Default tests run reduced statistics (400 000 histories, about 0.1 % per shell) with the
tolerance widened to 2.5 %; ``@pytest.mark.validate`` runs 10^7 histories against 2 %.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from openiort.devices.hdr import load_source
from openiort.dose.mc.hdr_engine import hdr_shell_dose, line_source_arrays, radial_dose_function
from openiort.dose.mc.hdr_physics import hdr_coefficients
from openiort.dose.mc.hdr_references import (
    ans643_water_exposure_gp_hdr,
    published_ir192_radial_dose,
)
from openiort.dose.mc.hdr_tg43_check import compare_with_tg43
from openiort.dose.mc.ir192_spectrum import LineSpectrum
from openiort.dose.mc.physics import resolve_material
from openiort.dose.mc.scoring import KERMA_TALLY_TO_GY_MM3

UNBOUNDED_RADIUS_MM = 400.0  # Perez-Calatayud et al. 2004: R = 40 cm is unbounded to 20 cm
RADII_MM = np.array([10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 40.0, 45.0, 50.0])
REDUCED_HISTORIES = 400_000
FULL_HISTORIES = 10_000_000


def _point_source_g(histories: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """g(r) of the bare Ir-192 point source in the 40 cm water sphere at RADII_MM (2 mm shells)."""
    edges = np.sort(np.concatenate([RADII_MM - 1.0, RADII_MM + 1.0]))
    res = hdr_shell_dose([(UNBOUNDED_RADIUS_MM, "water")], edges, histories, seed)
    r, g = radial_dose_function(res)
    np.testing.assert_allclose(r[::2], RADII_MM)
    return g[::2], res.rel_unc[::2]


def _check_published_mc(g: np.ndarray, unc: np.ndarray, rtol: float) -> np.ndarray:
    ref = published_ir192_radial_dose()["GammaMed Plus"]
    ref_g = np.interp(RADII_MM, ref.r_cm * 10.0, ref.g)
    assert np.all(np.isin(RADII_MM, ref.r_cm * 10.0))  # tabulated radii only, no interpolation
    assert np.all(unc < 0.004)
    np.testing.assert_allclose(g, ref_g, rtol=rtol)
    return g / ref_g - 1.0


def _check_consensus(g: np.ndarray, rtol: float) -> np.ndarray:
    src = load_source("GammaMed_HDR_Plus")
    tabulated = np.isin(RADII_MM, src.gl_r_cm * 10.0)
    ref_g = np.interp(RADII_MM[tabulated], src.gl_r_cm * 10.0, src.gl)
    # the point source's g_P against the line source's g_L: at 1-5 cm from a 3.5 mm active
    # length the geometry functions are removed by each's own G, so both are the radial
    # attenuation and scatter alone (TG-43U1); the remaining difference is the capsule's.
    np.testing.assert_allclose(g[tabulated], ref_g, rtol=rtol)
    return g[tabulated] / ref_g - 1.0


def test_radial_dose_vs_published_monte_carlo_reduced():
    # Reduced statistics (0.1 % per shell). 2.5 %: the 2 % plus statistics. Measured
    # (400 000 histories, seed 19): +0.1 % (1.5 cm) rising to +1.2 % (5 cm).
    g, unc = _point_source_g(REDUCED_HISTORIES, 19)
    _check_published_mc(g, unc, 0.025)


def test_radial_dose_vs_consensus_tg43_reduced():
    # Consensus g_L of the GammaMed HDR Plus at 1, 1.5, 2, 3, 4, 5 cm. Measured (400 000
    # histories): +0.1 % (1.5 cm), +0.4 % (2 cm), +0.9 % (3 cm), +1.3 % (4 cm), +1.8 % (5 cm):
    # the capsule (see the module docstring).
    g, _ = _point_source_g(REDUCED_HISTORIES, 19)
    _check_consensus(g, 0.025)


@pytest.mark.validate
def test_radial_dose_vs_published_and_consensus_full():
    # 10^7 histories (0.02-0.05 % per shell); issue 19's 2 % at 1-5 cm. Measured (seed 23):
    # egs_brachy +0.2 % (1.5 cm), +0.3 (2), +0.6 (3), +0.9 (4), +1.0 % (5 cm); consensus +0.2,
    # +0.3, +0.9, +1.2, +1.6 % at 1.5, 2, 3, 4, 5 cm. About 25 s on two cores.
    g, unc = _point_source_g(FULL_HISTORIES, 23)
    _check_published_mc(g, unc, 0.02)
    _check_consensus(g, 0.02)


def _ans643_deviation(energy_kev: float, histories: int, seed: int) -> np.ndarray:
    """(MC / ANS-6.4.3) - 1 of the air-kerma response of a point source in water."""
    radii = np.array([10.0, 20.0, 30.0, 50.0, 80.0])
    edges = np.sort(np.concatenate([radii - 0.5, radii + 0.5]))
    src = line_source_arrays(LineSpectrum(np.array([energy_kev]), np.array([1.0]), ("gamma",)))
    res = hdr_shell_dose(
        [(UNBOUNDED_RADIUS_MM, "water")], edges, histories, seed, source=src, response="air"
    )
    gp = ans643_water_exposure_gp_hdr()[energy_kev]
    mu_mm = gp.mu_no_coherent_cm2_g / 10.0
    muen_air = float(hdr_coefficients(resolve_material("air"), np.array([energy_kev])).muen[0])
    ref = []
    for lo, hi in itertools.pairwise(edges):
        r = np.linspace(lo, hi, 101)
        # per photon: energy fluence x 4 pi r^2 integrated over the shell, / shell volume
        tracks = np.trapezoid(np.exp(-mu_mm * r) * gp.buildup(mu_mm * r), r)
        ref.append(tracks / (4.0 / 3.0 * np.pi * (hi**3 - lo**3)))
    ref_gy = np.asarray(ref) * energy_kev * muen_air * KERMA_TALLY_TO_GY_MM3
    assert np.all(res.rel_unc[::2] < 0.005)
    return np.asarray(res.dose_gy_per_photon[::2] / ref_gy[::2] - 1.0)


@pytest.mark.parametrize("energy_kev", [100.0, 300.0, 600.0])
def test_point_source_in_water_matches_ans643_buildup(energy_kev):
    # Absolute air-kerma response at 1, 2, 3, 5, 8 cm (0.1-1.3 mean free paths). 3 %: the GP fit's
    # own accuracy (1-3 %, Harima 1986), as for the kV engine's 15-60 keV check; the reference
    # also ignores coherent scattering and electron binding, which the Monte Carlo includes.
    # Measured (400 000 histories): 100 keV +1.4 to -1.1 %, 300 keV +1.2 to -1.8 %, 600 keV
    # +0.4 to -1.5 % (most negative at 8 cm).
    dev = _ans643_deviation(energy_kev, 400_000, 5)
    assert np.all(np.abs(dev) < 0.03), dev


@pytest.mark.validate
def test_forty_cm_sphere_is_unbounded_to_twenty_cm():
    # Perez-Calatayud et al. (Med Phys 2004;31:2075, abstract): for Ir-192 a water sphere of
    # 40 cm radius is equivalent to an unbounded phantom up to 20 cm from the source. The engine
    # reproduces it: g(r) in 40 and 50 cm spheres differs by 0.0, -0.01, -0.03, -0.1 and -0.3 %
    # at 1, 5, 10, 15, 20 cm (2e6 histories each, 0.02-0.08 % per shell). 0.5 % asserted.
    radii = np.array([10.0, 50.0, 100.0, 150.0, 200.0])
    edges = np.sort(np.concatenate([radii - 1.0, radii + 1.0]))
    g = {}
    for radius in (400.0, 500.0):
        res = hdr_shell_dose([(radius, "water")], edges, 2_000_000, 31)
        g[radius] = radial_dose_function(res)[1][::2]
    np.testing.assert_allclose(g[400.0], g[500.0], rtol=0.005)


# The modelled sources (core, capsule and cable; data/hdr_source_capsules.yaml) in a 30 cm water
# cube against their own shipped TG-43 data, ratio MC / TG-43 in (r, theta) bins at 1-5 cm
# (openiort.dose.mc.hdr_tg43_check). Measured (4e6 histories, 2 mm voxels) over 10-170 degrees:
# GammaMed Plus 0.984-0.998, Flexisource 0.992-1.003, microSelectron v2r 0.990-1.005,
# microSelectron v2 (Daskalov) 0.994-1.018, VS2000 0.990-1.002, M-19 0.989-1.002. Dose-rate
# constants from the 1 cm transverse ratio within 0.5 % of the shipped ones. Beyond 5 cm of water
# the cube's edge (15 cm) takes about 1 % of the scatter. Near the axis (3-5 cm) the models and
# the TG-43 data part more: within 10 degrees of the tip 0.975-1.008, of the cable 1.012-1.036
# (GammaMed Plus 1.058-1.066: its consensus data come from another group's model, Ballester et
# al. 2001, than the CLRP geometry shipped here, whose 60 mm braided cable at 5.6 g/cm3 shades
# less than a solid one would).
SOURCE_MODEL_BINS_R_MM = np.array([9.0, 11.0, 19.0, 21.0, 29.0, 31.0, 39.0, 41.0, 49.0, 51.0])
SOURCE_MODEL_BINS_THETA_DEG = np.array([0.0, 10.0, 30.0, 60.0, 80.0, 100.0, 120.0, 150.0, 170.0])


@pytest.mark.validate
@pytest.mark.parametrize(
    "source_id",
    [
        "GammaMed_HDR_Plus",
        "Elekta_Flexisource",
        "mHDR_v2r_ESTRO",
        "mHDR_v2_Daskalov1998",
        "Varian_VS2000",
        "SPEC_M-19",
    ],
)
def test_source_model_reproduces_its_tg43_data_full(source_id):
    cmp = compare_with_tg43(
        source_id,
        SOURCE_MODEL_BINS_R_MM,
        SOURCE_MODEL_BINS_THETA_DEG,
        half_width_mm=150.0,
        spacing_mm=2.0,
        histories=4_000_000,
    )
    rows = cmp.ratio[0::2, 1:]  # the rings at 1-5 cm, 10-170 degrees
    assert np.all(np.abs(rows - 1.0) < 0.025), rows
    transverse = cmp.ratio[0::2, 3:5]  # 60-100 degrees: g_L(r) and Lambda, issue 19's 2 %
    assert np.all(np.abs(transverse - 1.0) < 0.02), transverse
    lam = cmp.ratio[0, 4] * load_source(source_id).dose_rate_constant_cgy_h_u
    assert lam == pytest.approx(load_source(source_id).dose_rate_constant_cgy_h_u, rel=0.01)
