"""The Phantom type: a grid with material ids, mass density and named structures."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from openiort.grid import Grid

STRUCTURE_NAMES = (
    "breast",
    "skin",
    "cavity",
    "applicator",
    "target",
    "chest_wall",
    "ribs",
    "lung",
    "heart",
)


@dataclass
class Phantom:
    """Voxel model of the patient.

    ``material_ids[z, y, x]`` indexes ``materials``; ``density_g_cm3`` is the mass density per
    voxel; ``structures`` maps structure names (see ``STRUCTURE_NAMES``) to boolean masks.
    ``applicator_centre_mm`` (x, y, z) and ``applicator_radius_mm`` locate a spherical
    applicator when there is one; ``beam_axis`` is the unit vector from the applicator centre
    towards the skin (the direction of the probe shaft for x-ray IORT).
    """

    grid: Grid
    material_ids: NDArray[np.uint8]
    density_g_cm3: NDArray[np.float32]
    materials: tuple[str, ...]
    structures: dict[str, NDArray[np.bool_]]
    applicator_centre_mm: tuple[float, float, float] | None = None
    applicator_radius_mm: float | None = None
    cavity_radius_mm: float | None = None
    shaft_direction: tuple[float, float, float] | None = None
    description: dict[str, object] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # model limits the planner must show

    def __post_init__(self) -> None:
        for name, mask in self.structures.items():
            if mask.shape != self.grid.shape:
                raise ValueError(
                    f"structure {name!r} has shape {mask.shape}, grid {self.grid.shape}"
                )
        if (
            self.material_ids.shape != self.grid.shape
            or self.density_g_cm3.shape != self.grid.shape
        ):
            raise ValueError("material and density arrays must have the grid's shape")

    def volume_cc(self, name: str) -> float:
        return float(self.structures[name].sum()) * self.grid.voxel_volume_cc

    def material_mask(self, name: str) -> NDArray[np.bool_]:
        return self.material_ids == self.materials.index(name)
