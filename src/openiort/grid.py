"""Regular 3D grids in DICOM patient coordinates (LPS, mm); arrays are indexed ``[z, y, x]``.

This module is the one place that converts between voxel indices and positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Grid:
    """Axis-aligned voxel grid.

    Attributes
    ----------
    origin_mm:
        (x, y, z) position of the centre of voxel ``[0, 0, 0]`` in DICOM patient coordinates.
    spacing_mm:
        (dx, dy, dz) voxel size.
    shape:
        (nz, ny, nx) array shape.
    """

    origin_mm: tuple[float, float, float]
    spacing_mm: tuple[float, float, float]
    shape: tuple[int, int, int]

    def __post_init__(self) -> None:
        if any(s <= 0 for s in self.spacing_mm):
            raise ValueError(f"grid spacing must be positive, got {self.spacing_mm} mm")
        if any(n <= 0 for n in self.shape):
            raise ValueError(f"grid shape must be positive, got {self.shape}")

    @classmethod
    def centred(
        cls,
        centre_mm: tuple[float, float, float],
        size_mm: tuple[float, float, float],
        spacing_mm: float,
    ) -> Grid:
        """Grid of cubic voxels covering ``size_mm`` (x, y, z) around ``centre_mm``."""
        n = [max(1, int(np.ceil(s / spacing_mm))) for s in size_mm]
        origin = tuple(c - (k - 1) * spacing_mm / 2 for c, k in zip(centre_mm, n, strict=True))
        return cls(
            origin_mm=(float(origin[0]), float(origin[1]), float(origin[2])),
            spacing_mm=(spacing_mm, spacing_mm, spacing_mm),
            shape=(n[2], n[1], n[0]),
        )

    @property
    def voxel_volume_cc(self) -> float:
        dx, dy, dz = self.spacing_mm
        return dx * dy * dz / 1000.0

    @property
    def size(self) -> int:
        nz, ny, nx = self.shape
        return nz * ny * nx

    def axis_mm(self, axis: str) -> FloatArray:
        """Voxel-centre coordinates along ``"x"``, ``"y"`` or ``"z"``."""
        i = "xyz".index(axis)
        n = self.shape[2 - i]
        return self.origin_mm[i] + self.spacing_mm[i] * np.arange(n, dtype=np.float64)

    def axes_mm(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        """(z, y, x) voxel-centre coordinate vectors, in array-axis order."""
        return self.axis_mm("z"), self.axis_mm("y"), self.axis_mm("x")

    def index_to_position_mm(
        self, index_zyx: NDArray[np.float64] | tuple[float, ...]
    ) -> FloatArray:
        """Continuous index (z, y, x) to position (x, y, z) in mm."""
        idx = np.asarray(index_zyx, dtype=np.float64)
        zyx = idx[..., ::-1]
        return np.asarray(self.origin_mm) + zyx * np.asarray(self.spacing_mm)

    def position_to_index(
        self, position_xyz_mm: NDArray[np.float64] | tuple[float, ...]
    ) -> FloatArray:
        """Position (x, y, z) in mm to continuous index (z, y, x)."""
        pos = np.asarray(position_xyz_mm, dtype=np.float64)
        xyz = (pos - np.asarray(self.origin_mm)) / np.asarray(self.spacing_mm)
        return xyz[..., ::-1]

    def distance_from_mm(self, point_xyz_mm: tuple[float, float, float]) -> FloatArray:
        """Distance of every voxel centre from a point, shape ``self.shape``."""
        z, y, x = self.axes_mm()
        px, py, pz = point_xyz_mm
        return np.sqrt(
            (z[:, None, None] - pz) ** 2
            + (y[None, :, None] - py) ** 2
            + (x[None, None, :] - px) ** 2
        )

    def to_dict(self) -> dict[str, list[float] | list[int]]:
        return {
            "origin_mm": list(self.origin_mm),
            "spacing_mm": list(self.spacing_mm),
            "shape_zyx": list(self.shape),
        }
