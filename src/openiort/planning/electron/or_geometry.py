"""The electron plan in the operating-room phantom: the surgical geometry, not the intact breast.

The beam is placed on the gland layer of :mod:`openiort.anatomy.or_phantom` with its clinical
axis along the surface normal (+y) and a bevel, when there is one, lying along the surface
(the beam drifts to +x); the disc, the applicator and the lateral extent of the beam data size
the phantom. The target is the gland layer inside the beam's 90 % lateral width at the depth of
maximum dose (the 90 % isodose is narrower than the applicator); the whole layer's coverage is
reported separately, with the 90 % and 50 % isodose depths, the dose at the disc's upper face
(with its backscatter) and beneath it (the transmission bound), and the skin flaps' dose.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from openiort.anatomy.breast_phantom import gland_fraction
from openiort.anatomy.materials import breast_mixture_name, get_material
from openiort.anatomy.or_phantom import OrGeometry, build_or_phantom, or_value
from openiort.anatomy.phantom import Phantom
from openiort.case import Case
from openiort.devices.electron import ElectronBeam, ElectronDevice, load_electron_device
from openiort.dose.electron import DiscPlacement, _electrons_per_gram_relative, central_axis_dose
from openiort.errors import OpenIortInputError
from openiort.planning.electron.dose import dose_in_phantom
from openiort.planning.electron.placement import BeamPlacement
from openiort.planning.electron.plan import ElectronPlanSettings, plan_electron
from openiort.planning.electron.result import ElectronPlanResult

GEOMETRY = "operating-room phantom"


def gland_material(case: Case) -> str:
    """The gland layer's material: the case's breast density as a gland/adipose mixture."""
    return breast_mixture_name(gland_fraction(case))


def relative_electron_density(material: str) -> float:
    """Electron density of a material relative to water."""
    return get_material(material).density_g_cm3 * _electrons_per_gram_relative(material)


def _disc(result: ElectronPlanResult, device: ElectronDevice) -> DiscPlacement | None:
    """The plan's disc, looked up in the machine's own disc set (as the planner placed it)."""
    d = result.disc
    if d is None:
        return None
    cx, cy = d["centre_xy_mm"]
    return DiscPlacement(
        device.disc(str(d["type"])),
        depth_mm=float(d["depth_mm"]),
        diameter_mm=float(d["diameter_mm"]),
        centre_xy_mm=(float(cx), float(cy)),
    )


def _lateral_range(beam: ElectronBeam, i: int) -> tuple[float, float]:
    n = beam.dose_mc.shape[i]
    lo = beam.origin_mm[i]
    return float(lo), float(lo + beam.spacing_mm[i] * (n - 1))


def or_geometry(
    result: ElectronPlanResult, beam: ElectronBeam, material: str, disc: DiscPlacement | None
) -> OrGeometry:
    """The phantom's dimensions for a plan: its layer, disc, incision and the beam's extent.

    The beam's +y is the phantom's -z (beam frame: axis +y, bevel +x, y = axis x bevel)."""
    x_lo, x_hi = _lateral_range(beam, 0)
    y_lo, y_hi = _lateral_range(beam, 1)
    half_face = 5.0 * result.applicator_diameter_cm / float(np.cos(np.radians(result.bevel_deg)))
    return OrGeometry(
        thickness_mm=result.target_thickness_mm,
        width_mm=result.target_width_mm,
        gland_material=material,
        disc_diameter_mm=None if disc is None else disc.diameter_mm,
        disc_thickness_mm=0.0 if disc is None else disc.disc.thickness_mm,
        disc_centre_xz_mm=(0.0, 0.0)
        if disc is None
        else (disc.centre_xy_mm[0], -disc.centre_xy_mm[1]),
        incision_radius_mm=half_face + or_value("skin_flap", "clearance_mm"),
        applicator_radius_mm=5.0 * result.applicator_diameter_cm,
        x_range_mm=(x_lo, x_hi),
        z_range_mm=(-y_hi, -y_lo),
    )


def target_mask(phantom: Phantom, beam: ElectronBeam) -> NDArray[np.bool_]:
    """The gland layer inside the beam's 90 % lateral width at the depth of maximum dose."""
    z, _, x = phantom.grid.axes_mm()
    zz, xx = np.meshgrid(z, x, indexing="ij")
    zmax = beam.characteristics.zmax_mm
    inside = beam.relative_dose(xx, -zz, np.full_like(xx, zmax)) >= 90.0
    return phantom.structures["gland_layer"] & inside[:, None, :]


def _lateral_coverage_pct(beam: ElectronBeam, width_mm: float) -> float:
    """Share of the layer's extent (a disc of ``width_mm``) inside the 90 % width at zmax."""
    r = width_mm / 2.0
    s = np.linspace(-r, r, 201)
    xx, yy = np.meshgrid(s, s, indexing="ij")
    disc = xx**2 + yy**2 <= r**2
    zmax = beam.characteristics.zmax_mm
    dose = beam.relative_dose(xx[disc], yy[disc], np.full(int(disc.sum()), zmax))
    return 100.0 * float((dose >= 90.0).mean())


def _isodose_depth(depth: NDArray[np.float64], dose: NDArray[np.float64], level: float) -> float:
    """First depth beyond the maximum where the dose falls below ``level`` (interpolated)."""
    im = int(np.argmax(dose))
    below = np.nonzero(dose[im:] < level)[0]
    if below.size == 0:
        return float(depth[-1])
    j = im + int(below[0])
    d0, d1, p0, p1 = depth[j - 1], depth[j], dose[j - 1], dose[j]
    return float(d0 + (p0 - level) * (d1 - d0) / (p0 - p1))


def _pct_of(value: float, rx: float) -> float:
    return round(100.0 * value / rx, 2)


def or_figures(
    result: ElectronPlanResult,
    phantom: Phantom,
    beam: ElectronBeam,
    disc: DiscPlacement | None,
    rho: float,
) -> dict[str, Any]:
    """The operating-room figures of a plan whose dose is computed on ``phantom``."""
    assert result.dose is not None and result.target_mask is not None
    dose = result.dose.dose_gy
    rx = result.prescription_gy
    dmax = result.delivered_dose_max_gy
    level = rx * (1 - 1e-9)
    layer = phantom.structures["gland_layer"]
    target = result.target_mask
    t = result.target_thickness_mm
    bolus = result.bolus_mm
    # the clinical axis in uniform gland at 0.1 mm: the isodose depths and the disc's faces
    # both sides of the disc's face sampled, so that an isodose stopped by it lies at it
    depth = np.union1d(np.arange(0.0, t + 30.0, 0.1), [t - 1e-6, t])
    prof = central_axis_dose(
        beam, depth, dose_max_gy=dmax, disc=disc, bolus_mm=bolus, relative_density=rho
    )
    open_prof = central_axis_dose(
        beam, depth, dose_max_gy=dmax, bolus_mm=bolus, relative_density=rho
    )
    d90 = _isodose_depth(depth, prof, 0.9 * dmax)
    d50 = _isodose_depth(depth, prof, 0.5 * dmax)
    out: dict[str, Any] = {
        "geometry": GEOMETRY,
        "sentence": geometry_sentence(result, phantom),
        "target_definition": "gland layer inside the beam's 90 % lateral width at the depth of "
        "maximum dose",
        "target_volume_cc": round(float(target.sum()) * phantom.grid.voxel_volume_cc, 3),
        "target_v90_pct": round(100.0 * float((dose[target] >= level).mean()), 2),
        "layer_volume_cc": round(float(layer.sum()) * phantom.grid.voxel_volume_cc, 3),
        "layer_v90_pct": round(100.0 * float((dose[layer] >= level).mean()), 2),
        "layer_lateral_coverage_pct": round(_lateral_coverage_pct(beam, result.target_width_mm), 2),
        "width90_at_zmax_mm": round(beam.characteristics.width90_mm, 2),
        "isodose_90_depth_mm": round(d90, 2),
        "isodose_50_depth_mm": round(d50, 2),
        "isodose_90_depth_without_disc_mm": round(_isodose_depth(depth, open_prof, 0.9 * dmax), 2),
        "isodose_50_depth_without_disc_mm": round(_isodose_depth(depth, open_prof, 0.5 * dmax), 2),
        "isodose_depths_note": "physical depth below the gland surface on the clinical axis "
        "(bolus not counted); with the disc, an isodose that reaches it stops at its face",
        "gland_relative_electron_density": round(rho, 4),
        "gland_water_equivalent_thickness_mm": round(t * rho, 2),
        "bolus_mm": bolus,
    }
    if disc is not None:
        i_face = int(np.searchsorted(depth, t - 1e-6))
        face, open_face = float(prof[i_face]), float(open_prof[i_face])
        beneath = float(prof[i_face + 1])
        behind = np.zeros(phantom.grid.shape, dtype=bool)
        z, y, x = phantom.grid.axes_mm()
        yy = y[None, :, None]
        cx, cz = disc.centre_xy_mm[0], -disc.centre_xy_mm[1]
        behind = (yy >= t + disc.disc.thickness_mm) & (
            (x[None, None, :] - cx) ** 2 + (z[:, None, None] - cz) ** 2
            <= (disc.diameter_mm / 2.0) ** 2
        )
        out["disc"] = {
            "upper_face_gy": round(face, 4),
            "upper_face_pct_of_prescription": _pct_of(face, rx),
            "upper_face_open_beam_gy": round(open_face, 4),
            "backscatter_increase_pct": round(100.0 * (face / open_face - 1.0), 2),
            "beneath_gy": round(beneath, 4),
            "beneath_pct_of_prescription": _pct_of(beneath, rx),
            "beneath_max_in_shadow_gy": round(float(dose[behind].max()), 4)
            if behind.any()
            else None,
            "transmission_fraction": disc.disc.transmission_fraction,
            "beneath_note": "upper bound: the disc's published transmission times the open-beam "
            "dose at its face",
        }
    for name in ("skin", "skin_flaps"):
        mask = phantom.structures.get(name)
        if mask is not None and mask.any():
            m = float(dose[mask].max())
            out[f"{name}_max_gy"] = round(m, 4)
            out[f"{name}_max_pct_of_prescription"] = _pct_of(m, rx)
    return out


def geometry_sentence(result: ElectronPlanResult, phantom: Phantom) -> str:
    """One sentence that says which geometry the dose was computed in."""
    d = phantom.description
    disc = result.disc
    bevel = (
        "normal to the gland surface"
        if result.bevel_deg == 0
        else f"with its {result.bevel_deg} deg bevel lying on the gland surface"
    )
    under = (
        f"a {d['disc_thickness_mm']:g} mm {disc['type']} disc {d['disc_diameter_mm']:.0f} mm across"
        if disc is not None
        else "no disc"
    )
    return (
        f"Dose computed in an operating-room phantom (not the intact breast): a "
        f"{result.target_thickness_mm:g} mm gland layer {result.target_width_mm:g} mm wide "
        f"({d['gland_material']}) over {under}, {d['pectoral_muscle_mm']:g} mm of pectoral "
        f"muscle, ribs and lung, with the skin flaps retracted to {d['incision_radius_mm']:.0f} mm "
        f"from the axis and the {result.applicator_diameter_cm} cm applicator {bevel}."
    )


def plan_in_operating_room(
    case: Case,
    settings: ElectronPlanSettings | None = None,
    device: ElectronDevice | None = None,
) -> tuple[ElectronPlanResult, Phantom]:
    """Plan ``case`` and compute its dose in the operating-room phantom built for the plan.

    The applicator is normal to the gland surface unless the settings give a bevel (or a surface
    inclination); the gland layer's depths are scaled by its electron density (the case's breast
    density as a gland/adipose mixture).
    """
    s = settings or ElectronPlanSettings()
    dev = device or load_electron_device()
    material = gland_material(case)
    rho = relative_electron_density(material)
    if s.target_relative_electron_density is not None:
        rho = s.target_relative_electron_density
    inclination = s.surface_inclination_deg
    if inclination is None:
        inclination = float(s.bevel_deg) if s.bevel_deg is not None else 0.0
    s = replace(s, target_relative_electron_density=rho, surface_inclination_deg=inclination)
    result = plan_electron(case, s, device=dev)
    beam = dev.beam(result.applicator_diameter_cm, result.bevel_deg, result.energy_mev)
    disc = _disc(result, dev)
    phantom = build_or_phantom(or_geometry(result, beam, material, disc))
    target = target_mask(phantom, beam)
    bevel_dir = (1.0, 0.0, 0.0) if result.bevel_deg else None
    b = np.radians(result.bevel_deg)
    place = BeamPlacement(
        entry=(0.0, 0.0, 0.0),
        axis=(0.0, 1.0, 0.0),
        target=target,
        target_thickness_in_phantom_mm=result.target_thickness_mm,
        bevel_direction=bevel_dir,
        surface_inclination_deg=float(result.bevel_deg),
        details={
            "placement": f"{GEOMETRY}: applicator on the gland layer over the disc",
            "applicator_axis": [float(np.sin(b)), float(np.cos(b)), 0.0],
            "phantom": dict(phantom.description),
        },
    )
    dose_in_phantom(
        result,
        phantom,
        place,
        disc,
        dev,
        bolus_mm=result.bolus_mm,
        density_scaling=s.in_phantom.density_scaling,
    )
    phantom.structures["target"] = target
    result.operating_room = or_figures(result, phantom, beam, disc, rho)
    return result, phantom


_DEFAULT_DISC = ElectronPlanSettings().disc


def settings_from_case(case: Case, pressure_hpa: float | None = None) -> ElectronPlanSettings:
    """The planner's settings with the choices the case file's ``electron`` section makes."""
    c = case.electron
    if c is None:
        return ElectronPlanSettings(pressure_hpa=pressure_hpa)
    disc: str | None = _DEFAULT_DISC if c.disc is None else c.disc
    if disc is not None and disc.lower() == "none":
        disc = None
    return ElectronPlanSettings(
        pressure_hpa=pressure_hpa,
        applicator_cm=c.applicator_cm,
        bevel_deg=c.bevel_deg,
        energy_mev=c.energy_mev,
        bolus_mm=c.bolus_mm,
        isodose_pct=c.isodose_pct,
        disc=disc,
        disc_diameter_mm=c.disc_diameter_mm,
    )


def _chosen(result: ElectronPlanResult, name: str) -> Any:
    disc = result.disc
    return {
        "applicator_cm": result.applicator_diameter_cm,
        "bevel_deg": result.bevel_deg,
        "energy_mev": result.energy_mev,
        "bolus_mm": result.bolus_mm,
        "isodose_pct": result.isodose_pct,
        "disc": "none" if disc is None else disc["type"],
        "disc_diameter_mm": None if disc is None else round(float(disc["diameter_mm"]), 1),
    }[name]


def report_overrides(
    case: Case, result: ElectronPlanResult, device: ElectronDevice, pressure_hpa: float | None
) -> None:
    """Record in ``result`` each choice the case made, beside what the planner would choose
    (planned once more without the case's choices), and say so in its warnings."""
    c = case.electron
    given = {} if c is None else {k: v for k, v in c.model_dump().items() if v is not None}
    if not given:
        return
    planner: ElectronPlanResult | None = None
    why = ""
    try:
        planner = plan_in_operating_room_settings_free(case, device, pressure_hpa)
    except OpenIortInputError as exc:
        why = str(exc)
    for name, value in given.items():
        choice = _chosen(planner, name) if planner is not None else f"none ({why})"
        result.overrides.append(
            {"field": f"electron.{name}", "value": value, "planner_choice": choice}
        )
        result.warnings.append(
            f"set in the case: electron.{name} = {value} (the planner would choose {choice})"
        )


def plan_in_operating_room_settings_free(
    case: Case, device: ElectronDevice, pressure_hpa: float | None
) -> ElectronPlanResult:
    """The planner's own choices for ``case`` (no dose computed)."""
    material = gland_material(case)
    settings = ElectronPlanSettings(
        pressure_hpa=pressure_hpa,
        target_relative_electron_density=relative_electron_density(material),
        surface_inclination_deg=0.0,
    )
    return plan_electron(case, settings, device=device)
