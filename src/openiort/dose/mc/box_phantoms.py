"""Simple box phantoms for validating and benchmarking the kV Monte Carlo.

These are test objects, not anatomy: a cube of one tissue (optionally with a skin layer on
every face) holding a spherical cavity filled by the applicator, centred in the cube. The
patient phantom comes from :mod:`openiort.anatomy`.
"""

from __future__ import annotations

import numpy as np

from openiort.anatomy.materials import get_material
from openiort.anatomy.phantom import Phantom
from openiort.grid import Grid


def box_phantom(
    applicator_diameter_cm: float = 3.5,
    *,
    size_mm: float = 120.0,
    spacing_mm: float = 1.0,
    tissue: str = "breast_20_80",
    skin_mm: float = 2.0,
    target_margin_mm: float = 10.0,
    shaft_direction: tuple[float, float, float] | None = (0.0, -1.0, 0.0),
) -> Phantom:
    """Cube of ``tissue`` with a ``skin_mm`` skin on every face and the applicator at its centre.

    Structures: ``breast`` (all tissue), ``skin``, ``cavity`` and ``applicator`` (the sphere),
    ``target`` (the ``target_margin_mm`` shell around the cavity). The shaft points to -y
    (anterior in LPS) by default.
    """
    radius_mm = applicator_diameter_cm * 5.0
    if 2 * (radius_mm + target_margin_mm) > size_mm - 2 * skin_mm:
        raise ValueError("the applicator and its target margin do not fit in the box")
    grid = Grid.centred((0.0, 0.0, 0.0), (size_mm, size_mm, size_mm), spacing_mm)
    r = grid.distance_from_mm((0.0, 0.0, 0.0))
    z, y, x = grid.axes_mm()
    half = size_mm / 2.0
    depth = np.minimum.reduce(
        np.broadcast_arrays(
            half - np.abs(x)[None, None, :],
            half - np.abs(y)[None, :, None],
            half - np.abs(z)[:, None, None],
        )
    )
    materials = ("air", tissue, "skin", "applicator_pei")
    ids = np.full(grid.shape, 1, dtype=np.uint8)
    skin = depth < skin_mm
    ids[skin] = 2
    applicator = r < radius_mm
    ids[applicator] = 3
    density = np.array([get_material(m).density_g_cm3 for m in materials], dtype=np.float32)[ids]
    target = (r >= radius_mm) & (r < radius_mm + target_margin_mm)
    return Phantom(
        grid=grid,
        material_ids=ids,
        density_g_cm3=density,
        materials=materials,
        structures={
            "breast": ~applicator,
            "skin": skin,
            "cavity": applicator.copy(),
            "applicator": applicator,
            "target": target,
        },
        applicator_centre_mm=(0.0, 0.0, 0.0),
        applicator_radius_mm=radius_mm,
        cavity_radius_mm=radius_mm,
        shaft_direction=shaft_direction,
        description={"kind": "box phantom for MC validation", "tissue": tissue, "skin_mm": skin_mm},
    )
