"""Compiled helpers shared by the geometry kernels: source sampling and energy bookkeeping."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from openiort.dose.mc.guide import guided_search
from openiort.dose.mc.interactions import TWO_PI, isotropic
from openiort.dose.mc.rng import mix64, uniform
from openiort.dose.mc.sources import SourceArrays

_ROTATION_SALT = np.uint64(0x5851F42D4C957F2D)  # any fixed odd constant: separates this stream
_GOLDEN_FRACTION = (math.sqrt(5.0) - 1.0) / 2.0  # azimuthal step of the Fibonacci lattice
_ENERGY_STEP = (
    math.sqrt(2.0) - 1.0
)  # energy lattice step: irrational and unrelated to the golden ratio

# Slots of the per-batch energy balance array (keV).
EMITTED, DEPOSITED, ESCAPED, BLOCKED = 0, 1, 2, 3
BALANCE_SLOTS = 4


@njit(cache=True, inline="always")
def sample_energy(src: SourceArrays, state: np.ndarray) -> float:
    """Energy from the binned spectrum, uniform within the bin."""
    return energy_at(src, uniform(state))


@njit(cache=True, inline="always")
def energy_at(src: SourceArrays, y: float) -> float:
    """Energy at cumulative probability ``y`` (inverse CDF, uniform within the bin)."""
    cdf = src.cdf
    steps = src.cdf_guide.shape[0] - 1  # the guide spans [0, 1]
    lo = guided_search(cdf, y, src.cdf_guide, steps, cdf.shape[0] - 1)
    dp = cdf[lo + 1] - cdf[lo]
    frac = (y - cdf[lo]) / dp if dp > 0 else 0.5
    return src.edges_kev[lo] + frac * (src.edges_kev[lo + 1] - src.edges_kev[lo])


@njit(cache=True, inline="always")
def emit(src: SourceArrays, state: np.ndarray) -> tuple[float, float, float, float, bool]:
    """Energy and (random) direction of a new photon, and whether the shadow cone blocks it."""
    e = sample_energy(src, state)
    ux, uy, uz = isotropic(state)
    blocked = ux * src.shadow_ux + uy * src.shadow_uy + uz * src.shadow_uz > src.shadow_cos
    return e, ux, uy, uz, blocked


@njit(cache=True)
def batch_rotation(key: np.uint64) -> np.ndarray:
    """A uniformly random rotation (Shoemake's quaternion method) drawn from the batch key."""
    state = np.empty(1, dtype=np.uint64)
    state[0] = mix64(key ^ _ROTATION_SALT)
    u1 = uniform(state)
    u2 = TWO_PI * uniform(state)
    u3 = TWO_PI * uniform(state)
    a = math.sqrt(1.0 - u1)
    b = math.sqrt(u1)
    qx, qy, qz, qw = a * math.sin(u2), a * math.cos(u2), b * math.sin(u3), b * math.cos(u3)
    rot = np.empty((3, 3))
    rot[0, 0] = 1 - 2 * (qy * qy + qz * qz)
    rot[0, 1] = 2 * (qx * qy - qz * qw)
    rot[0, 2] = 2 * (qx * qz + qy * qw)
    rot[1, 0] = 2 * (qx * qy + qz * qw)
    rot[1, 1] = 1 - 2 * (qx * qx + qz * qz)
    rot[1, 2] = 2 * (qy * qz - qx * qw)
    rot[2, 0] = 2 * (qx * qz - qy * qw)
    rot[2, 1] = 2 * (qy * qz + qx * qw)
    rot[2, 2] = 1 - 2 * (qx * qx + qy * qy)
    return rot


@njit(cache=True, inline="always")
def emit_stratified(
    src: SourceArrays, state: np.ndarray, i: int, n: int, rot: np.ndarray, offset: float
) -> tuple[float, float, float, float, bool]:
    """Like :func:`emit`, with the direction of photon ``i`` of ``n`` on a spherical Fibonacci
    lattice turned by the batch's random rotation.

    Each direction is uniform on the sphere (the rotation is), so the estimate stays unbiased,
    and the batches stay independent (the history-by-batch uncertainty stays valid); within a
    batch the directions cover the sphere evenly, which removes most of the scatter in how many
    primary photons head for each voxel (stratified sampling).
    """
    t = i * _ENERGY_STEP + offset
    e = energy_at(src, t - math.floor(t))
    z = 1.0 - (2.0 * i + 1.0) / n
    r = math.sqrt(max(0.0, 1.0 - z * z))
    t = i * _GOLDEN_FRACTION
    phi = TWO_PI * (t - math.floor(t))
    x = r * math.cos(phi)
    y = r * math.sin(phi)
    ux = rot[0, 0] * x + rot[0, 1] * y + rot[0, 2] * z
    uy = rot[1, 0] * x + rot[1, 1] * y + rot[1, 2] * z
    uz = rot[2, 0] * x + rot[2, 1] * y + rot[2, 2] * z
    blocked = ux * src.shadow_ux + uy * src.shadow_uy + uz * src.shadow_uz > src.shadow_cos
    return e, ux, uy, uz, blocked
