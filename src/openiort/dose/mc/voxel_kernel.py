"""Photon transport in a voxel phantom with an analytic spherical applicator.

Geometry: a box of voxels (material index and mass density per voxel; vacuum outside the
box) and, optionally, a sphere of applicator material centred on the source. Inside the
sphere photons are tracked exactly in its homogeneous medium; outside it Woodcock (delta)
tracking samples tentative collisions against regional majorants (the largest attenuation
coefficient of the media in each cell of 8^3 voxels, :mod:`openiort.dose.mc.majorant`), and a
tentative collision is real with probability mu(voxel) / majorant.

Scoring: the path of every flight is traced through the voxels (Amanatides & Woo 1987
traversal) and each voxel collects the track-length kerma estimator for the dose to its
medium (mu_en/rho of the voxel material, column 0) and for the dose to water in that medium
(mu_en/rho of water, column 1). ``analog=True`` instead books the energy deposited at each
interaction in column 0 (for the energy-conservation check); it needs no walk, the voxel of
a flight's end point is computed directly (the box is convex: a flight ending outside it has
left it). The walk is incremental (precomputed reciprocals of the direction cosines and voxel
sizes, steps left per axis instead of bounds tests, kerma factors E x mu_en/rho per medium
refreshed only when the energy changes), and its tally additions are deferred a few steps behind
a prefetch of their cache line (:mod:`openiort.dose.mc.tally_queue`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from openiort.dose.mc.constants import MM_PER_CM
from openiort.dose.mc.dda import axis_setup, reciprocal
from openiort.dose.mc.hdr_capsule import CapsuleArrays, through_capsule
from openiort.dose.mc.interactions import energy_index, interact, lookup
from openiort.dose.mc.kernel_common import (
    BLOCKED,
    DEPOSITED,
    EMITTED,
    ESCAPED,
    batch_rotation,
    emit_stratified,
)
from openiort.dose.mc.majorant import ClassMajorants, tentative_flight
from openiort.dose.mc.physics import PhysArrays
from openiort.dose.mc.rng import photon_state, uniform
from openiort.dose.mc.sources import SourceArrays
from openiort.dose.mc.tally_queue import QUEUE_SIZE, queue_add, queue_flush

_INF = 1e30


class Walk(NamedTuple):
    """What the scoring walk reads and writes besides the ray."""

    lo: np.ndarray  # lower corner of the box (x, y, z, mm)
    sp: np.ndarray  # voxel size
    inv_sp: np.ndarray
    shape_xyz: np.ndarray  # (nx, ny, nz)
    mat: np.ndarray  # material of each voxel, flat [z, y, x]
    k_med: np.ndarray  # E x mu_en/rho of each medium at the current energy
    tally: np.ndarray  # (n_voxels, 2) kerma tallies: dose to medium, dose to water
    q_voxel: np.ndarray  # the tally queue (tally_queue.py)
    q_value: np.ndarray


@njit(cache=True, inline="always")
def score_walk(
    px: float,
    py: float,
    pz: float,
    inv_ux: float,
    inv_uy: float,
    inv_uz: float,
    s: float,
    walk: Walk,
    k_water: float,
    queued: int,
) -> tuple[int, int]:
    """Walk the voxels along a flight of length ``s`` from ``p`` and score its track-length
    kerma: ``k_med[mat[v]] * l`` (dose to medium) and ``k_water * l`` (dose to water) in each
    voxel ``v`` crossed over a length ``l`` (Amanatides & Woo 1987, incremental DDA). The
    additions go through the tally queue (``queued`` additions so far).

    ``inv_u*`` are the reciprocals of the direction cosines (0 where a cosine is 0).
    Returns the flat index of the voxel where the flight ends (-1 if it leaves the box) and the
    new count of queued additions.
    """
    lo = walk.lo
    sp = walk.sp
    inv_sp = walk.inv_sp
    nx = walk.shape_xyz[0]
    ny = walk.shape_xyz[1]
    nz = walk.shape_xyz[2]
    mat = walk.mat
    k_med = walk.k_med
    tally = walk.tally
    q_voxel = walk.q_voxel
    q_value = walk.q_value
    ix = math.floor((px - lo[0]) * inv_sp[0])
    iy = math.floor((py - lo[1]) * inv_sp[1])
    iz = math.floor((pz - lo[2]) * inv_sp[2])
    if ix < 0 or iy < 0 or iz < 0 or ix >= nx or iy >= ny or iz >= nz:
        return -1, queued
    tx, dtx, stx = axis_setup(px, inv_ux, lo[0], sp[0], ix)
    ty, dty, sty = axis_setup(py, inv_uy, lo[1], sp[1], iy)
    tz, dtz, stz = axis_setup(pz, inv_uz, lo[2], sp[2], iz)
    # the walk stops at an index of -1 or n on each axis: count the steps left instead
    left_x = (nx - 1 - ix) if stx > 0 else ix
    left_y = (ny - 1 - iy) if sty > 0 else iy
    left_z = (nz - 1 - iz) if stz > 0 else iz
    t = 0.0
    v = (iz * ny + iy) * nx + ix
    sv_y = sty * nx
    sv_z = stz * nx * ny
    # Three near-identical branches on purpose: choosing the axis once and stepping it in a
    # second branch measured 5 % slower (1.36 vs 1.43 million histories/s/core).
    while True:
        if tx <= ty and tx <= tz:
            if tx >= s:
                break
            length = tx - t
            queued = queue_add(
                tally, q_voxel, q_value, queued, v, k_med[mat[v]] * length, k_water * length
            )
            t = tx
            if left_x == 0:
                return -1, queued
            left_x -= 1
            tx += dtx
            v += stx
        elif ty <= tz:
            if ty >= s:
                break
            length = ty - t
            queued = queue_add(
                tally, q_voxel, q_value, queued, v, k_med[mat[v]] * length, k_water * length
            )
            t = ty
            if left_y == 0:
                return -1, queued
            left_y -= 1
            ty += dty
            v += sv_y
        else:
            if tz >= s:
                break
            length = tz - t
            queued = queue_add(
                tally, q_voxel, q_value, queued, v, k_med[mat[v]] * length, k_water * length
            )
            t = tz
            if left_z == 0:
                return -1, queued
            left_z -= 1
            tz += dtz
            v += sv_z
    length = s - t
    queued = queue_add(tally, q_voxel, q_value, queued, v, k_med[mat[v]] * length, k_water * length)
    return v, queued


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
    if c > 0.0 and b >= 0.0:
        return _INF, _INF  # outside and heading away (saves the square root)
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
def voxel_of(
    px: float, py: float, pz: float, lo: np.ndarray, inv_sp: np.ndarray, nx: int, ny: int, nz: int
) -> int:
    """Flat index of the voxel holding the point, or -1 outside the box."""
    ix = math.floor((px - lo[0]) * inv_sp[0])
    iy = math.floor((py - lo[1]) * inv_sp[1])
    iz = math.floor((pz - lo[2]) * inv_sp[2])
    if ix < 0 or iy < 0 or iz < 0 or ix >= nx or iy >= ny or iz >= nz:
        return -1
    return (iz * ny + iy) * nx + ix


class Workspace(NamedTuple):
    """Work arrays of the photon loop, allocated outside it (it runs without numba's runtime)."""

    state: np.ndarray  # the photon's random-stream state
    k_med: np.ndarray  # (n_materials,)
    inv_sp: np.ndarray  # 1 / voxel size
    inv_cell_mm: np.ndarray  # 1 / majorant cell size
    mu_class: np.ndarray  # (n_classes,)
    class_epoch: np.ndarray  # (n_classes,)
    app_core: np.ndarray  # the applicator sphere less one voxel diagonal
    q_voxel: np.ndarray  # tally queue
    q_value: np.ndarray
    rot: np.ndarray  # the batch's rotation of the direction lattice


# error_model='numpy': no zero-division checks on the hot path (every divisor is guarded
# or positive by construction); about 7 % faster, identical results. _nrt=False: no reference
# counting of arrays (numba's runtime otherwise increments and decrements the counts of the
# arrays handed to inlined helpers, atomically, inside the loops: measured 15-40 % of the
# time); the caller allocates every work array (new_workspace).
@njit(cache=True, nogil=True, error_model="numpy", _nrt=False)  # type: ignore[call-overload]
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
    rho_lo: np.ndarray,
    rho_hi: np.ndarray,
    app: np.ndarray,
    app_mat: int,
    app_rho: float,
    cell_class: np.ndarray,
    class_start: np.ndarray,
    class_members: np.ndarray,
    cell_shape: np.ndarray,
    cell_mm: np.ndarray,
    water: int,
    analog: bool,
    phys: PhysArrays,
    capsule: CapsuleArrays,
    tally: np.ndarray,
    balance: np.ndarray,
    work: Workspace,
) -> None:
    """Transport photons ``first`` to ``stop - 1`` of the batch with ``key`` (``batch_size``
    photons in all, emitted on the batch's rotated direction lattice).

    ``lo``: lower corner of the box (x, y, z, mm); ``sp``: voxel size; ``shape_xyz``: (nx, ny,
    nz); ``mat``/``rho``: flat arrays in [z, y, x] order; ``rho_lo``/``rho_hi``: the smallest and
    largest density of each medium's voxels; ``app``: (cx, cy, cz, radius_mm),
    radius <= 0 for no applicator; ``cell_*``, ``class_*``: the regional majorants
    (:func:`openiort.dose.mc.majorant.majorant_cells`); ``capsule``: the source's core and
    capsule, photons start where they leave it (:mod:`openiort.dose.mc.hdr_capsule`), or
    disabled for a point source; ``work``: from :func:`new_workspace`.
    """
    state = work.state
    k_med = work.k_med  # E x mu_en/rho of each medium at the current energy
    inv_sp = work.inv_sp
    inv_cell_mm = work.inv_cell_mm
    majorants = ClassMajorants(
        work.mu_class, work.class_epoch, class_start, class_members, rho_hi, phys.mu_rho
    )
    app_core = work.app_core
    q_voxel = work.q_voxel  # deferred tally additions (see tally_queue.py)
    q_value = work.q_value
    walk = Walk(lo, sp, inv_sp, shape_xyz, mat, k_med, tally, q_voxel, q_value)
    rot = work.rot
    n_mat = phys.mu_rho.shape[0]
    nx = shape_xyz[0]
    ny = shape_xyz[1]
    nz = shape_xyz[2]
    has_app = app[3] > 0.0
    score = not analog
    epoch = -1  # one epoch per photon energy: class majorants are computed on first use
    queued = 0
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
        if capsule.enabled:
            e_out, sx, sy, sz, vx, vy, vz = through_capsule(e, ux, uy, uz, capsule, state)
            balance[BLOCKED] += e - e_out
            if e_out == 0.0:
                continue
            e = e_out
            r = capsule.rot
            px += r[0, 0] * sx + r[0, 1] * sy + r[0, 2] * sz
            py += r[1, 0] * sx + r[1, 1] * sy + r[1, 2] * sz
            pz += r[2, 0] * sx + r[2, 1] * sy + r[2, 2] * sz
            ux = r[0, 0] * vx + r[0, 1] * vy + r[0, 2] * vz
            uy = r[1, 0] * vx + r[1, 1] * vy + r[1, 2] * vz
            uz = r[2, 0] * vx + r[2, 1] * vy + r[2, 2] * vz
        inside = False
        if has_app:
            ddx = px - app[0]
            ddy = py - app[1]
            ddz = pz - app[2]
            inside = ddx * ddx + ddy * ddy + ddz * ddz < app[3] * app[3]
        e_tab = -1.0
        mu_app = 0.0
        k_water = 0.0
        i = 0
        f = 0.0
        new_direction = True
        inv_ux = 0.0
        inv_uy = 0.0
        inv_uz = 0.0
        while True:
            if e != e_tab:
                i, f = energy_index(e, phys)
                if score:
                    for m in range(n_mat):
                        k_med[m] = e * lookup(phys.muen_rho, m, i, f)
                    k_water = k_med[water]
                mu_app = lookup(phys.mu_rho, app_mat, i, f) * app_rho / MM_PER_CM
                e_tab = e
                epoch += 1
            if new_direction:
                inv_ux = reciprocal(ux)
                inv_uy = reciprocal(uy)
                inv_uz = reciprocal(uz)
                new_direction = False
            # One flight: its length s, then the scored pieces of it, [0, l0] and [a1, a1 + l1]
            # (inside the applicator only the rim next to its surface is scored).
            leave = False
            enter = False
            if inside:
                s = -math.log(uniform(state)) / mu_app
                _, t_out = _sphere_distances(px, py, pz, ux, uy, uz, app)
                if s >= t_out:
                    s = t_out
                    leave = True
                if score:
                    l0 = s
                    a1 = 0.0
                    l1 = 0.0
                    if app_core[3] > 0.0:
                        c_in, c_out = _sphere_distances(px, py, pz, ux, uy, uz, app_core)
                        if c_out < _INF:
                            l0 = 0.0 if c_in >= _INF else min(c_in, s)
                            if c_out < s:
                                a1 = c_out
                                l1 = s - c_out
                    if l0 > 0.0:
                        _, queued = score_walk(
                            px,
                            py,
                            pz,
                            inv_ux,
                            inv_uy,
                            inv_uz,
                            l0,
                            walk,
                            k_water,
                            queued,
                        )
                    if l1 > 0.0:
                        _, queued = score_walk(
                            px + a1 * ux,
                            py + a1 * uy,
                            pz + a1 * uz,
                            inv_ux,
                            inv_uy,
                            inv_uz,
                            l1,
                            walk,
                            k_water,
                            queued,
                        )
                px += s * ux
                py += s * uy
                pz += s * uz
                if leave:
                    inside = False
                    continue
                m = app_mat
                v = -1
            else:
                t_in = _INF
                if has_app:
                    t_in, _ = _sphere_distances(px, py, pz, ux, uy, uz, app)
                s, mu_local = tentative_flight(
                    px,
                    py,
                    pz,
                    inv_ux,
                    inv_uy,
                    inv_uz,
                    -math.log(uniform(state)),
                    t_in,
                    lo,
                    cell_mm,
                    inv_cell_mm,
                    cell_shape,
                    cell_class,
                    epoch,
                    majorants,
                    i,
                    f,
                )
                if s >= t_in:
                    s = t_in
                    enter = True
                if score:
                    v, queued = score_walk(
                        px,
                        py,
                        pz,
                        inv_ux,
                        inv_uy,
                        inv_uz,
                        s,
                        walk,
                        k_water,
                        queued,
                    )
                    px += s * ux
                    py += s * uy
                    pz += s * uz
                else:
                    # the box is convex: a flight that ends outside it has left for good
                    px += s * ux
                    py += s * uy
                    pz += s * uz
                    v = voxel_of(px, py, pz, lo, inv_sp, nx, ny, nz)
                if v < 0:
                    balance[ESCAPED] += e
                    break
                if enter:
                    inside = True
                    continue
                m = mat[v]
                # Real with probability mu(v) / mu_local. The medium's density bounds decide
                # without reading rho[v] (a cache miss) unless the deviate falls between them.
                y = uniform(state) * mu_local
                mu_rho_m = lookup(phys.mu_rho, m, i, f)
                if y > mu_rho_m * rho_hi[m] / MM_PER_CM:
                    continue  # virtual collision
                if y > mu_rho_m * rho_lo[m] / MM_PER_CM and y > mu_rho_m * rho[v] / MM_PER_CM:
                    continue  # virtual collision
            e_out, ux, uy, uz, e_loc = interact(e, m, ux, uy, uz, phys, state)
            new_direction = True
            e_sub = 0.0
            if 0.0 < e_out < phys.cutoff_kev:
                e_sub = e_out
                e_out = 0.0
            balance[DEPOSITED] += e_loc + e_sub
            here = v if v >= 0 else voxel_of(px, py, pz, lo, inv_sp, nx, ny, nz)
            if here >= 0:
                if analog:
                    tally[here, 0] += e_loc + e_sub
                elif e_sub > 0.0:  # in kerma-tally units (E x 10 / rho), see scoring.py
                    kerma = e_sub * MM_PER_CM / (app_rho if inside else rho[here])
                    queued = queue_add(tally, q_voxel, q_value, queued, here, kerma, kerma)
            if e_out == 0.0:
                break
            e = e_out
    queue_flush(tally, q_voxel, q_value, queued)


def new_workspace(
    key: np.uint64,
    n_materials: int,
    n_classes: int,
    sp: np.ndarray,
    cell_mm: np.ndarray,
    app: np.ndarray,
) -> Workspace:
    """Work arrays for one call of :func:`run_voxels` on the batch with ``key``."""
    # core of the applicator: voxels entirely inside it need no score (one voxel diagonal in)
    diagonal = math.sqrt(sp[0] * sp[0] + sp[1] * sp[1] + sp[2] * sp[2])
    app_core = np.array([app[0], app[1], app[2], max(app[3] - diagonal, 0.0)])
    return Workspace(
        state=np.empty(1, dtype=np.uint64),
        k_med=np.empty(n_materials),
        inv_sp=1.0 / sp,
        inv_cell_mm=1.0 / cell_mm,
        mu_class=np.zeros(n_classes),
        class_epoch=np.full(n_classes, -1, dtype=np.int64),
        app_core=app_core,
        q_voxel=np.zeros(QUEUE_SIZE, dtype=np.int64),
        q_value=np.zeros((QUEUE_SIZE, 2)),
        rot=batch_rotation(key),
    )
