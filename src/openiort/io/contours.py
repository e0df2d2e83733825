"""Binary masks <-> closed planar contours, one plane at a time.

Contours are traced at the 0.5 level of the mask with contourpy's marching squares, so every
contour runs half-way between a voxel centre inside and one outside: filling the polygons of a
plane with the even-odd rule at the voxel centres gives back the mask exactly.

A region with holes is written as one keyhole contour (PS3.3 C.8.8.6.3): each hole is joined
to the boundary around it by a zero-width channel, traced out and back along the same line, so
the contour's inside is the region without its holes whatever rule a reader fills it with
(dicompyler-core reads only CLOSED_PLANAR contours; plastimatch unions the contours of a plane
by default, which would fill separately written holes). An island inside a hole is a contour
of its own. ``rasterise_plane`` reads them with the even-odd rule, under which the channel's
two coincident edges cancel.
"""

from __future__ import annotations

import itertools

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


def _closed_open(points: FloatArray) -> FloatArray:
    """Drop a repeated closing vertex and collinear vertices."""
    if len(points) > 1 and np.allclose(points[0], points[-1]):
        points = points[:-1]
    return _drop_collinear(points)


def _bridge(poly: FloatArray, hole: FloatArray) -> FloatArray:
    """``poly`` with ``hole`` spliced in through a zero-width channel.

    The channel runs from the hole's leftmost vertex towards -u to the first edge of ``poly``
    it meets, so it crosses nothing: holes merged in order of increasing leftmost u only ever
    meet the outer boundary or a hole already merged (earcut's hole elimination).
    """
    h = int(np.lexsort((hole[:, 1], hole[:, 0]))[0])
    hu, hv = hole[h]
    u0, v0 = poly[:, 0], poly[:, 1]
    u1, v1 = np.roll(u0, -1), np.roll(v0, -1)
    spans = (np.minimum(v0, v1) <= hv) & (hv <= np.maximum(v0, v1)) & (v0 != v1)
    with np.errstate(divide="ignore", invalid="ignore"):
        u_cross = np.where(spans, u0 + (hv - v0) / (v1 - v0) * (u1 - u0), -np.inf)
    u_cross[u_cross > hu] = -np.inf
    e = int(np.argmax(u_cross))
    if not np.isfinite(u_cross[e]):  # cannot happen for a hole inside poly
        raise ValueError("hole outside its boundary")
    point = np.array([[u_cross[e], hv]])
    loop = np.concatenate([hole[h:], hole[: h + 1]])
    return np.concatenate([poly[: e + 1], point, loop, point, poly[e + 1 :]])


def plane_contours(mask_2d: NDArray[np.bool_]) -> list[FloatArray]:
    """Closed polygons (u = column index, v = row index) around the ``True`` region of a plane:
    one keyhole polygon per connected region, its holes joined to its boundary.

    The first vertex is not repeated at the end; collinear vertices are dropped.
    """
    if not mask_2d.any():
        return []
    padded = np.pad(mask_2d.astype(np.float64), 1)
    gen = contourpy.contour_generator(
        z=padded, name="serial", fill_type=contourpy.FillType.OuterOffset
    )
    filled = gen.filled(0.5, 2.0)  # OuterOffset: (points per polygon, ring offsets per polygon)
    polygons: list[FloatArray] = []
    for points, offsets in zip(filled[0], filled[1], strict=True):
        xy = np.asarray(points, dtype=np.float64) - 1.0  # undo the padding
        rings = [_closed_open(xy[a:b]) for a, b in itertools.pairwise(np.asarray(offsets).tolist())]
        outer, holes = rings[0], [r for r in rings[1:] if len(r) >= 3]
        if len(outer) < 3:
            continue
        holes.sort(key=lambda r: float(r[:, 0].min()))
        for hole in holes:
            outer = _bridge(outer, hole)
        polygons.append(outer)
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
