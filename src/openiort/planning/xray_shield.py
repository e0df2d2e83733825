"""The dose beside a flexible tungsten-loaded shield in an x-ray plan (issue 15, item 5).

The shield lies on the chest wall or under the skin flap, its back face at the case's measured
distance of that structure below the applicator surface. The Monte Carlo shield model
(:mod:`openiort.dose.mc.shield`) gives its transmission and the change of the dose in front of
it; the table engine's dose behind is its water depth-dose there times that transmission, and
the Monte Carlo's own is its shielded dose scaled to the table's surface dose. In the plan's 3D
dose (:func:`apply_shield`) the dose at and behind the shield is scaled by that transmission, so
DVHs and organ-at-risk limits see it; the increase in front of it is reported, not added.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from openiort.anatomy.phantom import Phantom
from openiort.case import Case, CaseError
from openiort.devices.xray import XraySource
from openiort.dosegrid import DoseGrid
from openiort.plan_figures import XrayShieldFigures


def shield_figures(
    case: Case, source: XraySource, diameter_cm: float, time_min: float
) -> XrayShieldFigures | None:
    """The shield's figures for a plan of ``time_min`` minutes, or None without a shield."""
    shield = case.intent.xray_shield
    if shield is None:
        return None
    distance = (
        case.anatomy.chest_wall_distance_mm
        if shield.location == "chest_wall"
        else case.anatomy.skin_distance_mm
    )
    field = "chest_wall_distance_mm" if shield.location == "chest_wall" else "skin_distance_mm"
    if distance is None:
        raise CaseError(
            "case", [f"anatomy.{field}: required to place the {shield.location} shield, got null"]
        )
    from openiort.dose.mc.shield import (
        GAP_MM,
        SCORE_MM,
        ShieldError,
        front_interface_estimate,
        shield_effect,
    )

    front = distance - shield.thickness_mm
    try:
        effect = shield_effect(
            diameter_cm,
            front,
            shield.thickness_mm,
            material=shield.material,
            density_g_cm3=shield.density_g_cm3,
            location=shield.location,
        )
    except ShieldError as exc:
        raise CaseError("case", [f"intent.xray_shield: {p}" for p in exc.problems]) from None
    behind_mm = distance + (GAP_MM + SCORE_MM) / 2
    front_mm = front - (GAP_MM + SCORE_MM) / 2
    rate = source.dose_rate_gy_min
    without_behind = float(rate(diameter_cm, behind_mm, "V4.0")) * time_min
    without_front = float(rate(diameter_cm, front_mm, "V4.0")) * time_min
    surface = float(rate(diameter_cm, 0.0, "V4.0")) * time_min
    return XrayShieldFigures(
        location=shield.location,
        material=shield.material,
        density_g_cm3=round(effect.density_g_cm3, 3),
        thickness_mm=shield.thickness_mm,
        front_depth_mm=round(front, 3),
        transmission=round(effect.transmission, 5),
        transmission_rel_unc=round(effect.transmission_rel_unc, 4),
        dose_behind_without_gy=round(without_behind, 4),
        dose_behind_table_gy=round(without_behind * effect.transmission, 5),
        dose_behind_mc_gy=round(surface * effect.behind_per_surface_open * effect.transmission, 5),
        dose_in_front_without_gy=round(without_front, 4),
        dose_in_front_with_gy=round(without_front * effect.front_ratio, 4),
        front_change_pct=round(100 * (effect.front_ratio - 1), 2),
        model=effect.model,
        front_interface_estimate=front_interface_estimate(),
    )


SHIELD_STRUCTURE = "shield"
STRUCTURE_OF = {"chest_wall": "chest_wall", "skin_flap": "skin"}


def shield_axis(phantom: Phantom, location: str) -> NDArray[np.float64] | None:
    """Unit vector from the applicator centre to the nearest part of the shielded structure:
    the centroid of its voxels within two voxels of the nearest one (a single voxel would tilt
    the axis by the grid's step), None when the phantom has no such structure."""
    mask = phantom.structures.get(STRUCTURE_OF[location])
    if mask is None or not mask.any() or phantom.applicator_centre_mm is None:
        return None
    distance = np.where(mask, phantom.grid.distance_from_mm(phantom.applicator_centre_mm), np.inf)
    near = distance <= distance.min() + 2.0 * max(phantom.grid.spacing_mm)
    centroid = np.argwhere(near).mean(axis=0)
    point = phantom.grid.index_to_position_mm(centroid)
    axis = point - np.asarray(phantom.applicator_centre_mm)
    return np.asarray(axis / np.linalg.norm(axis))


def apply_shield(dose: DoseGrid, phantom: Phantom, figures: XrayShieldFigures) -> DoseGrid | None:
    """The 3D dose with the shield: a sheet perpendicular to the line from the applicator centre
    to the nearest voxel of the shielded structure, between the shield's front and back depths
    below the applicator surface, wide enough to cover the field. Every voxel at or behind the
    front face gets the dose times the Monte Carlo transmission (in the shield itself that is
    not a tissue dose); the shield's voxels become the structure "shield". None when the
    phantom has no structure to place the shield against (the dose is then left unshielded)."""
    axis = shield_axis(phantom, figures.location)
    if axis is None:
        return None
    assert phantom.applicator_centre_mm is not None and phantom.applicator_radius_mm is not None
    z, y, x = phantom.grid.axes_mm()
    cx, cy, cz = phantom.applicator_centre_mm
    along = (
        (x[None, None, :] - cx) * axis[0]
        + (y[None, :, None] - cy) * axis[1]
        + (z[:, None, None] - cz) * axis[2]
    ) - phantom.applicator_radius_mm
    back = figures.front_depth_mm + figures.thickness_mm
    behind = along >= figures.front_depth_mm
    # the sheet lies on the structure, not in it (a voxel centre on its face stays its own)
    protected = phantom.structures[STRUCTURE_OF[figures.location]]
    phantom.structures[SHIELD_STRUCTURE] = behind & (along < back) & ~protected
    shielded = np.where(behind, dose.dose_gy * figures.transmission, dose.dose_gy)
    return replace(
        dose,
        dose_gy=shielded,
        notes=(
            *dose.notes,
            f"{figures.location.replace('_', ' ')} shield {figures.thickness_mm:g} mm: dose at "
            f"and behind its front face ({figures.front_depth_mm:g} mm below the applicator "
            f"surface, a sheet across the field) x Monte Carlo transmission "
            f"{figures.transmission:.4f}; the backscatter increase in front is not in the 3D dose",
        ),
    )
