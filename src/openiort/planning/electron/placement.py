"""Placement: the beam in the phantom (ELIOT geometry or the target) and the shielding disc."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from openiort.anatomy.phantom import Phantom
from openiort.devices.electron import ElectronBeam, ShieldingDisc, get_disc, planning_value
from openiort.dose.electron import (
    DiscPlacement,
    ElectronGeometryError,
    EliotGeometry,
    eliot_geometry,
    mean_energy_at_depth_mev,
    relative_electron_density,
)
from openiort.planning.electron.errors import ElectronPlanningError


@dataclass(frozen=True)
class PhantomOptions:
    """How the beam is placed, and the dose computed, in a phantom (unused without one).

    Placement, first that applies: ``geometry`` (from :func:`eliot_geometry`);
    ``entry_point_mm``/``axis`` (target = the phantom's ``target``); a phantom with a tumour-bed
    centre (``applicator_centre_mm``) and a ``chest_wall``: :func:`eliot_geometry` (gland layer on
    the fascia, depth axis = fascia normal, applicator along ``-shaft_direction``); else axis
    ``-shaft_direction`` entering at the shallowest face of the ``target`` structure.
    ``bevel_direction`` overrides that of the placement (patient LPS mm / unit vectors);
    ``density_scaling`` scales depths to water-equivalent ones in the phantom.
    """

    geometry: EliotGeometry | None = None
    entry_point_mm: tuple[float, float, float] | None = None
    axis: tuple[float, float, float] | None = None
    bevel_direction: tuple[float, float, float] | None = None
    density_scaling: bool = True


@dataclass(frozen=True)
class BeamPlacement:
    """The beam in the phantom: entry point, axis, target and what the placement found."""

    entry: tuple[float, float, float]
    axis: tuple[float, float, float]
    target: NDArray[np.bool_] | None
    target_thickness_in_phantom_mm: float | None
    bevel_direction: tuple[float, float, float] | None = None
    surface_inclination_deg: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


def _target_placement(
    phantom: Phantom,
    entry_point_mm: tuple[float, float, float] | None,
    axis: tuple[float, float, float] | None,
) -> BeamPlacement:
    """Entry point and axis from the phantom: -shaft_direction, shallowest face of the target."""
    if axis is None:
        if phantom.shaft_direction is None:
            raise ElectronPlanningError(
                "the phantom has no shaft_direction; give the beam axis explicitly"
            )
        axis = (
            -phantom.shaft_direction[0],
            -phantom.shaft_direction[1],
            -phantom.shaft_direction[2],
        )
    n = np.asarray(axis, dtype=np.float64)
    if n.shape != (3,) or not np.isfinite(n).all() or np.linalg.norm(n) < 1e-9:
        raise ElectronPlanningError(f"beam axis must be a finite non-zero 3-vector, got {axis}")
    n = n / np.linalg.norm(n)
    target = phantom.structures.get("target")
    thickness = None
    if target is not None and target.any():
        pts = phantom.grid.index_to_position_mm(np.argwhere(target).astype(np.float64))
        proj = pts @ n
        half_voxel = 0.5 * float(np.abs(np.asarray(phantom.grid.spacing_mm) * n).max())
        t_min = float(proj.min()) - half_voxel
        thickness = float(proj.max() - proj.min()) + 2 * half_voxel
        if entry_point_mm is None:
            centroid = pts.mean(axis=0)
            entry = centroid + (t_min - float(centroid @ n)) * n
            entry_point_mm = (float(entry[0]), float(entry[1]), float(entry[2]))
    if entry_point_mm is None:
        raise ElectronPlanningError(
            "the phantom has no 'target' structure to place the beam on; give entry_point_mm"
        )
    return BeamPlacement(
        entry_point_mm,
        (float(n[0]), float(n[1]), float(n[2])),
        target if target is not None and target.any() else None,
        thickness,
        details={"placement": "from the phantom's 'target' structure"},
    )


def choose_placement(
    phantom: Phantom, options: PhantomOptions, thickness_mm: float, width_mm: float
) -> BeamPlacement:
    """Beam placement: explicit ELIOT geometry, explicit entry/axis, ELIOT geometry from the
    tumour bed and chest wall, or the phantom's ``target`` structure, in that order; the
    bevel direction of ``options``, where given, replaces the placement's."""
    place = _placement(phantom, options, thickness_mm, width_mm)
    if options.bevel_direction is not None:
        place = replace(place, bevel_direction=options.bevel_direction)
    return place


def _placement(
    phantom: Phantom, options: PhantomOptions, thickness_mm: float, width_mm: float
) -> BeamPlacement:
    geometry, entry_point_mm, axis = options.geometry, options.entry_point_mm, options.axis
    if geometry is None and entry_point_mm is None and axis is None:
        has_chest = "chest_wall" in phantom.structures and phantom.structures["chest_wall"].any()
        if phantom.applicator_centre_mm is not None and has_chest:
            try:
                geometry = eliot_geometry(phantom, thickness_mm, width_mm)
            except ElectronGeometryError as exc:
                raise ElectronPlanningError(f"cannot place the ELIOT target: {exc}") from None
    if geometry is not None:
        return BeamPlacement(
            geometry.entry_point_mm,
            geometry.axis,
            geometry.target if geometry.target.any() else None,
            geometry.thickness_mm,
            geometry.bevel_direction,
            geometry.surface_inclination_deg,
            {"placement": "ELIOT gland layer on the pectoral fascia", **geometry.to_dict()},
        )
    return _target_placement(phantom, entry_point_mm, axis)


def target_electron_density(phantom: Phantom, place: BeamPlacement) -> float:
    """Mean electron density of the placed target relative to water (1 without a target)."""
    if place.target is None:
        return 1.0
    return float(relative_electron_density(phantom)[place.target].mean())


def thickness_warnings(phantom: Phantom, place: BeamPlacement, thickness_mm: float) -> list[str]:
    """A warning where the phantom's target and the case disagree on the thickness."""
    warnings = []
    if place.target_thickness_in_phantom_mm is not None:
        tol = 2.0 * float(max(phantom.grid.spacing_mm))
        if abs(place.target_thickness_in_phantom_mm - thickness_mm) > tol:
            warnings.append(
                f"the phantom's target is {place.target_thickness_in_phantom_mm:.1f} mm "
                "thick along the "
                f"beam axis, the case says {thickness_mm:g} mm; the case value is used for "
                "planning"
            )
    return warnings


def _disc_placement(
    beam: ElectronBeam,
    disc: ShieldingDisc,
    depth_mm: float,
    depth_w_mm: float,
    diameter_mm: float | None,
) -> DiscPlacement:
    """Disc under the target; by default centred on, and a margin wider than, the 50 % isodose
    across the beam at its water-equivalent depth (never narrower than the bevelled applicator's
    footprint, d / cos(bevel), plus the margin)."""
    margin = float(planning_value("disc_margin_mm"))
    x_lo, x_hi = beam.isodose_extent_mm(50.0, depth_w_mm, "x")
    y_lo, y_hi = beam.isodose_extent_mm(50.0, depth_w_mm, "y")
    centre = (0.5 * (x_lo + x_hi), 0.5 * (y_lo + y_hi))
    if diameter_mm is None:
        footprint = 10.0 * beam.applicator_cm / float(np.cos(np.radians(beam.bevel_deg)))
        diameter_mm = max(footprint, x_hi - x_lo, y_hi - y_lo) + 2.0 * margin
    return DiscPlacement(
        disc, depth_mm=depth_mm, diameter_mm=float(diameter_mm), centre_xy_mm=centre
    )


def _disc_rim_dose_pct(beam: ElectronBeam, disc: DiscPlacement, depth_w_mm: float) -> float:
    """Largest open-beam dose (% of the maximum) on the disc's rim at its face."""
    phi = np.linspace(0.0, 2.0 * np.pi, 144, endpoint=False)
    r = disc.diameter_mm / 2.0
    x = disc.centre_xy_mm[0] + r * np.cos(phi)
    y = disc.centre_xy_mm[1] + r * np.sin(phi)
    return float(beam.relative_dose(x, y, np.full_like(x, depth_w_mm)).max())


def place_disc(
    beam: ElectronBeam,
    disc_name: str | None,
    diameter_mm: float | None,
    depth_mm: float,
    depth_w_mm: float,
    applicator_cm: int,
    lookup: Callable[[str], ShieldingDisc] = get_disc,
) -> tuple[DiscPlacement | None, list[str]]:
    """The shielding disc under the target at ``depth_mm`` (``depth_w_mm`` water-equivalent,
    bolus included), and the warnings on it: too small, beam beyond its rim, transmission.
    ``lookup`` finds the disc type (the machine's own set: ``ElectronDevice.disc``)."""
    warnings: list[str] = []
    if disc_name is None:
        warnings.append(
            "no shielding disc: the chest wall, ribs and lung receive the beam's full exit dose"
        )
        return None, warnings
    d = lookup(disc_name)
    placement = _disc_placement(beam, d, depth_mm, depth_w_mm, diameter_mm)
    if placement.diameter_mm < 10.0 * applicator_cm:
        warnings.append(
            f"disc diameter {placement.diameter_mm:g} mm is smaller than the applicator "
            f"({10 * applicator_cm} mm)"
        )
    rim = _disc_rim_dose_pct(beam, placement, depth_w_mm)
    if rim > float(planning_value("disc_edge_warning_pct")):
        warnings.append(
            f"the beam reaches beyond the disc: {rim:.0f} % of the maximum dose at its rim; "
            "the chest wall beside it is not shielded (use a larger disc)"
        )
    e_disc = mean_energy_at_depth_mev(
        beam, depth_w_mm, float(planning_value("mean_energy_per_r50_mev_per_cm"))
    )
    if d.max_stopped_energy_mev is None:
        warnings.append(
            f"disc {d.name}: transmission is not from published data "
            f"({d.verification['transmission'].split(':')[0]}); confirm with the disc's own "
            "data"
        )
    elif e_disc > d.max_stopped_energy_mev:
        warnings.append(
            f"mean electron energy at the disc is about {e_disc:.1f} MeV, above the "
            f"{d.max_stopped_energy_mev:g} MeV "
            f"for which its transmission bound ({d.transmission_fraction:g}) is documented"
        )
    return placement, warnings
