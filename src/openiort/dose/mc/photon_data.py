"""Photon mass attenuation and energy-absorption coefficients from 10 keV to 1.5 MeV (Ir-192).

The kV engine's physics (:mod:`openiort.dose.mc.physics`) stops at 60 keV and xraydb cannot go
much further: its Elam tables return the 800 keV value at every higher energy and its Chantler
tables stop at 966 keV (and return that value above), and neither has mu_en. This module reads the
NIST SRD 126 element tables (Hubbell & Seltzer, Table 3; data file
``nist_srd126_elements_10kev_1p5mev.csv``) and builds any material's coefficients by the mixture
rule, mu/rho = sum_i w_i (mu/rho)_i and likewise mu_en/rho, with w_i the mass fractions. The
mixture rule for mu_en neglects the composition dependence of the radiative-loss fraction g
of the secondary electrons, which is small in low-Z tissue: the rule reproduces NIST's own
compound tables (Table 4) to 0.2 % (tests/mc/test_photon_data.py).

Between the tabulated energies the coefficients are interpolated linearly in log-log (the
standard practice for these tables; no absorption edge of the library's elements lies above
10 keV). Energies outside [10 keV, 1.5 MeV] are refused, not extrapolated.

Totals only: Table 3 gives mu/rho and mu_en/rho, not the partial cross sections (coherent,
incoherent, photoelectric, pair) that a transport code samples from; those are a later step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

import numpy as np
from numpy.typing import ArrayLike, NDArray

from openiort.anatomy.materials import get_material
from openiort.datafiles import read_data
from openiort.errors import OpenIortInputError

FloatArray = NDArray[np.float64]

_ELEMENT_FILE = "data/nist_srd126_elements_10kev_1p5mev.csv"
_TISSUE_FILE = "data/nist_srd126_tissues_10kev_1p5mev.csv"
ENERGY_MIN_KEV = 10.0
ENERGY_MAX_KEV = 1500.0


class PhotonDataError(OpenIortInputError):
    """An energy outside the tables or an element they do not hold."""


@dataclass(frozen=True)
class CoefficientTable:
    """Tabulated mu/rho and mu_en/rho (cm2/g) of one element or material on its energy grid."""

    energy_kev: FloatArray
    mu_over_rho_cm2_g: FloatArray
    muen_over_rho_cm2_g: FloatArray


# An absorption edge is two rows of one energy; the lower row is moved down by this fraction
# so that interpolation on either side of the edge uses its own branch.
EDGE_SHIFT = 1e-9


def _table(rows: list[dict[str, str]]) -> CoefficientTable:
    energy = np.array([float(r["energy_kev"]) for r in rows])
    step = np.diff(energy)
    if np.any(step < 0) or np.any((step == 0)[1:] & (step == 0)[:-1]):
        raise ValueError("photon data energies must increase (an edge is two equal rows)")
    edge_below = np.flatnonzero(step == 0)
    energy[edge_below] *= 1.0 - EDGE_SHIFT
    return CoefficientTable(
        energy,
        np.array([float(r["mu_over_rho_cm2_g"]) for r in rows]),
        np.array([float(r["muen_over_rho_cm2_g"]) for r in rows]),
    )


@cache
def element_tables() -> dict[str, CoefficientTable]:
    """NIST SRD 126 Table 3 coefficients by element symbol, 10 keV to 1.5 MeV."""
    by_element: dict[str, list[dict[str, str]]] = {}
    for row in read_data("openiort.dose.mc", _ELEMENT_FILE).rows():
        by_element.setdefault(row["element"], []).append(row)
    return {el: _table(rows) for el, rows in by_element.items()}


@cache
def nist_tissue_tables() -> dict[str, CoefficientTable]:
    """NIST SRD 126 Table 4 coefficients keyed by openiort library material (test reference)."""
    by_material: dict[str, list[dict[str, str]]] = {}
    for row in read_data("openiort.dose.mc", _TISSUE_FILE).rows():
        by_material.setdefault(row["material"], []).append(row)
    return {name: _table(rows) for name, rows in by_material.items()}


def _checked_energy(energy_kev: ArrayLike) -> FloatArray:
    energy = np.atleast_1d(np.asarray(energy_kev, dtype=np.float64))
    # 1e-9 relative slack so that the grid end points themselves are accepted.
    low, high = ENERGY_MIN_KEV * (1 - 1e-9), ENERGY_MAX_KEV * (1 + 1e-9)
    if energy.size == 0 or not np.all(np.isfinite(energy)):
        raise PhotonDataError("photon energies must be finite numbers")
    if np.any(energy < low) or np.any(energy > high):
        raise PhotonDataError(
            f"photon energy outside the tables ({ENERGY_MIN_KEV:g} keV to "
            f"{ENERGY_MAX_KEV:g} keV): {float(energy.min()):g} to {float(energy.max()):g} keV"
        )
    return energy


def _loglog(table_e: FloatArray, table_v: FloatArray, energy: FloatArray) -> FloatArray:
    return np.exp(np.interp(np.log(energy), np.log(table_e), np.log(table_v)))


@dataclass(frozen=True)
class MassCoefficients:
    """mu/rho and mu_en/rho (cm2/g) of a mixture at the requested energies (always 1-D)."""

    energy_kev: FloatArray
    mu_over_rho_cm2_g: FloatArray
    muen_over_rho_cm2_g: FloatArray


def mixture_coefficients(
    composition: Mapping[str, float], energy_kev: ArrayLike
) -> MassCoefficients:
    """Mixture rule over the element tables; ``composition`` maps symbol -> mass fraction.

    Fractions are normalised to sum to one (the library's rows are, to rounding).
    """
    energy = _checked_energy(energy_kev)
    tables = element_tables()
    missing = sorted(el for el in composition if el not in tables)
    if missing:
        raise PhotonDataError(
            f"no photon data above 60 keV for element(s) {', '.join(missing)}; "
            f"tabulated: {', '.join(sorted(tables))}"
        )
    total = float(sum(composition.values()))
    if not total > 0:
        raise PhotonDataError("material composition has no positive mass fraction")
    mu = np.zeros_like(energy, dtype=np.float64)
    muen = np.zeros_like(energy, dtype=np.float64)
    for el, fraction in composition.items():
        t = tables[el]
        weight = fraction / total
        mu += weight * _loglog(t.energy_kev, t.mu_over_rho_cm2_g, energy)
        muen += weight * _loglog(t.energy_kev, t.muen_over_rho_cm2_g, energy)
    return MassCoefficients(energy, mu, muen)


def material_coefficients(material: str, energy_kev: ArrayLike) -> MassCoefficients:
    """mu/rho and mu_en/rho of a library material (e.g. ``water``, ``breast_g20``)."""
    return mixture_coefficients(get_material(material).composition, energy_kev)
