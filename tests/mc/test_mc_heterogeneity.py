"""Tissue versus water around the 50 kV applicator: published values and the primary-only estimate."""

from __future__ import annotations

import numpy as np
import pytest

from openiort.anatomy.materials import get_material
from openiort.dose.mc.commissioning import depth_shell_edges_mm, primary_spectrum_at_depth
from openiort.dose.mc.physics import mass_attenuation_cm2_g, mass_energy_absorption_cm2_g
from openiort.dose.mc.references import heterogeneity_references
from openiort.dose.mc.sphere import SPHERE_RADIUS_MM, shell_dose
from openiort.dose.mc.xray_source import xray50_source

RADIUS_MM = 17.5  # 3.5 cm applicator
DEPTHS_MM = np.array([10.0, 20.0])


def _mc_dose(material: str, seed: int) -> np.ndarray:
    edges = depth_shell_edges_mm(RADIUS_MM, DEPTHS_MM)
    result = shell_dose(
        xray50_source(),
        [(RADIUS_MM, "applicator_pei"), (SPHERE_RADIUS_MM, material)],
        edges,
        600_000,
        seed,
    )
    assert np.all(result.rel_unc[::2] < 0.01)
    return result.dose_gy_per_photon[::2]


def _primary_only(material: str) -> np.ndarray:
    """Unscattered photons only, straight out through the applicator and the medium."""
    e, fluence = primary_spectrum_at_depth(0.0, pei_mm=RADIUS_MM)
    rho = get_material(material).density_g_cm3
    out = []
    for d in DEPTHS_MM:
        att = np.exp(-mass_attenuation_cm2_g(material, e) * rho * d / 10.0)
        out.append(
            np.sum(fluence * att * e * mass_energy_absorption_cm2_g(material, e))
            / (RADIUS_MM + d) ** 2
        )
    return np.array(out)


@pytest.fixture(scope="module")
def doses() -> dict[str, np.ndarray]:
    return {m: _mc_dose(m, i + 30) for i, m in enumerate(("water", "adipose", "breast_50_50"))}


def test_adipose_to_water_ratio_against_primary_only_estimate(doses):
    mc = doses["adipose"] / doses["water"]
    primary = _primary_only("adipose") / _primary_only("water")
    # Dose to adipose is lower than dose to water: mu_en of adipose is 0.59-0.66 of water's
    # at 20-50 keV; less attenuation in adipose narrows the gap with depth.
    assert np.all(mc < 0.95) and np.all(np.diff(mc) > 0)
    # The Monte Carlo ratio exceeds the primary-only one: adipose absorbs relatively less and
    # scatters relatively more (photoelectric/Compton lower), so its scatter build-up, which
    # the primary-only model leaves out, is larger. Observed: +4 % at 10 mm, +6 % at 20 mm.
    excess = mc / primary - 1.0
    assert np.all(excess > 0.01) and np.all(excess < 0.10)


def test_breast_mixture_deficit_within_published_range(doses):
    # Taylor et al. 2016 (Xoft 50 kV balloon, Geant4): breast mixtures 8-18 % below water within
    # 2 cm (11 % for 50/50). A different source and applicator, so the comparison band is the
    # published range widened by 3 points on each side.
    published = [float(r["max_deficit_vs_water_pct"]) for r in heterogeneity_references()]
    lo, hi = (min(published) - 3.0) / 100.0, (max(published) + 3.0) / 100.0
    deficit = 1.0 - doses["breast_50_50"] / doses["water"]
    assert np.all((deficit > lo) & (deficit < hi)), deficit
