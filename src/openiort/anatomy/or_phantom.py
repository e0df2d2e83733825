"""Operating-room phantom of electron (ELIOT-style) breast IORT: the surgical geometry.

In ELIOT the gland around the tumour bed is mobilised off the pectoral fascia, a shielding disc
is slipped between gland and muscle, the gland is sutured back into a layer over the disc, the
skin edges are retracted out of the field and the applicator is brought into contact with the
gland surface. This module builds that geometry as a voxel phantom; it knows nothing of beams
(the planner passes the disc, the applicator and the lateral extent of the beam data).

Coordinates (DICOM LPS, mm), aligned with the beam: the gland surface is the plane y = 0, the
depth axis is +y (posterior: the patient lies supine, the applicator comes from above), a
bevelled beam drifts towards +x, and the applicator's centre is on x = z = 0. From the surface
down: the gland layer (``anatomy.target_thickness_mm``; within ``anatomy.target_width_mm`` of
the axis the mobilised layer, beyond it the rest of the breast at the same level), the disc
(under the layer, its thickness from the device data; outside it breast tissue), pectoral muscle,
the rib layer (ribs as strips along x in intercostal muscle) and lung. Above: air, and the
retracted skin flaps (subcutaneous fat under 2 mm of skin) outside the incision.

The disc's voxels hold water and the ``disc`` structure: its effect on the dose is modelled by
its published backscatter and transmission (:mod:`openiort.dose.electron`), not by its
material. Dimensions not in the case come from ``data/or_phantom.yaml`` and
``data/phantom_anatomy.yaml``, each with its source.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from openiort.anatomy.breast_phantom import anatomy_parameters
from openiort.anatomy.materials import get_material
from openiort.anatomy.phantom import Phantom
from openiort.datafiles import read_data
from openiort.errors import OpenIortInputError
from openiort.grid import Grid

MATERIALS_BASE = ("air", "water", "skin", "adipose", "muscle", "cortical_bone", "lung")


class OrPhantomError(OpenIortInputError):
    """An operating-room geometry that cannot be built (bad dimensions)."""


@cache
def or_parameters() -> dict[str, Any]:
    params: dict[str, Any] = read_data("openiort.anatomy", "data/or_phantom.yaml").yaml()
    return params


def or_value(*keys: str) -> float:
    """A number of ``data/or_phantom.yaml`` (``value`` of the entry at ``keys``)."""
    entry: Any = or_parameters()
    for k in keys:
        entry = entry[k]
    return float(entry["value"] if isinstance(entry, dict) else entry)


@dataclass(frozen=True)
class OrGeometry:
    """What the operating-room phantom is built from (mm; x, z lateral, y depth).

    ``x_range_mm``/``z_range_mm``: lateral extent of the grid (the planner passes the beam
    data's, so that every voxel's dose comes from the data). ``disc_centre_xz_mm``: the disc's
    centre in the surface plane. ``incision_radius_mm``: inner edge of the retracted skin flaps;
    ``applicator_radius_mm``: the applicator's lumen above the gland (a structure only: air).
    """

    thickness_mm: float
    width_mm: float
    gland_material: str
    disc_diameter_mm: float | None
    disc_thickness_mm: float
    disc_centre_xz_mm: tuple[float, float]
    incision_radius_mm: float
    applicator_radius_mm: float
    x_range_mm: tuple[float, float]
    z_range_mm: tuple[float, float]
    spacing_mm: float | None = None

    def check(self) -> None:
        problems = []
        for name in (
            "thickness_mm",
            "width_mm",
            "disc_thickness_mm",
            "incision_radius_mm",
            "applicator_radius_mm",
        ):
            v = getattr(self, name)
            if not (np.isfinite(v) and v >= 0) or (name != "disc_thickness_mm" and v == 0):
                problems.append(f"{name} must be positive, got {v}")
        if self.disc_diameter_mm is not None and not self.disc_diameter_mm > 0:
            problems.append(f"disc_diameter_mm must be positive, got {self.disc_diameter_mm}")
        for name in ("x_range_mm", "z_range_mm"):
            lo, hi = getattr(self, name)
            if not (lo < 0 < hi):
                problems.append(f"{name} must contain 0, got {(lo, hi)}")
        if problems:
            raise OrPhantomError("; ".join(problems))


def _grid(g: OrGeometry, y_top: float, y_bottom: float) -> Grid:
    spacing = g.spacing_mm or or_value("spacing_mm")
    size = (g.x_range_mm[1] - g.x_range_mm[0], y_bottom - y_top, g.z_range_mm[1] - g.z_range_mm[0])
    n_max = or_value("max_voxels")
    while np.prod([s / spacing + 1 for s in size]) > n_max:
        spacing *= 1.25
    # voxel centres on the planes x = 0, z = 0 and y = spacing / 2 (faces on the surface y = 0)
    ix = (int(np.ceil(-g.x_range_mm[0] / spacing)), int(np.floor(g.x_range_mm[1] / spacing)))
    iz = (int(np.ceil(-g.z_range_mm[0] / spacing)), int(np.floor(g.z_range_mm[1] / spacing)))
    iy = (int(np.ceil(-y_top / spacing - 0.5)), int(np.ceil(y_bottom / spacing - 0.5)))
    return Grid(
        origin_mm=(-ix[0] * spacing, -(iy[0] - 0.5) * spacing, -iz[0] * spacing),
        spacing_mm=(spacing, spacing, spacing),
        shape=(iz[0] + iz[1] + 1, iy[0] + iy[1], ix[0] + ix[1] + 1),
    )


def build_or_phantom(g: OrGeometry) -> Phantom:
    """The operating-room phantom of :class:`OrGeometry` (see the module docstring).

    Structures: ``target`` is left to the planner (the layer inside the beam's 90 % width);
    ``gland_layer`` (the mobilised layer), ``breast`` (all breast tissue), ``disc``,
    ``chest_wall`` (pectoral and intercostal muscle), ``ribs``, ``lung``, ``skin`` (the flaps'
    skin), ``skin_flaps`` (skin and subcutaneous fat of the flaps) and ``applicator`` (its
    lumen above the gland, air). ``applicator_centre_mm`` is the middle of the layer on the
    axis (there is no spherical applicator: ``applicator_radius_mm`` stays None).
    """
    g.check()
    anat = anatomy_parameters()
    skin_t = float(anat["skin_thickness_mm"])
    muscle_t = float(anat["pectoral_muscle_thickness_mm"])
    rib_t = float(anat["rib_layer_thickness_mm"])
    rib_pitch = float(anat["rib_pitch_mm"])
    rib_semi = tuple(float(v) for v in anat["rib_semi_axes_mm"])
    gap = or_value("skin_flap", "gap_mm")
    fat = or_value("skin_flap", "subcutaneous_mm")
    flap_top = -(gap + fat + skin_t)
    y_top = flap_top - or_value("air_above_mm")
    y_disc = g.thickness_mm + g.disc_thickness_mm
    y_muscle_end = y_disc + muscle_t
    y_rib_end = y_muscle_end + rib_t
    y_bottom = y_rib_end + or_value("lung_depth_in_grid_mm")
    grid = _grid(g, y_top, y_bottom)

    z, y, x = grid.axes_mm()
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    r2 = xx**2 + zz**2
    materials = (*MATERIALS_BASE, g.gland_material)
    mid = np.zeros(grid.shape, dtype=np.uint8)  # air

    breast = (yy >= 0) & (yy < y_disc)
    layer = (yy >= 0) & (yy < g.thickness_mm) & (r2 <= (g.width_mm / 2.0) ** 2)
    disc = np.zeros(grid.shape, dtype=bool)
    if g.disc_diameter_mm is not None and g.disc_thickness_mm > 0:
        cx, cz = g.disc_centre_xz_mm
        disc = (
            (yy >= g.thickness_mm)
            & (yy < y_disc)
            & ((xx - cx) ** 2 + (zz - cz) ** 2 <= (g.disc_diameter_mm / 2.0) ** 2)
        )
    breast &= ~disc
    mid[breast] = materials.index(g.gland_material)
    mid[disc] = materials.index("water")
    muscle = (yy >= y_disc) & (yy < y_muscle_end)
    rib_layer = (yy >= y_muscle_end) & (yy < y_rib_end)
    # ribs: elliptical cross-sections (craniocaudal x AP semi-axes) repeating along z
    zc = (zz - float(anat["rib_z_offset_mm"])) % rib_pitch - rib_pitch / 2.0
    yc = yy - (y_muscle_end + rib_t / 2.0)
    ribs = rib_layer & ((zc / rib_semi[0]) ** 2 + (yc / rib_semi[1]) ** 2 <= 1.0)
    intercostal = rib_layer & ~ribs
    lung = yy >= y_rib_end
    mid[muscle | intercostal] = materials.index("muscle")
    mid[ribs] = materials.index("cortical_bone")
    mid[lung] = materials.index("lung")
    outside = r2 >= g.incision_radius_mm**2
    skin = outside & (yy >= flap_top) & (yy < flap_top + skin_t)
    flap_fat = outside & (yy >= flap_top + skin_t) & (yy < -gap)
    lumen = (yy < 0) & (r2 <= g.applicator_radius_mm**2)
    mid[skin] = materials.index("skin")
    mid[flap_fat] = materials.index("adipose")
    density = np.array([get_material(m).density_g_cm3 for m in materials], dtype=np.float32)[mid]
    return Phantom(
        grid=grid,
        material_ids=mid,
        density_g_cm3=density,
        materials=materials,
        structures={
            "breast": breast,
            "gland_layer": layer,
            "disc": disc,
            "chest_wall": muscle | intercostal,
            "ribs": ribs,
            "lung": lung,
            "skin": skin,
            "skin_flaps": skin | flap_fat,
            "applicator": lumen,
        },
        # not a spherical applicator: the centre of the layer on the axis, where slices are drawn
        applicator_centre_mm=(0.0, g.thickness_mm / 2.0, 0.0),
        shaft_direction=(0.0, -1.0, 0.0),
        description={
            "model": "operating-room phantom (ELIOT): gland layer over the shielding disc, "
            "muscle, ribs, lung; skin flaps retracted; air above",
            "gland_surface_y_mm": 0.0,
            "gland_layer_thickness_mm": g.thickness_mm,
            "gland_layer_width_mm": g.width_mm,
            "gland_material": g.gland_material,
            "disc_diameter_mm": g.disc_diameter_mm,
            "disc_thickness_mm": g.disc_thickness_mm,
            "disc_centre_xz_mm": list(g.disc_centre_xz_mm),
            "incision_radius_mm": g.incision_radius_mm,
            "pectoral_muscle_mm": muscle_t,
            "rib_layer_mm": rib_t,
            "skin_flap": {"gap_mm": gap, "subcutaneous_mm": fat, "skin_mm": skin_t},
            "spacing_mm": grid.spacing_mm[0],
            "disc_voxels": "water (the disc acts through its published backscatter and "
            "transmission, not its material)",
        },
    )
