"""Photon transport in concentric spheres around a point source, scored in spherical shells.

Geometry: region k is the shell between radii ``region_r_mm[k-1]`` and ``region_r_mm[k]``
(the first starts at the centre); vacuum lies beyond the last radius. Tracking is Woodcock
(delta) tracking against the largest attenuation coefficient of the regions. Scoring in
spherical shells (``edges_mm``), either

- track-length kerma (``analog=False``): sum of E x (mu_en/rho) x path length per shell, with
  mu_en/rho of the shell's response material (dose = tally / shell volume), or
- analog collision scoring (``analog=True``): the energy deposited at each interaction.

The batch's energy balance (emitted, deposited, escaped, blocked) is kept either way.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from openiort.dose.mc.constants import MM_PER_CM
from openiort.dose.mc.interactions import energy_index, interact, lookup
from openiort.dose.mc.kernel_common import BLOCKED, DEPOSITED, EMITTED, ESCAPED, emit
from openiort.dose.mc.physics import PhysArrays
from openiort.dose.mc.rng import photon_state, uniform
from openiort.dose.mc.sources import SourceArrays


@njit(cache=True, inline="always")
def _inside_length(p2: float, b: float, s: float, radius: float) -> float:
    """Length of the segment p + t u, t in [0, s], inside the sphere of ``radius``."""
    disc = b * b - (p2 - radius * radius)
    if disc <= 0.0:
        return 0.0
    root = math.sqrt(disc)
    t1 = min(max(-b - root, 0.0), s)
    t2 = min(max(-b + root, 0.0), s)
    return t2 - t1


@njit(cache=True, inline="always")
def score_segment(
    px: float,
    py: float,
    pz: float,
    ux: float,
    uy: float,
    uz: float,
    s: float,
    weight: float,
    edges: np.ndarray,
    score_mat: np.ndarray,
    muen_now: np.ndarray,
    tally: np.ndarray,
) -> None:
    """Add weight x mu_en/rho x (path length in each shell) to ``tally``."""
    p2 = px * px + py * py + pz * pz
    b = px * ux + py * uy + pz * uz
    end2 = p2 + 2.0 * b * s + s * s
    # closest approach to the centre: inside the segment, or at one of its ends
    rmin = math.sqrt(max(0.0, p2 - b * b)) if 0.0 < -b < s else math.sqrt(min(p2, end2))
    rmax = math.sqrt(max(p2, end2))
    n_edges = edges.shape[0]
    j0 = int(np.searchsorted(edges, rmin, side="right"))  # first edge above rmin
    j1 = int(np.searchsorted(edges, rmax, side="left"))  # edges below rmax have index < j1
    k_lo = max(j0 - 1, 0)
    k_hi = min(j1 - 1, n_edges - 2)
    if k_lo > k_hi:
        return
    inner = 0.0 if k_lo < j0 else _inside_length(p2, b, s, edges[k_lo])
    for k in range(k_lo, k_hi + 1):
        outer = s if k + 1 >= j1 else _inside_length(p2, b, s, edges[k + 1])
        length = outer - inner
        if length > 0.0:
            tally[k] += weight * muen_now[score_mat[k]] * length
        inner = outer


@njit(cache=True, inline="always")
def score_segment_band(
    px: float,
    py: float,
    pz: float,
    ux: float,
    uy: float,
    uz: float,
    s: float,
    weight: float,
    edges: np.ndarray,
    score_mat: np.ndarray,
    muen_now: np.ndarray,
    tally: np.ndarray,
    band_cos: float,
) -> None:
    """Like :func:`score_segment`, counting only the path within the band |cos(polar)| < band_cos.

    The band (about the z axis, i.e. around the plane perpendicular to the probe shaft) is where
    the depth-dose table is defined; ``band_cos >= 1`` scores whole shells.
    """
    if band_cos >= 1.0:
        score_segment(px, py, pz, ux, uy, uz, s, weight, edges, score_mat, muen_now, tally)
        return
    # inside the band where g(t) = z(t)^2 - c^2 |p + t u|^2 < 0, g = a t^2 + b t + c
    c2 = band_cos * band_cos
    a = uz * uz - c2
    b = 2.0 * (pz * uz - c2 * (px * ux + py * uy + pz * uz))
    c = pz * pz - c2 * (px * px + py * py + pz * pz)
    lo1 = 0.0
    hi1 = -1.0
    lo2 = 0.0
    hi2 = -1.0
    if abs(a) < 1e-12:
        if abs(b) < 1e-300:
            if c < 0.0:
                hi1 = s
        elif b > 0.0:
            hi1 = min(-c / b, s)
        else:
            lo1 = max(-c / b, 0.0)
            hi1 = s
    else:
        disc = b * b - 4.0 * a * c
        if a > 0.0:
            if disc > 0.0:
                root = math.sqrt(disc)
                r1 = (-b - root) / (2.0 * a)
                r2 = (-b + root) / (2.0 * a)
                lo1 = max(r1, 0.0)
                hi1 = min(r2, s)
        elif disc <= 0.0:
            hi1 = s
        else:
            root = math.sqrt(disc)
            r1 = (-b + root) / (2.0 * a)  # a < 0: the smaller root
            r2 = (-b - root) / (2.0 * a)
            hi1 = min(r1, s)
            lo2 = max(r2, 0.0)
            hi2 = s
    if hi1 > lo1:
        score_segment(
            px + lo1 * ux,
            py + lo1 * uy,
            pz + lo1 * uz,
            ux,
            uy,
            uz,
            hi1 - lo1,
            weight,
            edges,
            score_mat,
            muen_now,
            tally,
        )
    if hi2 > lo2:
        score_segment(
            px + lo2 * ux,
            py + lo2 * uy,
            pz + lo2 * uz,
            ux,
            uy,
            uz,
            hi2 - lo2,
            weight,
            edges,
            score_mat,
            muen_now,
            tally,
        )


@njit(cache=True, inline="always")
def _shell_of(r: float, edges: np.ndarray) -> int:
    k = int(np.searchsorted(edges, r, side="right")) - 1
    if k < 0 or k >= edges.shape[0] - 1:
        return -1
    return k


# error_model='numpy': no zero-division checks on the hot path (every divisor is guarded
# or positive by construction); about 7 % faster, identical results. _nrt=False: no atomic
# reference counting of arrays in the loops (see voxel_kernel.py); the caller allocates the
# work arrays.
@njit(cache=True, nogil=True, error_model="numpy", _nrt=False)  # type: ignore[call-overload]
def run_sphere(
    key: np.uint64,
    first: int,
    stop: int,
    batch_size: int,
    src: SourceArrays,
    region_r_mm: np.ndarray,
    region_mat: np.ndarray,
    region_rho: np.ndarray,
    edges_mm: np.ndarray,
    score_mat: np.ndarray,
    analog: bool,
    band_cos: float,
    phys: PhysArrays,
    tally: np.ndarray,
    balance: np.ndarray,
    state: np.ndarray,
    muen_now: np.ndarray,
    mu_reg: np.ndarray,
) -> None:
    """Transport photons ``first`` to ``stop - 1`` of the batch with ``key``.

    Directions are random (``batch_size`` is unused: stratifying them gains nothing in
    spherical shells). With ``band_cos < 1`` only the band |cos(polar angle about z)| <
    ``band_cos`` is scored (its volume is that fraction of each shell). Work arrays: ``state``
    (1 uint64), ``muen_now`` (one per material) and ``mu_reg`` (one per region).
    """
    n_mat = phys.mu_rho.shape[0]
    n_reg = region_r_mm.shape[0]
    r_out2 = region_r_mm[n_reg - 1] ** 2
    for n in range(first, stop):
        state[0] = photon_state(key, n)
        e, ux, uy, uz, blocked = emit(src, state)
        balance[EMITTED] += e
        if blocked:
            balance[BLOCKED] += e
            continue
        px = 0.0
        py = 0.0
        pz = 0.0
        e_tab = -1.0
        mu_max = 0.0
        while True:
            if e != e_tab:  # refresh the per-energy coefficients
                i, f = energy_index(e, phys)
                for m in range(n_mat):
                    muen_now[m] = lookup(phys.muen_rho, m, i, f)
                mu_max = 0.0
                for k in range(n_reg):
                    mu_reg[k] = lookup(phys.mu_rho, region_mat[k], i, f) * region_rho[k] / MM_PER_CM
                    mu_max = max(mu_max, mu_reg[k])
                e_tab = e
            s = -math.log(uniform(state)) / mu_max
            if not analog:
                score_segment_band(
                    px, py, pz, ux, uy, uz, s, e, edges_mm, score_mat, muen_now, tally, band_cos
                )
            px += s * ux
            py += s * uy
            pz += s * uz
            r2 = px * px + py * py + pz * pz
            if r2 >= r_out2:
                balance[ESCAPED] += e
                break
            k = 0
            while k < n_reg - 1 and r2 >= region_r_mm[k] * region_r_mm[k]:
                k += 1
            if uniform(state) * mu_max > mu_reg[k]:
                continue  # virtual collision
            e_out, ux, uy, uz, e_loc = interact(e, region_mat[k], ux, uy, uz, phys, state)
            e_sub = 0.0  # a photon below the cut-off deposits its energy here
            if 0.0 < e_out < phys.cutoff_kev:
                e_sub = e_out
                e_out = 0.0
            balance[DEPOSITED] += e_loc + e_sub
            shell = _shell_of(math.sqrt(r2), edges_mm)
            if shell >= 0 and (band_cos >= 1.0 or pz * pz < band_cos * band_cos * r2):
                if analog:
                    tally[shell] += e_loc + e_sub
                elif e_sub > 0.0:  # as kerma-tally units: E x 10 / rho (see scoring.py)
                    tally[shell] += e_sub * MM_PER_CM / region_rho[k]
            if e_out == 0.0:
                break
            e = e_out
