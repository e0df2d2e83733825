"""Photon transport in a voxel phantom with an analytic spherical applicator.

Geometry: a box of voxels (material index and mass density per voxel; vacuum outside the
box) and, optionally, a sphere of applicator material centred on the source. Inside the
sphere photons are tracked exactly in its homogeneous medium; outside it Woodcock (delta)
tracking samples tentative collisions against the largest attenuation coefficient of the
voxel media, and a tentative collision is real with probability mu(voxel) / mu_max.

Scoring: the path of every flight is traced through the voxels (Amanatides & Woo 1987
traversal) and each voxel collects the track-length kerma estimator for the dose to its
medium (mu_en/rho of the voxel material, column 0) and for the dose to water in that medium
(mu_en/rho of water, column 1). ``analog=True`` instead books the energy deposited at each
interaction in column 0 (for the energy-conservation check).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from openiort.dose.mc.interactions import energy_index, interact, lookup
from openiort.dose.mc.kernel_common import (
    BLOCKED,
    DEPOSITED,
    EMITTED,
    ESCAPED,
    batch_rotation,
    emit_stratified,
)
from openiort.dose.mc.physics import PhysArrays
from openiort.dose.mc.rng import photon_state, uniform
from openiort.dose.mc.sources import SourceArrays

MM_PER_CM = 10.0
_INF = 1e30


@njit(cache=True, inline="always")
def _axis_setup(p: float, u: float, lo: float, d: float, i: int) -> tuple[float, float, int]:
    """Distance to the next boundary, distance between boundaries and step along one axis."""
    if u > 0.0:
        return (lo + (i + 1) * d - p) / u, d / u, 1
    if u < 0.0:
        return (lo + i * d - p) / u, -d / u, -1
    return _INF, _INF, 0


@njit(cache=True, inline="always")
def trace(
    px: float,
    py: float,
    pz: float,
    ux: float,
    uy: float,
    uz: float,
    s: float,
    lo: np.ndarray,
    sp: np.ndarray,
    nx: int,
    ny: int,
    nz: int,
    mat: np.ndarray,
    score: bool,
    weight: float,
    muen_now: np.ndarray,
    muen_w: float,
    tally: np.ndarray,
) -> int:
    """Walk the voxels along a flight of length ``s``; score if asked.

    Returns the flat index of the voxel where the flight ends, or -1 if it leaves the box.
    """
    ix = math.floor((px - lo[0]) / sp[0])
    iy = math.floor((py - lo[1]) / sp[1])
    iz = math.floor((pz - lo[2]) / sp[2])
    if ix < 0 or iy < 0 or iz < 0 or ix >= nx or iy >= ny or iz >= nz:
        return -1
    tx, dtx, stx = _axis_setup(px, ux, lo[0], sp[0], ix)
    ty, dty, sty = _axis_setup(py, uy, lo[1], sp[1], iy)
    tz, dtz, stz = _axis_setup(pz, uz, lo[2], sp[2], iz)
    t = 0.0
    w_w = weight * muen_w
    v = (iz * ny + iy) * nx + ix
    sv_x = stx
    sv_y = sty * nx
    sv_z = stz * nx * ny
    while True:
        if tx <= ty and tx <= tz:
            t_next = tx
            axis = 0
        elif ty <= tz:
            t_next = ty
            axis = 1
        else:
            t_next = tz
            axis = 2
        seg = (s if t_next >= s else t_next) - t
        if score:
            tally[v, 0] += weight * muen_now[mat[v]] * seg
            tally[v, 1] += w_w * seg
        if t_next >= s:
            return v
        t = t_next
        if axis == 0:
            ix += stx
            tx += dtx
            v += sv_x
            if ix < 0 or ix >= nx:
                return -1
        elif axis == 1:
            iy += sty
            ty += dty
            v += sv_y
            if iy < 0 or iy >= ny:
                return -1
        else:
            iz += stz
            tz += dtz
            v += sv_z
            if iz < 0 or iz >= nz:
                return -1


@njit(cache=True, inline="always")
def _sphere_distances(
    px: float, py: float, pz: float, ux: float, uy: float, uz: float, app: np.ndarray
) -> tuple[float, float]:
    """Distances along the ray to entering and to leaving the applicator sphere (inf if none)."""
    dx = px - app[0]
    dy = py - app[1]
    dz = pz - app[2]
    b = dx * ux + dy * uy + dz * uz
    c = dx * dx + dy * dy + dz * dz - app[3] * app[3]
    disc = b * b - c
    if disc <= 0.0:
        return _INF, _INF
    root = math.sqrt(disc)
    t_in = -b - root
    t_out = -b + root
    if t_out <= 0.0:
        return _INF, _INF
    return (t_in if t_in > 0.0 else _INF), t_out


@njit(cache=True, inline="always")
def _voxel_of(
    px: float, py: float, pz: float, lo: np.ndarray, sp: np.ndarray, nx: int, ny: int, nz: int
) -> int:
    ix = math.floor((px - lo[0]) / sp[0])
    iy = math.floor((py - lo[1]) / sp[1])
    iz = math.floor((pz - lo[2]) / sp[2])
    if ix < 0 or iy < 0 or iz < 0 or ix >= nx or iy >= ny or iz >= nz:
        return -1
    return (iz * ny + iy) * nx + ix


@njit(cache=True, nogil=True)
def run_voxels(
    key: np.uint64,
    first: int,
    stop: int,
    batch_size: int,
    src: SourceArrays,
    src_pos: np.ndarray,
    lo: np.ndarray,
    sp: np.ndarray,
    shape_xyz: np.ndarray,
    mat: np.ndarray,
    rho: np.ndarray,
    app: np.ndarray,
    app_mat: int,
    app_rho: float,
    mu_max_tab: np.ndarray,
    water: int,
    analog: bool,
    phys: PhysArrays,
    tally: np.ndarray,
    balance: np.ndarray,
) -> None:
    """Transport photons ``first`` to ``stop - 1`` of the batch with ``key`` (``batch_size``
    photons in all, emitted on the batch's rotated direction lattice).

    ``lo``: lower corner of the box (x, y, z, mm); ``sp``: voxel size; ``shape_xyz``: (nx, ny,
    nz); ``mat``/``rho``: flat arrays in [z, y, x] order; ``app``: (cx, cy, cz, radius_mm),
    radius <= 0 for no applicator; ``mu_max_tab``: majorant (1/mm) on the energy grid.
    """
    state = np.empty(1, dtype=np.uint64)
    n_mat = phys.mu_rho.shape[0]
    muen_now = np.empty(n_mat)
    nx = shape_xyz[0]
    ny = shape_xyz[1]
    nz = shape_xyz[2]
    has_app = app[3] > 0.0
    score = not analog
    # core of the applicator: voxels entirely inside it need no score (one voxel diagonal in)
    app_core = np.empty(4)
    app_core[:3] = app[:3]
    app_core[3] = max(app[3] - math.sqrt(sp[0] * sp[0] + sp[1] * sp[1] + sp[2] * sp[2]), 0.0)
    rot = batch_rotation(key)
    offset = (
        rot[2, 2] * 0.5 + 0.5
    )  # uniform on (0, 1) for a uniform rotation: the energy lattice shift
    for n in range(first, stop):
        state[0] = photon_state(key, n)
        e, ux, uy, uz, blocked = emit_stratified(src, state, n, batch_size, rot, offset)
        balance[EMITTED] += e
        if blocked:
            balance[BLOCKED] += e
            continue
        px = src_pos[0]
        py = src_pos[1]
        pz = src_pos[2]
        inside = False
        if has_app:
            ddx = px - app[0]
            ddy = py - app[1]
            ddz = pz - app[2]
            inside = ddx * ddx + ddy * ddy + ddz * ddz < app[3] * app[3]
        e_tab = -1.0
        mu_max = 0.0
        mu_app = 0.0
        muen_w = 0.0
        i = 0
        f = 0.0
        while True:
            if e != e_tab:
                i, f = energy_index(e, phys)
                for m in range(n_mat):
                    muen_now[m] = lookup(phys.muen_rho, m, i, f)
                muen_w = muen_now[water]
                mu_max = mu_max_tab[i] + f * (mu_max_tab[i + 1] - mu_max_tab[i])
                mu_app = lookup(phys.mu_rho, app_mat, i, f) * app_rho / MM_PER_CM
                e_tab = e
            # One flight: its length s, then the scored pieces of it, [a0, a0 + l0] and [a1, a1 + l1]
            # (inside the applicator only the rim next to its surface is scored).
            leave = False
            enter = False
            a0 = 0.0
            a1 = 0.0
            l1 = 0.0
            if inside:
                s = -math.log(uniform(state)) / mu_app
                _, t_out = _sphere_distances(px, py, pz, ux, uy, uz, app)
                if s >= t_out:
                    s = t_out
                    leave = True
                l0 = s
                if app_core[3] > 0.0:
                    c_in, c_out = _sphere_distances(px, py, pz, ux, uy, uz, app_core)
                    if c_out < _INF:
                        l0 = 0.0 if c_in >= _INF else min(c_in, s)
                        if c_out < s:
                            a1 = c_out
                            l1 = s - c_out
                pieces = 2 if score else 0
            else:
                s = -math.log(uniform(state)) / mu_max
                if has_app:
                    t_in, _ = _sphere_distances(px, py, pz, ux, uy, uz, app)
                    if s >= t_in:
                        s = t_in
                        enter = True
                l0 = s
                pieces = 1
            v = 0
            for k in range(pieces):
                a = a0 if k == 0 else a1
                ln = l0 if k == 0 else l1
                if ln > 0.0 or not inside:
                    v = trace(
                        px + a * ux,
                        py + a * uy,
                        pz + a * uz,
                        ux,
                        uy,
                        uz,
                        ln,
                        lo,
                        sp,
                        nx,
                        ny,
                        nz,
                        mat,
                        score,
                        e,
                        muen_now,
                        muen_w,
                        tally,
                    )
            if v < 0:
                balance[ESCAPED] += e
                break
            px += s * ux
            py += s * uy
            pz += s * uz
            if inside:
                if leave:
                    inside = False
                    continue
                m = app_mat
            else:
                if enter:
                    inside = True
                    continue
                m = mat[v]
                if uniform(state) * mu_max > lookup(phys.mu_rho, m, i, f) * rho[v] / MM_PER_CM:
                    continue  # virtual collision
            e_out, ux, uy, uz, e_loc = interact(e, m, ux, uy, uz, phys, state)
            e_sub = 0.0
            if 0.0 < e_out < phys.cutoff_kev:
                e_sub = e_out
                e_out = 0.0
            balance[DEPOSITED] += e_loc + e_sub
            here = _voxel_of(px, py, pz, lo, sp, nx, ny, nz)
            if here >= 0:
                if analog:
                    tally[here, 0] += e_loc + e_sub
                elif e_sub > 0.0:  # in kerma-tally units (E x 10 / rho), see scoring.py
                    tally[here, 0] += e_sub * MM_PER_CM / (app_rho if inside else rho[here])
                    tally[here, 1] += e_sub * MM_PER_CM / (app_rho if inside else rho[here])
            if e_out == 0.0:
                break
            e = e_out
