"""The plan's dose: depth profile in uniform tissue, 3D dose and organ doses in a phantom."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from openiort.anatomy.phantom import Phantom
from openiort.delivery import ElectronDelivery, ElectronPlacement
from openiort.devices.electron import ElectronBeam, ElectronDevice, planning_value
from openiort.dose.electron import DiscPlacement, central_axis_dose
from openiort.dosegrid import DoseGrid
from openiort.engines import make_engine
from openiort.planning.electron.placement import BeamPlacement
from openiort.planning.electron.result import ElectronPlanResult, structure_dose

OAR_NAMES = ("lung", "heart", "ribs", "chest_wall", "skin")


def depth_profile(
    beam: ElectronBeam,
    dose_max_gy: float,
    disc: DiscPlacement | None,
    bolus_mm: float,
    relative_density: float,
    thickness_mm: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64], dict[str, float]]:
    """(depth, dose) on the clinical axis in uniform tissue of the target's electron density,
    and the dose at the report depths of the planning defaults (keys: whole millimetres)."""
    step = float(planning_value("depth_profile_step_mm"))
    depth_end = max(beam.characteristics.rp_mm / relative_density + 10.0, thickness_mm + 20.0)
    depth = np.arange(0.0, depth_end + step / 2, step)
    prof = central_axis_dose(
        beam,
        depth,
        dose_max_gy=dose_max_gy,
        disc=disc,
        bolus_mm=bolus_mm,
        relative_density=relative_density,
    )
    report_depths = [float(x) for x in planning_value("dose_at_depth_report_mm")]
    at_depth = central_axis_dose(
        beam,
        np.array(report_depths),
        dose_max_gy=dose_max_gy,
        disc=disc,
        bolus_mm=bolus_mm,
        relative_density=relative_density,
    )
    dose_at_depth = {
        str(round(dd)): round(float(v), 4) for dd, v in zip(report_depths, at_depth, strict=True)
    }
    return depth, prof, dose_at_depth


def _delivery(
    result: ElectronPlanResult,
    dev: ElectronDevice,
    place: BeamPlacement,
    disc: DiscPlacement | None,
    bolus_mm: float,
    density_scaling: bool,
) -> ElectronDelivery:
    """The plan as a delivery: setting, MU, calibration and its placement in the phantom."""
    return ElectronDelivery(
        device=dev.data_ref(),  # example or department machine data (devices/electron/machine)
        applicator_diameter_cm=result.applicator_diameter_cm,
        bevel_deg=result.bevel_deg,
        energy_mev=result.energy_mev,
        monitor_units=result.monitor_units,
        monitor_units_exact=result.monitor_units_exact,
        output_factor_cgy_per_mu=result.output_factor_cgy_per_mu,
        prescription_gy=result.prescription_gy,
        isodose_pct=result.isodose_pct,
        dose_max_gy=result.delivered_dose_max_gy,
        chamber_correction_mode=dev.chamber_correction_mode,
        chamber_correction_factor=result.chamber_correction,
        reference_pressure_hpa=dev.reference_pressure_hpa
        if dev.chamber_correction_mode in ("pressure", "pressure_temperature")
        else None,
        reference_temperature_c=dev.reference_temperature_c,
        placement=ElectronPlacement(
            entry_point_mm=place.entry,
            axis=place.axis,
            bevel_direction=place.bevel_direction,
            bolus_mm=bolus_mm,
            density_scaling=density_scaling,
            disc_type=None if disc is None else disc.disc.name,
            disc_depth_mm=None if disc is None else disc.depth_mm,
            disc_diameter_mm=None if disc is None else disc.diameter_mm,
            disc_centre_xy_mm=(0.0, 0.0) if disc is None else disc.centre_xy_mm,
        ),
    )


def _structure_doses(
    result: ElectronPlanResult, phantom: Phantom, dose: DoseGrid, target: NDArray[np.bool_] | None
) -> None:
    """Organ and target doses, target coverage and the skin-in-the-beam warning."""
    for name in OAR_NAMES:
        mask = phantom.structures.get(name)
        if mask is not None:
            s = structure_dose(dose, mask)
            if s is not None:
                result.structures[name] = s
    if target is not None:
        t = structure_dose(dose, target)
        assert t is not None
        result.structures["target"] = t
        result.target_coverage_pct = 100.0 * float(
            (dose.dose_gy[target] >= result.prescription_gy * (1 - 1e-9)).mean()
        )
    skin = phantom.structures.get("skin")
    if skin is not None and skin.any():
        level = (
            float(planning_value("skin_in_beam_isodose_pct")) / 100.0 * result.delivered_dose_max_gy
        )
        if float(dose.dose_gy[skin].max()) >= level:
            result.warnings.append(
                f"skin receives up to {float(dose.dose_gy[skin].max()):.1f} Gy, inside the "
                f"{planning_value('skin_in_beam_isodose_pct')} % isodose: retract the skin out of "
                "the beam"
            )


def dose_in_phantom(
    result: ElectronPlanResult,
    phantom: Phantom,
    place: BeamPlacement,
    disc: DiscPlacement | None,
    dev: ElectronDevice,
    *,
    bolus_mm: float,
    density_scaling: bool,
) -> None:
    """Add to ``result`` its delivery, the 3D dose in ``phantom`` and the structure doses."""
    result.delivery = _delivery(result, dev, place, disc, bolus_mm, density_scaling)
    dose = make_engine("electron.beamdata", dev).compute(result.delivery, phantom)
    result.dose = dose
    result.geometry = {
        **place.details,
        "entry_point_mm": list(place.entry),
        "axis": list(place.axis),
        "bevel_direction": None if place.bevel_direction is None else list(place.bevel_direction),
        "density_scaling": density_scaling,
    }
    result.target_mask = place.target
    _structure_doses(result, phantom, dose, place.target)
