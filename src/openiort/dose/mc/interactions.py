"""Compiled photon interaction sampling shared by the geometry kernels.

One real interaction turns a photon of energy ``e`` into at most one photon (scattered or
fluorescent) plus an energy deposited on the spot; the kernels never need a particle stack.
Sampling methods: Klein-Nishina by the two-branch composition and rejection method of the
PENELOPE manual (Salvat et al., NEA 2011, sec. 2.3), then rejection on S(x)/Z; coherent by
inverting the cumulative F^2(x^2) table, then rejection on (1 + cos^2)/2.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from openiort.dose.mc.guide import guided_search
from openiort.dose.mc.physics import PhysArrays
from openiort.dose.mc.rng import uniform

TWO_PI = 2.0 * math.pi


@njit(cache=True, inline="always")
def energy_index(e_kev: float, phys: PhysArrays) -> tuple[int, float]:
    """Grid index and linear weight of ``e_kev`` in the tables."""
    t = (e_kev - phys.e_min_kev) * phys.inv_de
    n = phys.mu_rho.shape[1]
    i = int(t)
    if i < 0:
        return 0, 0.0
    if i >= n - 1:
        return n - 2, 1.0
    return i, t - i


@njit(cache=True, inline="always")
def lookup(table: np.ndarray, m: int, i: int, f: float) -> float:
    return table[m, i] + f * (table[m, i + 1] - table[m, i])


@njit(cache=True, inline="always")
def isotropic(state: np.ndarray) -> tuple[float, float, float]:
    w = 2.0 * uniform(state) - 1.0
    phi = TWO_PI * uniform(state)
    s = math.sqrt(max(0.0, 1.0 - w * w))
    return s * math.cos(phi), s * math.sin(phi), w


@njit(cache=True, inline="always")
def rotate(ux: float, uy: float, uz: float, cos_t: float, phi: float) -> tuple[float, float, float]:
    """Direction after scattering by polar angle acos(cos_t) and azimuth phi."""
    sin_t = math.sqrt(max(0.0, 1.0 - cos_t * cos_t))
    cp = math.cos(phi)
    sp = math.sin(phi)
    if abs(uz) > 0.99999999:
        sign = 1.0 if uz > 0 else -1.0
        return sin_t * cp, sin_t * sp, sign * cos_t
    r = math.sqrt(1.0 - uz * uz)
    nx = ux * cos_t + sin_t * (ux * uz * cp - uy * sp) / r
    ny = uy * cos_t + sin_t * (uy * uz * cp + ux * sp) / r
    nz = uz * cos_t - sin_t * r * cp
    norm = 1.0 / math.sqrt(nx * nx + ny * ny + nz * nz)
    return nx * norm, ny * norm, nz * norm


@njit(cache=True, inline="always")
def _s_ratio(x: float, m: int, phys: PhysArrays) -> float:
    t = x * phys.inv_dx
    j = int(t)
    n = phys.s_ratio.shape[1]
    if j >= n - 1:
        return phys.s_ratio[m, n - 1]
    f = t - j
    return phys.s_ratio[m, j] + f * (phys.s_ratio[m, j + 1] - phys.s_ratio[m, j])


@njit(cache=True, inline="always")
def sample_incoherent(
    e_kev: float, m: int, phys: PhysArrays, state: np.ndarray
) -> tuple[float, float]:
    """Energy after incoherent scattering and cos(theta): KN x S(x)/Z."""
    k = e_kev / phys.mec2_kev
    tau_min = 1.0 / (1.0 + 2.0 * k)
    a1 = math.log(1.0 + 2.0 * k)
    a2 = 2.0 * k * (1.0 + k) / (1.0 + 2.0 * k) ** 2
    p1 = a1 / (a1 + a2)
    x_scale = e_kev / phys.hc_kev_angstrom
    while True:
        if uniform(state) < p1:
            tau = tau_min ** uniform(state)
        else:
            tau = math.sqrt(tau_min * tau_min + uniform(state) * (1.0 - tau_min * tau_min))
        cos_t = 1.0 - (1.0 - tau) / (k * tau)
        sin2 = max(0.0, 1.0 - cos_t * cos_t)
        if uniform(state) > 1.0 - tau * sin2 / (1.0 + tau * tau):
            continue
        x = x_scale * math.sqrt(max(0.0, 0.5 * (1.0 - cos_t)))
        if uniform(state) <= _s_ratio(x, m, phys):
            return e_kev * tau, cos_t


@njit(cache=True, inline="always")
def sample_coherent(e_kev: float, m: int, phys: PhysArrays, state: np.ndarray) -> float:
    """cos(theta) of a coherent (Rayleigh) scatter: Thomson x F^2(x)."""
    x_max = e_kev / phys.hc_kev_angstrom
    x2_max = x_max * x_max
    t = x_max * phys.inv_dx
    j_max = int(t)
    n = phys.x2_grid.shape[0]
    if j_max >= n - 1:
        j_max = n - 2
        t = float(j_max + 1)
    cum = phys.coh_cum
    a_max = cum[m, j_max] + (t - j_max) * (cum[m, j_max + 1] - cum[m, j_max])
    while True:
        y = uniform(state) * a_max
        # the last grid point with cum <= y, at most j_max
        lo = guided_search(
            cum[m], y, phys.coh_guide[m], phys.coh_guide_steps_per_unit[m], j_max + 1
        )
        da = cum[m, lo + 1] - cum[m, lo]
        frac = (y - cum[m, lo]) / da if da > 0 else 0.0
        x2 = phys.x2_grid[lo] + frac * (phys.x2_grid[lo + 1] - phys.x2_grid[lo])
        if x2 > x2_max:
            x2 = x2_max
        cos_t = 1.0 - 2.0 * x2 / x2_max
        if uniform(state) * 2.0 <= 1.0 + cos_t * cos_t:
            return cos_t


@njit(cache=True, inline="always")
def interact(
    e_kev: float, m: int, ux: float, uy: float, uz: float, phys: PhysArrays, state: np.ndarray
) -> tuple[float, float, float, float, float]:
    """One real interaction in material ``m``.

    Returns ``(e_out, ux, uy, uz, e_local)``: the outgoing photon (``e_out == 0`` when none)
    and the energy deposited on the spot.
    """
    i, f = energy_index(e_kev, phys)
    if not phys.scatter:
        return 0.0, ux, uy, uz, e_kev
    u = uniform(state)
    if u < lookup(phys.cum_photo, m, i, f):
        nf = phys.fl_count[m]
        if nf > 0:
            v = uniform(state)
            for c in range(nf):
                if v < phys.fl_cum[m, c, i] + f * (phys.fl_cum[m, c, i + 1] - phys.fl_cum[m, c, i]):
                    e_fl = phys.fl_energy_kev[m, c]
                    nx, ny, nz = isotropic(state)
                    return e_fl, nx, ny, nz, e_kev - e_fl
        return 0.0, ux, uy, uz, e_kev
    if u < lookup(phys.cum_incoh, m, i, f):
        e_out, cos_t = sample_incoherent(e_kev, m, phys, state)
        nx, ny, nz = rotate(ux, uy, uz, cos_t, TWO_PI * uniform(state))
        return e_out, nx, ny, nz, e_kev - e_out
    cos_t = sample_coherent(e_kev, m, phys, state)
    nx, ny, nz = rotate(ux, uy, uz, cos_t, TWO_PI * uniform(state))
    return e_kev, nx, ny, nz, 0.0
