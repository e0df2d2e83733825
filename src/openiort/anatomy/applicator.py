"""The spherical applicator on a voxel phantom: placing it in a cavity, and structure centroids.

Used when planning on a CT (``openiort.planning.xray``) and by the CT import
(``openiort.inputs.ct``), which records the applicator and cavity it finds drawn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from openiort.anatomy.materials import get_material
from openiort.anatomy.phantom import Phantom


def sphere_from_mask(
    mask: NDArray[np.bool_], phantom_grid_centres: Sequence[NDArray[np.float64]], voxel_cc: float
) -> tuple[tuple[float, float, float], float]:
    """(centroid (x, y, z) in mm, radius in mm of the sphere of equal volume) of a mask."""
    z, y, x = phantom_grid_centres
    idx = np.nonzero(mask)
    centre = (float(x[idx[2]].mean()), float(y[idx[1]].mean()), float(z[idx[0]].mean()))
    volume_mm3 = float(mask.sum()) * voxel_cc * 1000.0
    return centre, (3.0 * volume_mm3 / (4.0 * math.pi)) ** (1.0 / 3.0)


def structure_centre_mm(phantom: Phantom, name: str) -> tuple[float, float, float]:
    """Centroid (x, y, z) in mm of a structure (e.g. the ``cavity`` drawn on the CT)."""
    if name not in phantom.structures or not phantom.structures[name].any():
        raise ValueError(f"structure {name!r} is missing or empty in the CT phantom")
    centre, _ = sphere_from_mask(
        phantom.structures[name], phantom.grid.axes_mm(), phantom.grid.voxel_volume_cc
    )
    return centre


def place_applicator(
    phantom: Phantom,
    radius_mm: float,
    centre_mm: tuple[float, float, float] | None = None,
    cavity_structure: str = "cavity",
    material: str = "applicator_pei",
) -> Phantom:
    """A copy of a CT phantom with a spherical applicator placed in the cavity.

    The centre is ``centre_mm`` (a point from the case file) or, when None, the centroid of
    ``cavity_structure``. Voxels whose centres lie within ``radius_mm`` become ``material`` at
    its nominal density and the ``applicator`` structure; ``cavity`` is kept when drawn, else
    it is the applicator sphere. Raises ValueError when the sphere leaves the CT.
    """
    if not radius_mm > 0:
        raise ValueError(f"applicator radius must be positive, got {radius_mm} mm")
    centre = centre_mm if centre_mm is not None else structure_centre_mm(phantom, cavity_structure)
    grid = phantom.grid
    lo = np.asarray(grid.origin_mm)
    hi = lo + (np.asarray(grid.shape[::-1]) - 1) * np.asarray(grid.spacing_mm)
    if np.any(np.asarray(centre) - radius_mm < lo) or np.any(np.asarray(centre) + radius_mm > hi):
        raise ValueError(
            f"the applicator sphere (centre {tuple(round(c, 1) for c in centre)} mm, radius "
            f"{radius_mm} mm) does not fit inside the CT"
        )
    sphere = grid.distance_from_mm(centre) <= radius_mm
    materials = (
        phantom.materials if material in phantom.materials else (*phantom.materials, material)
    )
    if len(materials) > 256:
        raise ValueError("too many materials to add the applicator")
    material_ids = phantom.material_ids.copy()
    material_ids[sphere] = materials.index(material)
    density = phantom.density_g_cm3.copy()
    density[sphere] = np.float32(get_material(material).density_g_cm3)
    structures = dict(phantom.structures)
    structures["applicator"] = sphere
    cavity = structures.setdefault(cavity_structure, sphere)
    _, cavity_radius = sphere_from_mask(cavity, grid.axes_mm(), grid.voxel_volume_cc)
    return Phantom(
        grid=grid,
        material_ids=material_ids,
        density_g_cm3=density,
        materials=materials,
        structures=structures,
        applicator_centre_mm=(float(centre[0]), float(centre[1]), float(centre[2])),
        applicator_radius_mm=float(radius_mm),
        cavity_radius_mm=cavity_radius,
        shaft_direction=phantom.shaft_direction,
        description={**phantom.description, "applicator_placed_mm": list(centre)},
    )
