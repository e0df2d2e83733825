"""Grid traversal along a ray (Amanatides & Woo 1987): per-axis set-up shared by the kernels."""

from __future__ import annotations

from numba import njit

NEVER_MM = 1e30  # distance to the next plane of an axis the ray runs parallel to


@njit(cache=True, inline="always")
def reciprocal(u: float) -> float:
    """1/u, or 0 for a direction cosine of 0 (the axis never steps)."""
    return 1.0 / u if u != 0.0 else 0.0


@njit(cache=True, inline="always")
def axis_setup(p: float, inv_u: float, lo: float, d: float, i: int) -> tuple[float, float, int]:
    """For one axis of a grid with planes at ``lo + k d``: distance along the ray from ``p``
    (in cell ``i``) to the next plane, distance between planes, and the index step (+1, -1, or
    0 when ``inv_u`` is 0)."""
    if inv_u > 0.0:
        return (lo + (i + 1) * d - p) * inv_u, d * inv_u, 1
    if inv_u < 0.0:
        return (lo + i * d - p) * inv_u, -d * inv_u, -1
    return NEVER_MM, NEVER_MM, 0
