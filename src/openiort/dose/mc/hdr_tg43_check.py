"""The modelled Ir-192 source in water against its consensus TG-43 dose.

The source (core, capsule and cable, :mod:`openiort.dose.mc.hdr_capsule`) sits at the centre of
a water cube, its axis along +z or any direction; the Monte Carlo dose per emitted photon, made absolute by the
model's own S_K per photon, is divided voxel by voxel by the TG-43 dose of the same S_K
(:mod:`openiort.dose.tg43`, the source's consensus Lambda, g_L and F) averaged over the voxel,
and the ratios are averaged in bins of distance r and polar angle theta (from the axis, 0 at
the tip). A ratio of 1 at every (r, theta) means the model reproduces the dose-rate constant,
the radial dose function and the anisotropy function together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from openiort.anatomy.phantom import Phantom
from openiort.dose.mc.hdr_capsule import (
    AirKermaStrength,
    air_kerma_strength_per_photon,
    capsule_arrays,
    source_emission,
)
from openiort.dose.mc.hdr_engine import build_hdr_voxel_problem, ir192_source_arrays
from openiort.dose.mc.voxel import run_problem
from openiort.dose.tg43 import dose_rate_along_away
from openiort.grid import Grid

FloatArray = NDArray[np.float64]
CGY_PER_GY = 100.0
MM_PER_CM = 10.0
#: Sub-voxel points per axis over which the TG-43 dose is averaged (the voxel's own average,
#: as the Monte Carlo scores it).
SUBVOXEL_POINTS = 3


@dataclass(frozen=True)
class Tg43Comparison:
    """Mean Monte Carlo / TG-43 ratio per (r, theta) bin, with the bins' voxel counts."""

    r_edges_mm: FloatArray
    theta_edges_deg: FloatArray
    ratio: FloatArray  # (n_r, n_theta); nan where a bin holds no voxel
    voxels: NDArray[np.int64]
    #: statistical, of each bin's mean, with the voxels taken as independent: a lower bound
    #: (neighbouring voxels share photons)
    rel_uncertainty: FloatArray
    air_kerma_strength: AirKermaStrength
    histories: int


def water_cube(half_width_mm: float, spacing_mm: float) -> Phantom:
    grid = Grid.centred((0.0, 0.0, 0.0), (2.0 * half_width_mm,) * 3, spacing_mm)
    return Phantom(
        grid=grid,
        material_ids=np.ones(grid.shape, np.uint8),
        density_g_cm3=np.ones(grid.shape, np.float32),
        materials=("air", "water"),
        structures={},
    )


def _along_away_mm(
    x: FloatArray, y: FloatArray, z: FloatArray, axis: FloatArray
) -> tuple[FloatArray, FloatArray]:
    along = x * axis[0] + y * axis[1] + z * axis[2]
    r2 = x * x + y * y + z * z
    return along, np.sqrt(np.maximum(r2 - along * along, 0.0))


def _tg43_voxel_mean(
    source_id: str, x: FloatArray, y: FloatArray, z: FloatArray, axis: FloatArray, h_mm: float
) -> FloatArray:
    """TG-43 dose rate per U (cGy/h) averaged over the voxels of side ``h_mm`` at x, y, z."""
    offsets = (np.arange(SUBVOXEL_POINTS) + 0.5) / SUBVOXEL_POINTS - 0.5
    total = np.zeros_like(x)
    for dx in offsets * h_mm:
        for dy in offsets * h_mm:
            for dz in offsets * h_mm:
                along, away = _along_away_mm(x + dx, y + dy, z + dz, axis)
                total += dose_rate_along_away(source_id, along / MM_PER_CM, away / MM_PER_CM)
    return total / SUBVOXEL_POINTS**3


def compare_with_tg43(
    source_id: str,
    r_edges_mm: FloatArray,
    theta_edges_deg: FloatArray,
    *,
    half_width_mm: float,
    spacing_mm: float,
    histories: int,
    seed: int = 1,
    sk_histories: int = 4_000_000,
    axis: tuple[float, float, float] = (0.0, 0.0, 1.0),
) -> Tg43Comparison:
    """Run the source (its axis along ``axis``) in a water cube and bin the dose ratio to
    TG-43 (module docstring)."""
    phantom = water_cube(half_width_mm, spacing_mm)
    grid = phantom.grid
    unit = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    problem = build_hdr_voxel_problem(
        phantom, (0.0, 0.0, 0.0), capsule=capsule_arrays(source_id, unit)
    )
    result = run_problem(problem, grid.shape, grid.voxel_volume_cc * 1000.0, histories, seed)
    emission = source_emission(source_id, ir192_source_arrays(), sk_histories, seed=seed + 1)
    sk = air_kerma_strength_per_photon(emission)
    z_mm, y_mm, x_mm = np.meshgrid(*grid.axes_mm(), indexing="ij")
    r_mm = np.sqrt(x_mm**2 + y_mm**2 + z_mm**2)
    keep = (r_mm >= r_edges_mm[0]) & (r_mm < r_edges_mm[-1])
    x, y, z, r = x_mm[keep], y_mm[keep], z_mm[keep], r_mm[keep]
    # TG-43 rate per U (cGy/h) x S_K per photon (U h) = Gy per photon, x 1/100
    tg43 = _tg43_voxel_mean(source_id, x, y, z, unit, spacing_mm)
    tg43 *= sk.ugy_m2_per_photon / CGY_PER_GY
    ratio = result.dose_medium_gy_per_photon[keep] / tg43
    unc = result.rel_unc_medium[keep]
    along, _ = _along_away_mm(x, y, z, unit)
    theta = np.degrees(np.arccos(np.clip(along / r, -1.0, 1.0)))
    ir = np.digitize(r, r_edges_mm) - 1
    it = np.clip(np.digitize(theta, theta_edges_deg) - 1, 0, len(theta_edges_deg) - 2)
    shape = (len(r_edges_mm) - 1, len(theta_edges_deg) - 1)
    counts = np.zeros(shape, np.int64)
    sums = np.zeros(shape)
    var = np.zeros(shape)
    np.add.at(counts, (ir, it), 1)
    np.add.at(sums, (ir, it), ratio)
    np.add.at(var, (ir, it), (ratio * unc) ** 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / counts
        rel = np.sqrt(var) / sums
    return Tg43Comparison(
        np.asarray(r_edges_mm, float),
        np.asarray(theta_edges_deg, float),
        mean,
        counts,
        rel,
        sk,
        result.histories,
    )
