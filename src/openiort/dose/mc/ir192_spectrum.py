"""The Ir-192 photon line spectrum (NNDC NuDat 2.6 / ENSDF, data/ir192_photon_spectrum_nndc.csv).

The source of the HDR Monte Carlo samples its initial photon energies from these lines. By
default the two L x-ray lines (8.9 and 9.4 keV) are left out: they lie below the 10 keV start of
the photon tables (:mod:`openiort.dose.mc.photon_data`) and would deposit within tens of
micrometres of the source; the steel capsule of a real HDR source stops them in any case
(:mod:`openiort.dose.mc.hdr_capsule` models it).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from numpy.typing import NDArray

from openiort.datafiles import read_data
from openiort.errors import OpenIortInputError

FloatArray = NDArray[np.float64]

_SPECTRUM_FILE = "data/ir192_photon_spectrum_nndc.csv"
DEFAULT_MIN_ENERGY_KEV = 10.0


@dataclass(frozen=True)
class LineSpectrum:
    """Photon lines: energies (keV), photons per decay and the emission kind of each line."""

    energy_kev: FloatArray
    photons_per_decay: FloatArray
    kind: tuple[str, ...]

    @property
    def photons_per_decay_total(self) -> float:
        return float(self.photons_per_decay.sum())

    @property
    def probabilities(self) -> FloatArray:
        """Per-line probability of an emitted photon (sums to one), for sampling."""
        return self.photons_per_decay / self.photons_per_decay.sum()

    @property
    def mean_energy_kev(self) -> float:
        """Photon-number-weighted mean energy."""
        return float(np.dot(self.energy_kev, self.probabilities))


@cache
def _all_lines() -> LineSpectrum:
    rows = read_data("openiort.dose.mc", _SPECTRUM_FILE).rows()
    return LineSpectrum(
        np.array([float(r["energy_kev"]) for r in rows]),
        np.array([float(r["photons_per_decay"]) for r in rows]),
        tuple(r["kind"] for r in rows),
    )


def ir192_spectrum(min_energy_kev: float = DEFAULT_MIN_ENERGY_KEV) -> LineSpectrum:
    """Ir-192 lines at or above ``min_energy_kev`` (default 10 keV: the L x-rays dropped)."""
    if not np.isfinite(min_energy_kev) or min_energy_kev < 0:
        raise OpenIortInputError(f"minimum line energy must be >= 0 keV, got {min_energy_kev}")
    lines = _all_lines()
    keep = lines.energy_kev >= min_energy_kev
    if not keep.any():
        raise OpenIortInputError(f"no Ir-192 line at or above {min_energy_kev:g} keV")
    return LineSpectrum(
        lines.energy_kev[keep],
        lines.photons_per_decay[keep],
        tuple(k for k, m in zip(lines.kind, keep, strict=True) if m),
    )
