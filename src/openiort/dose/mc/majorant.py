"""Regional majorants for Woodcock (delta) tracking in voxel phantoms.

Delta tracking samples tentative collisions against a majorant of the attenuation coefficient
and keeps each with probability mu(voxel) / majorant. With one majorant for the whole phantom,
a single dense medium (cortical bone: ten times the attenuation of breast tissue at 20 keV)
makes nine in ten tentative collisions in soft tissue virtual, and they cost as much as real
ones to find. Here the phantom is divided into cells of a few voxels; each cell's majorant is
the largest attenuation of the media present in it, and a flight consumes its sampled optical
depth cell by cell along the ray. Tentative collisions then form a Poisson process whose rate
is piecewise constant along the ray, thinned by mu(voxel) / rate: still delta tracking
(Woodcock et al. 1965, ANL-7050), exact for any majorant that bounds the attenuation in its
cell.

A cell's medium set is stored as a class (the distinct sets found in the phantom, usually a few
dozen); at a given photon energy a class's majorant is max over its media of
``mu/rho(E) x rho_max(medium)``, evaluated on first use at that energy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numba import njit
from numpy.typing import NDArray

from openiort.dose.mc.constants import MM_PER_CM
from openiort.dose.mc.dda import axis_setup
from openiort.dose.mc.interactions import lookup

# Cell edge in voxels: majorants local enough, few cell steps per flight (demo case: 4 was no
# faster than 8, 0.88 vs 0.91 million histories/s/core).
CELL_VOXELS = 8
# One majorant for all cells unless a cell's would be lower by this factor at some energy. The
# walk through the cells costs more than the virtual collisions it saves when media attenuate
# alike: breast cube (skin <= 1.6 x breast 20/80) 1.42-1.45 million histories/s/core with one
# majorant, 1.29-1.36 million with cells.
SINGLE_CLASS_RATIO = 2.0
LEFT_THE_BOX_MM = 1e9  # flight length for a photon that leaves the phantom box


@dataclass(frozen=True)
class MajorantCells:
    """Cell classes of a phantom, in the layout the kernel reads."""

    cell_class: NDArray[np.int32]  # (ncz * ncy * ncx,) class of each cell, [z, y, x] order
    class_start: NDArray[np.int64]  # (n_classes + 1,): class k is members[start[k]:start[k+1]]
    class_members: NDArray[np.int64]  # material indices
    shape_xyz: NDArray[np.int64]  # (ncx, ncy, ncz)
    cell_mm: NDArray[np.float64]  # cell edge lengths (x, y, z)


def majorant_cells(
    mat_zyx: NDArray[np.uint8],
    mu_rho_cm2_g: NDArray[np.float64],
    rho_hi_g_cm3: NDArray[np.float64],
    spacing_mm_xyz: NDArray[np.float64],
    cell_voxels: int = CELL_VOXELS,
) -> MajorantCells:
    """Classes of the media present in each cell of ``cell_voxels``^3 voxels (the last cells
    along an axis may hang over the box: the part outside holds nothing).

    ``mu_rho_cm2_g``: (n_materials, n_energies) attenuation table; ``rho_hi_g_cm3``: largest
    density of each material. If one majorant for the whole phantom is nowhere more than
    ``SINGLE_CLASS_RATIO`` times a cell's own (media of similar attenuation), every cell gets
    the one class and the kernel does not walk through the cells.
    """
    n_materials = mu_rho_cm2_g.shape[0]
    if not 0 < n_materials < 256:
        raise ValueError(f"1 to 255 materials can be indexed by uint8 voxels, got {n_materials}")
    nz, ny, nx = mat_zyx.shape
    ncz, ncy, ncx = (math.ceil(n / cell_voxels) for n in (nz, ny, nx))
    # pad with an index that is no material: the part of a cell outside the box holds nothing
    padded = np.full(
        (ncz * cell_voxels, ncy * cell_voxels, ncx * cell_voxels), n_materials, np.uint8
    )
    padded[:nz, :ny, :nx] = mat_zyx
    blocks = padded.reshape(ncz, cell_voxels, ncy, cell_voxels, ncx, cell_voxels)
    present = np.zeros((ncz, ncy, ncx, n_materials), dtype=bool)
    for m in range(n_materials):
        present[..., m] = (blocks == m).any(axis=(1, 3, 5))
    sets, cell_class = np.unique(present.reshape(-1, n_materials), axis=0, return_inverse=True)
    attenuation = mu_rho_cm2_g * rho_hi_g_cm3[:, None]  # (n_materials, n_energies)
    curves = np.array([np.max(attenuation[row], axis=0, initial=0.0) for row in sets])
    if np.all(curves.max(axis=0) <= SINGLE_CLASS_RATIO * curves):
        sets = np.asarray(sets.any(axis=0, keepdims=True))
        cell_class = np.zeros_like(cell_class)
    class_start = np.concatenate(([0], np.cumsum(sets.sum(axis=1)))).astype(np.int64)
    class_members = np.nonzero(sets)[1].astype(np.int64)  # row-major: grouped by class
    return MajorantCells(
        cell_class=cell_class.reshape(-1).astype(np.int32),
        class_start=class_start,
        class_members=class_members,
        shape_xyz=np.array([ncx, ncy, ncz], dtype=np.int64),
        cell_mm=np.asarray(spacing_mm_xyz, dtype=np.float64) * cell_voxels,
    )


class ClassMajorants(NamedTuple):
    """The kernel's view of the cell classes: members, and majorants cached per energy."""

    mu_class: np.ndarray  # (n_classes,) majorant (1/mm) at the energy of class_epoch
    class_epoch: np.ndarray  # (n_classes,) energy epoch each majorant was computed for
    class_start: np.ndarray
    class_members: np.ndarray
    rho_hi: np.ndarray  # largest density of each material
    mu_rho: np.ndarray  # (n_materials, n_energies) cm^2/g


@njit(cache=True, inline="always")
def class_majorant(k: int, epoch: int, c: ClassMajorants, i: int, f: float) -> float:
    """Majorant (1/mm) of class ``k`` at the energy of grid index ``i`` and weight ``f``;
    computed once per ``epoch`` (one epoch per photon energy)."""
    if c.class_epoch[k] != epoch:
        mu = 0.0
        for j in range(c.class_start[k], c.class_start[k + 1]):
            m = c.class_members[j]
            mu = max(mu, lookup(c.mu_rho, m, i, f) * c.rho_hi[m] / MM_PER_CM)
        c.mu_class[k] = mu
        c.class_epoch[k] = epoch
    return c.mu_class[k]


@njit(cache=True, inline="always")
def tentative_flight(
    px: float,
    py: float,
    pz: float,
    inv_ux: float,
    inv_uy: float,
    inv_uz: float,
    tau: float,
    cap: float,
    lo: np.ndarray,
    cell_mm: np.ndarray,
    inv_cell_mm: np.ndarray,
    cell_shape: np.ndarray,
    cell_class: np.ndarray,
    epoch: int,
    majorants: ClassMajorants,
    i: int,
    f: float,
) -> tuple[float, float]:
    """Distance to the next tentative collision for optical depth ``tau`` (in units of the
    regional majorant) from ``p`` (inside the box) and the majorant there.

    ``inv_u*``: reciprocals of the direction cosines (0 for a cosine of 0). Returns
    ``(cap, 0)`` if the flight reaches ``cap`` first and ``(LEFT_THE_BOX_MM, 0)`` if it leaves
    the cells (and so the box) first.
    """
    limit = min(cap, LEFT_THE_BOX_MM)
    if majorants.class_start.shape[0] == 2:  # one class: one majorant, no walk through cells
        mu = class_majorant(0, epoch, majorants, i, f)
        if tau < mu * limit:
            return tau / mu, mu
        return limit, 0.0
    ncx = cell_shape[0]
    ncy = cell_shape[1]
    ncz = cell_shape[2]
    ix = min(max(math.floor((px - lo[0]) * inv_cell_mm[0]), 0), ncx - 1)
    iy = min(max(math.floor((py - lo[1]) * inv_cell_mm[1]), 0), ncy - 1)
    iz = min(max(math.floor((pz - lo[2]) * inv_cell_mm[2]), 0), ncz - 1)
    tx, dtx, stx = axis_setup(px, inv_ux, lo[0], cell_mm[0], ix)
    ty, dty, sty = axis_setup(py, inv_uy, lo[1], cell_mm[1], iy)
    tz, dtz, stz = axis_setup(pz, inv_uz, lo[2], cell_mm[2], iz)
    t = 0.0
    while True:
        mu = class_majorant(cell_class[(iz * ncy + iy) * ncx + ix], epoch, majorants, i, f)
        end = min(tx, ty, tz, cap)
        if tau < mu * (end - t):
            return t + tau / mu, mu
        if end >= cap:
            return cap, 0.0
        tau -= mu * (end - t)
        t = end
        if tx <= ty and tx <= tz:
            ix += stx
            tx += dtx
            if ix < 0 or ix >= ncx:
                return LEFT_THE_BOX_MM, 0.0
        elif ty <= tz:
            iy += sty
            ty += dty
            if iy < 0 or iy >= ncy:
                return LEFT_THE_BOX_MM, 0.0
        else:
            iz += stz
            tz += dtz
            if iz < 0 or iz >= ncz:
                return LEFT_THE_BOX_MM, 0.0
