"""Image planes of an axis-aligned LPS grid for each patient position, and their inverse.

DICOM patient coordinates (LPS) are attached to the patient, so a phantom keeps its coordinates
whatever the patient position; what changes is how a scanner lays the image rows and columns
over the patient (PS3.3 C.7.6.2.1.1). For the four supine/prone positions the row direction
(first three values of Image Orientation (Patient)) and column direction are:

======  ===========  ===========
 pos    row dir      column dir
======  ===========  ===========
 HFS    (+1, 0, 0)   (0, +1, 0)
 HFP    (-1, 0, 0)   (0, -1, 0)
 FFS    (-1, 0, 0)   (0, +1, 0)
 FFP    (+1, 0, 0)   (0, -1, 0)
======  ===========  ===========

The slice normal row x column points to +z (head) for head-first and to -z for feet-first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from openiort.grid import Grid

PATIENT_POSITIONS: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "HFS": ((1, 0, 0), (0, 1, 0)),
    "HFP": ((-1, 0, 0), (0, -1, 0)),
    "FFS": ((-1, 0, 0), (0, 1, 0)),
    "FFP": ((1, 0, 0), (0, -1, 0)),
}


@dataclass(frozen=True)
class PlaneGeometry:
    """How the slices of a grid are written for one patient position.

    ``order`` lists the z indices of the grid in the order of increasing position along the
    slice normal; ``image_position_mm[k]`` is the Image Position (Patient) of grid slice ``k``.
    """

    patient_position: str
    orientation: tuple[float, float, float, float, float, float]
    pixel_spacing_mm: tuple[float, float]  # (row spacing, column spacing), DICOM order
    slice_spacing_mm: float
    flip_x: bool
    flip_y: bool
    order: tuple[int, ...]
    image_position_mm: tuple[tuple[float, float, float], ...]

    def plane(self, volume_zyx: NDArray[np.generic], k: int) -> NDArray[np.generic]:
        """Pixel array [row, column] of grid slice ``k`` as the scanner lays it out."""
        sl = volume_zyx[k]
        if self.flip_y:
            sl = sl[::-1, :]
        if self.flip_x:
            sl = sl[:, ::-1]
        return np.ascontiguousarray(sl)

    def slice_offsets_mm(self) -> list[float]:
        """Offsets of the slices in ``order`` from the first one along the normal (>= 0)."""
        first = self.image_position_mm[self.order[0]][2]
        return [abs(self.image_position_mm[k][2] - first) for k in self.order]


def plane_geometry(grid: Grid, patient_position: str) -> PlaneGeometry:
    """Image planes for writing ``grid`` as axial slices in ``patient_position``."""
    if patient_position not in PATIENT_POSITIONS:
        raise ValueError(
            f"patient position {patient_position!r} not supported; use one of "
            f"{', '.join(PATIENT_POSITIONS)}"
        )
    row_dir, col_dir = PATIENT_POSITIONS[patient_position]
    flip_x, flip_y = row_dir[0] < 0, col_dir[1] < 0
    x, y, z = grid.axis_mm("x"), grid.axis_mm("y"), grid.axis_mm("z")
    x0 = float(x[-1] if flip_x else x[0])
    y0 = float(y[-1] if flip_y else y[0])
    normal_z = np.cross(row_dir, col_dir)[2]
    order = tuple(range(grid.shape[0])) if normal_z > 0 else tuple(range(grid.shape[0] - 1, -1, -1))
    dx, dy, dz = grid.spacing_mm
    return PlaneGeometry(
        patient_position=patient_position,
        orientation=(
            float(row_dir[0]),
            float(row_dir[1]),
            float(row_dir[2]),
            float(col_dir[0]),
            float(col_dir[1]),
            float(col_dir[2]),
        ),
        pixel_spacing_mm=(float(dy), float(dx)),
        slice_spacing_mm=float(dz),
        flip_x=flip_x,
        flip_y=flip_y,
        order=order,
        image_position_mm=tuple((x0, y0, float(zk)) for zk in z),
    )


@dataclass(frozen=True)
class AxisMap:
    """Maps an image-index volume ``[slice, row, column]`` onto an LPS grid ``[z, y, x]``."""

    permutation: tuple[int, int, int]  # image dims that become (z, y, x)
    flips: tuple[bool, bool, bool]  # flip of the (z, y, x) dims after the permutation
    normal_axis: int  # LPS axis (0 x, 1 y, 2 z) of the slice normal

    def to_grid_order(self, volume: NDArray[np.generic]) -> NDArray[np.generic]:
        out = np.transpose(volume, self.permutation)
        for dim, flip in enumerate(self.flips):
            if flip:
                out = np.flip(out, axis=dim)
        return np.ascontiguousarray(out)


def axis_of(direction: NDArray[np.float64], tol: float = 1e-4) -> tuple[int, int] | None:
    """(LPS axis, sign) of a unit vector along a coordinate axis, else None (oblique)."""
    d = np.asarray(direction, dtype=np.float64)
    big = np.abs(d) > 1.0 - tol
    if big.sum() != 1 or np.any(np.abs(d[~big]) > tol):
        return None
    axis = int(np.argmax(big))
    return axis, (1 if d[axis] > 0 else -1)


def grid_from_planes(
    row_dir: NDArray[np.float64],
    col_dir: NDArray[np.float64],
    first_position_mm: NDArray[np.float64],
    pixel_spacing_mm: tuple[float, float],
    slice_spacing_mm: float,
    shape_image: tuple[int, int, int],
) -> tuple[Grid, AxisMap]:
    """LPS grid and axis map of a stack of axis-aligned planes sorted along the normal.

    ``shape_image`` is (slices, rows, columns); ``first_position_mm`` the Image Position
    (Patient) of the first slice. Raises ValueError for oblique planes.
    """
    r, c = axis_of(row_dir), axis_of(col_dir)
    if r is None or c is None or r[0] == c[0]:
        raise ValueError(
            "image orientation is oblique (only axis-aligned slices are supported): "
            f"{np.round(row_dir, 5).tolist()} {np.round(col_dir, 5).tolist()}"
        )
    normal = np.cross(np.asarray(row_dir), np.asarray(col_dir))
    n = axis_of(normal)
    if n is None:  # pragma: no cover - impossible once r and c are distinct axes
        raise ValueError("image orientation is not orthogonal")
    # image dims: 0 slice (normal), 1 row (column direction), 2 column (row direction)
    dims = {
        n[0]: (0, n[1], slice_spacing_mm),
        c[0]: (1, c[1], pixel_spacing_mm[0]),
        r[0]: (2, r[1], pixel_spacing_mm[1]),
    }
    origin = [0.0, 0.0, 0.0]
    spacing = [0.0, 0.0, 0.0]
    perm: list[int] = []
    flips: list[bool] = []
    for lps_axis in (2, 1, 0):  # grid array order z, y, x
        dim, sign, step = dims[lps_axis]
        count = shape_image[dim]
        perm.append(dim)
        flips.append(sign < 0)
        spacing[lps_axis] = float(step)
        origin[lps_axis] = float(first_position_mm[lps_axis]) + min(0.0, sign * (count - 1) * step)
    shape = (shape_image[perm[0]], shape_image[perm[1]], shape_image[perm[2]])
    grid = Grid(
        origin_mm=(origin[0], origin[1], origin[2]),
        spacing_mm=(spacing[0], spacing[1], spacing[2]),
        shape=shape,
    )
    return grid, AxisMap((perm[0], perm[1], perm[2]), (flips[0], flips[1], flips[2]), n[0])
