"""A beam's 3D dose in water from its measured depth dose and off-axis profiles.

A department measures, per applicator, bevel and energy, the clinical-axis PDD and off-axis
profiles at several depths (x: the direction a bevelled beam leans to; y: across it). The 3D
dose is their product, the profiles interpolated linearly in depth between the measured depths
(held beyond the first and last):

    D(x, y, d) = PDD(d) x OAR_x(x; d) x OAR_y(y; d)

It is sampled on a uniform grid (1 mm laterally, 0.5 mm in depth) and returned as an
:class:`~openiort.devices.electron.beams.ElectronBeam`, so that the planner reads R90, isodose
widths and the dose in the phantom from it as from 3D Monte Carlo data. The product is exact on
the two measured axes; off them it is the usual separable approximation of measured beam data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from openiort.devices.electron.beams import ElectronBeam

FloatArray = NDArray[np.float64]
LATERAL_STEP_MM = 1.0
DEPTH_STEP_MM = 0.5


@dataclass(frozen=True)
class Profile:
    """Off-axis ratios (percent of the clinical axis) at one depth along one axis."""

    depth_mm: float
    off_axis_mm: FloatArray
    relative_pct: FloatArray


@dataclass(frozen=True)
class MeasuredBeam:
    """One beam's measured tables, as read and checked from the machine files."""

    applicator_cm: int
    bevel_deg: int
    energy_mev: int
    depth_mm: FloatArray
    pdd_pct: FloatArray
    profiles_x: tuple[Profile, ...]
    profiles_y: tuple[Profile, ...]  # empty: the x profiles made symmetric


def _symmetric(p: Profile) -> Profile:
    half = float(min(-p.off_axis_mm[0], p.off_axis_mm[-1]))
    s = np.arange(-half, half + 1e-9, LATERAL_STEP_MM)
    values = 0.5 * (
        np.interp(s, p.off_axis_mm, p.relative_pct) + np.interp(-s, p.off_axis_mm, p.relative_pct)
    )
    return Profile(p.depth_mm, s, values)


def _ratios(profiles: tuple[Profile, ...], axis: FloatArray, depth: FloatArray) -> FloatArray:
    """Off-axis ratio [i_axis, i_depth] (fraction), linear in depth between measured depths."""
    at = np.array([np.interp(axis, p.off_axis_mm, p.relative_pct) / 100.0 for p in profiles])
    depths = np.array([p.depth_mm for p in profiles])
    out = np.empty((axis.size, depth.size))
    for k, d in enumerate(depth):
        j = int(np.searchsorted(depths, d))
        if j <= 0:
            out[:, k] = at[0]
        elif j >= depths.size:
            out[:, k] = at[-1]
        else:
            t = (d - depths[j - 1]) / (depths[j] - depths[j - 1])
            out[:, k] = (1 - t) * at[j - 1] + t * at[j]
    return np.maximum(out, 0.0)


def _common_axis(profiles: tuple[Profile, ...]) -> FloatArray:
    lo = max(float(p.off_axis_mm[0]) for p in profiles)
    hi = min(float(p.off_axis_mm[-1]) for p in profiles)
    start = np.ceil(lo / LATERAL_STEP_MM) * LATERAL_STEP_MM
    return np.arange(start, hi + 1e-9, LATERAL_STEP_MM)


def build_beam(measured: MeasuredBeam, data_sha256: str, surface_depth_mm: float) -> ElectronBeam:
    """The 3D beam of ``measured`` (relative dose; the output factor comes from the table)."""
    m = measured
    py = m.profiles_y or tuple(_symmetric(p) for p in m.profiles_x)
    x = _common_axis(m.profiles_x)
    y = _common_axis(py)
    depth = np.arange(DEPTH_STEP_MM, float(m.depth_mm[-1]) + 1e-9, DEPTH_STEP_MM)
    pdd = np.interp(depth, m.depth_mm, m.pdd_pct) / 100.0
    dose = (pdd[None, None, :] * _ratios(m.profiles_x, x, depth)[:, None, :]) * _ratios(
        py, y, depth
    )[None, :, :]
    return ElectronBeam(
        applicator_cm=m.applicator_cm,
        bevel_deg=m.bevel_deg,
        energy_mev=m.energy_mev,
        dose_mc=np.ascontiguousarray(dose, dtype=np.float32),
        origin_mm=(float(x[0]), float(y[0]), DEPTH_STEP_MM),
        spacing_mm=(LATERAL_STEP_MM, LATERAL_STEP_MM, DEPTH_STEP_MM),
        rel_uncertainty_at_max=0.0,  # measured data: no Monte Carlo statistics
        histories=0.0,
        data_sha256=data_sha256,
        surface_dose_depth_mm=surface_depth_mm,
    )


def depth_of(depth_mm: FloatArray, pdd_pct: FloatArray, pct: float) -> float | None:
    """Depth beyond the maximum where a PDD first falls to ``pct`` (None: it does not)."""
    im = int(np.argmax(pdd_pct))
    below = np.nonzero(pdd_pct[im:] < pct)[0]
    if below.size == 0:
        return None
    j = im + int(below[0])
    d0, d1, p0, p1 = depth_mm[j - 1], depth_mm[j], pdd_pct[j - 1], pdd_pct[j]
    return float(d0 + (p0 - pct) * (d1 - d0) / (p0 - p1))
