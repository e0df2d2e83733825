"""Compiled helpers shared by the geometry kernels: source sampling and energy bookkeeping."""

from __future__ import annotations

import numpy as np
from numba import njit

from openiort.dose.mc.interactions import isotropic
from openiort.dose.mc.rng import uniform
from openiort.dose.mc.sources import SourceArrays

# Slots of the per-batch energy balance array (keV).
EMITTED, DEPOSITED, ESCAPED, BLOCKED = 0, 1, 2, 3
BALANCE_SLOTS = 4


@njit(cache=True, inline="always")
def sample_energy(src: SourceArrays, state: np.ndarray) -> float:
    """Energy from the binned spectrum, uniform within the bin."""
    y = uniform(state)
    cdf = src.cdf
    lo = 0
    hi = cdf.shape[0] - 1
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        if cdf[mid] <= y:
            lo = mid
        else:
            hi = mid
    dp = cdf[lo + 1] - cdf[lo]
    frac = (y - cdf[lo]) / dp if dp > 0 else 0.5
    return src.edges_kev[lo] + frac * (src.edges_kev[lo + 1] - src.edges_kev[lo])


@njit(cache=True, inline="always")
def emit(src: SourceArrays, state: np.ndarray) -> tuple[float, float, float, float, bool]:
    """Energy and direction of a new photon, and whether the shadow cone blocks it."""
    e = sample_energy(src, state)
    ux, uy, uz = isotropic(state)
    blocked = ux * src.shadow_ux + uy * src.shadow_uy + uz * src.shadow_uz > src.shadow_cos
    return e, ux, uy, uz, blocked
