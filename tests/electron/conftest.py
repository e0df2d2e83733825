"""Fixtures for the electron tests: synthetic slab phantoms, beam along +y, surface at y = 0."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from openiort.anatomy.materials import get_material
from openiort.anatomy.phantom import Phantom
from openiort.grid import Grid

MATERIALS = ("air", "water", "gland", "muscle", "cortical_bone", "lung", "heart", "skin")


def slab_phantom(
    layers: list[tuple[str, float]] | None = None,
    spacing_mm: float = 2.0,
    half_width_mm: float = 60.0,
    depth_mm: float = 100.0,
    air_above_mm: float = 10.0,
) -> Phantom:
    """Laterally infinite slabs along +y starting at y = 0 (air above).

    ``layers`` lists (material, thickness_mm) from the surface; the last material fills the rest.
    Structures: ``target`` = first layer, plus one structure per organ material present.
    Voxel centres lie on x = 0, z = 0 and on y = 0 + k * spacing (voxel faces at half steps).
    """
    layers = layers or [("water", depth_mm)]
    n_lat = round(2 * half_width_mm / spacing_mm) + 1
    n_y = round((air_above_mm + depth_mm) / spacing_mm) + 1
    grid = Grid(
        origin_mm=(-half_width_mm, -air_above_mm, -half_width_mm),
        spacing_mm=(spacing_mm, spacing_mm, spacing_mm),
        shape=(n_lat, n_y, n_lat),
    )
    y = grid.axis_mm("y")
    mid = np.zeros(grid.shape, dtype=np.uint8)
    structures: dict[str, np.ndarray] = {}
    start = 0.0
    for k, (material, thickness) in enumerate(layers):
        end = start + thickness if k < len(layers) - 1 else np.inf
        sel = (y >= start - 1e-9) & (y < end - 1e-9)
        mid[:, sel, :] = MATERIALS.index(material)
        mask = np.zeros(grid.shape, dtype=bool)
        mask[:, sel, :] = True
        name = (
            "target"
            if k == 0
            else {"muscle": "chest_wall", "cortical_bone": "ribs"}.get(material, material)
        )
        structures[name] = structures.get(name, np.zeros(grid.shape, dtype=bool)) | mask
        start = end
    density = np.array([get_material(m).density_g_cm3 for m in MATERIALS], dtype=np.float32)[mid]
    return Phantom(
        grid=grid,
        material_ids=mid,
        density_g_cm3=density,
        materials=MATERIALS,
        structures=structures,
        shaft_direction=(0.0, -1.0, 0.0),
    )


def eliot_phantom(
    target_thickness_mm: float = 20.0, target_width_mm: float = 40.0, spacing_mm: float = 2.0
) -> Phantom:
    """Gland layer (target: a disc of the given width in it), pectoral muscle, ribs, lung with a
    heart block, retracted skin flaps; beam axis +y, gland surface at y = 0."""
    p = slab_phantom(
        [("gland", target_thickness_mm), ("muscle", 10.0), ("cortical_bone", 8.0), ("lung", 200.0)],
        spacing_mm=spacing_mm,
        depth_mm=110.0,
        air_above_mm=20.0,
    )
    z, y, x = p.grid.axes_mm()
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    heart = (yy >= target_thickness_mm + 35.0) & (np.abs(xx) < 40.0) & (np.abs(zz) < 40.0)
    skin = (yy >= -14.0) & (yy < -10.0) & (np.abs(xx) > 45.0)
    # ribs: 12 mm bone strips every 25 mm along z, intercostal muscle between
    rib_layer = p.structures["ribs"]
    intercostal = rib_layer & (((zz + 100.0) % 25.0) >= 12.0)
    p.material_ids[intercostal] = MATERIALS.index("muscle")
    p.structures["ribs"] = rib_layer & ~intercostal
    p.structures["chest_wall"] = p.structures["chest_wall"] | intercostal
    p.material_ids[heart] = MATERIALS.index("heart")
    p.material_ids[skin] = MATERIALS.index("skin")
    p.density_g_cm3[:] = np.array(
        [get_material(m).density_g_cm3 for m in MATERIALS], dtype=np.float32
    )[p.material_ids]
    p.structures["target"] &= xx**2 + zz**2 <= (target_width_mm / 2) ** 2
    p.structures["lung"] &= ~heart
    p.structures["heart"] = heart
    p.structures["skin"] = skin
    return p


@pytest.fixture
def slab() -> Callable[..., Phantom]:
    """Builder of slab phantoms (see :func:`slab_phantom`)."""
    return slab_phantom


@pytest.fixture
def eliot() -> Callable[..., Phantom]:
    """Builder of ELIOT phantoms (see :func:`eliot_phantom`)."""
    return eliot_phantom
