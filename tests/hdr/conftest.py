"""Fixtures for the HDR tests: synthetic water phantoms with a spherical cavity."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from openiort.anatomy.phantom import Phantom
from openiort.grid import Grid

WATER_MATERIALS = ("water", "air", "lung")


def water_cube_phantom(
    size_mm: float = 80.0,
    spacing_mm: float = 2.0,
    cavity_radius_mm: float = 15.0,
    shaft_direction: tuple[float, float, float] = (0.0, -1.0, 0.0),
    cavity_material: str = "water",
    skin_at_mm: float | None = None,
    lung_beyond_mm: float | None = None,
) -> Phantom:
    """Water cube centred on the origin with a spherical cavity at its centre.

    ``skin_at_mm``: a 2 mm skin layer at y = -skin_at_mm with air beyond (y more negative).
    ``lung_beyond_mm``: lung for y > lung_beyond_mm.
    """
    grid = Grid.centred((0.0, 0.0, 0.0), (size_mm,) * 3, spacing_mm)
    z, y, x = grid.axes_mm()
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    r = np.sqrt(xx**2 + yy**2 + zz**2)
    cavity = r <= cavity_radius_mm
    ids = np.zeros(grid.shape, dtype=np.uint8)
    structures: dict[str, np.ndarray] = {"cavity": cavity}
    if cavity_material == "air":
        ids[cavity] = 1
    if skin_at_mm is not None:
        outside = yy < -skin_at_mm
        ids[outside] = 1
        structures["skin"] = (yy >= -skin_at_mm) & (yy < -skin_at_mm + 2.0)
    if lung_beyond_mm is not None:
        lung = yy > lung_beyond_mm
        ids[lung] = 2
        structures["lung"] = lung
    structures["breast"] = (ids == 0) & ~cavity
    density = np.array([1.0, 0.0012, 0.26], dtype=np.float32)[ids]
    return Phantom(
        grid=grid,
        material_ids=ids,
        density_g_cm3=density,
        materials=WATER_MATERIALS,
        structures=structures,
        applicator_centre_mm=(0.0, 0.0, 0.0),
        applicator_radius_mm=cavity_radius_mm,
        cavity_radius_mm=cavity_radius_mm,
        shaft_direction=shaft_direction,
    )


@pytest.fixture(scope="session")
def water_cube() -> Callable[..., Phantom]:
    """The :func:`water_cube_phantom` builder."""
    return water_cube_phantom
