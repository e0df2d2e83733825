"""Binary masks <-> closed planar contours, one plane at a time.

Contours are traced at the 0.5 level of the mask with contourpy's marching squares, so every
contour runs half-way between a voxel centre inside and one outside: filling the polygons of a
plane with the even-odd rule at the voxel centres gives back the mask exactly. Nested contours
are holes (the even-odd convention of RTSTRUCT readers such as dicompyler-core).
"""

from __future__ import annotations

import contourpy
import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


def _drop_collinear(points: FloatArray) -> FloatArray:
    """Remove vertices of a closed polygon that lie on the line through their neighbours."""
    if len(points) < 4:
        return points
    prev = np.roll(points, 1, axis=0)
    nxt = np.roll(points, -1, axis=0)
    cross = (points[:, 0] - prev[:, 0]) * (nxt[:, 1] - points[:, 1]) - (
        points[:, 1] - prev[:, 1]
    ) * (nxt[:, 0] - points[:, 0])
    keep = np.abs(cross) > 1e-9
    return points[keep] if keep.sum() >= 3 else points


def plane_contours(mask_2d: NDArray[np.bool_]) -> list[FloatArray]:
    """Closed polygons (u = column index, v = row index) around the ``True`` region of a plane.

    The first vertex is not repeated at the end; collinear vertices are dropped.
    """
    if not mask_2d.any():
        return []
    padded = np.pad(mask_2d.astype(np.float64), 1)
    gen = contourpy.contour_generator(
        z=padded, name="serial", line_type=contourpy.LineType.Separate
    )
    polygons: list[FloatArray] = []
    for line in gen.lines(0.5):
        pts = np.asarray(line, dtype=np.float64) - 1.0  # undo the padding
        if len(pts) > 1 and np.allclose(pts[0], pts[-1]):
            pts = pts[:-1]
        pts = _drop_collinear(pts)
        if len(pts) >= 3:
            polygons.append(pts)
    return polygons


def rasterise_plane(polygons_uv: list[FloatArray], shape_vu: tuple[int, int]) -> NDArray[np.bool_]:
    """Even-odd fill of closed polygons at the integer (voxel-centre) positions of a plane.

    A centre is inside when a ray towards -u crosses the polygons an odd number of times; rows
    are sampled with the half-open rule so that a vertex on a row is counted once.
    """
    nv, nu = shape_vu
    counts = np.zeros((nv, nu + 1), dtype=np.int32)
    for poly in polygons_uv:
        if len(poly) < 3:
            continue
        u0, v0 = poly[:, 0], poly[:, 1]
        u1, v1 = np.roll(u0, -1), np.roll(v0, -1)
        lo, hi = np.minimum(v0, v1), np.maximum(v0, v1)
        first_row = np.maximum(np.ceil(lo), 0).astype(np.int64)
        last_row = np.minimum(np.ceil(hi) - 1, nv - 1).astype(np.int64)  # rows j: lo <= j < hi
        n_rows = np.maximum(last_row - first_row + 1, 0)
        n_rows[v0 == v1] = 0
        if n_rows.sum() == 0:
            continue
        edge = np.repeat(np.arange(len(poly)), n_rows)
        row = first_row[edge] + (
            np.arange(edge.size) - np.repeat(np.cumsum(n_rows) - n_rows, n_rows)
        )
        t = (row - v0[edge]) / (v1[edge] - v0[edge])
        u_cross = u0[edge] + t * (u1[edge] - u0[edge])
        start = np.clip(np.floor(u_cross).astype(np.int64) + 1, 0, nu)  # centres with u > u_cross
        np.add.at(counts, (row, start), 1)
    return (np.cumsum(counts[:, :nu], axis=1) % 2).astype(bool)
