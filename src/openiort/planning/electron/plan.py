"""The electron planner: a case and its overrides, through selection, MU, disc, dose, to a plan."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from openiort.anatomy.phantom import Phantom
from openiort.case import Case
from openiort.devices.electron import ElectronDevice, load_electron_device, planning_value
from openiort.planning.electron.dose import depth_profile, dose_in_phantom
from openiort.planning.electron.errors import ElectronPlanningError
from openiort.planning.electron.mu import (
    MuCalculation,
    MuRequest,
    SecondCheck,
    calculate_mu,
    check_dose_inputs,
    second_check,
)
from openiort.planning.electron.placement import (
    BeamPlacement,
    PhantomOptions,
    choose_placement,
    place_disc,
    target_electron_density,
    thickness_warnings,
)
from openiort.planning.electron.result import ElectronPlanResult
from openiort.planning.electron.selection import (
    BeamChoice,
    BeamSelection,
    TargetReach,
    select_beam,
)


@dataclass(frozen=True)
class ElectronPlanSettings:
    """What the planner is told rather than left to choose; ``None`` leaves it to the planner.

    Attributes
    ----------
    prescription_gy:
        Dose to the prescription isodose; default ``case.intent.prescription_gy`` or 21 Gy.
    isodose_pct:
        Prescription isodose (default 90 %).
    pressure_hpa, temperature_c:
        Air pressure (and temperature where the device needs it) today; without a pressure the
        MU are computed at the reference pressure and a warning says so.
    rescale:
        Per-beam MU rescale factor from commissioning.
    surface_inclination_deg:
        Angle between the gland surface normal and the applicator axis; selects the bevel
        (default: from the ELIOT geometry when there is one, else 0).
    applicator_cm, bevel_deg, energy_mev:
        Force a setting instead of choosing it.
    bolus_mm:
        Water-equivalent bolus on the gland surface; ``None``: the planner's choice (enough to
        lift the build-up into the bolus and keep R90 near the disc, see
        :func:`~openiort.planning.electron.selection.select_beam`).
    target_relative_electron_density:
        Electron density of the gland layer relative to water, without a phantom (default 1;
        with a phantom, the placed target's mean).
    lateral_margin_mm:
        Margin between target edge and 90 % isodose (default from the planning data).
    disc:
        Shielding disc type (``"al_pb"``, ``"steel"``) or ``None``.
    disc_diameter_mm:
        Disc diameter; default from the 50 % isodose at its depth plus the default disc margin.
    in_phantom:
        Beam placement and dose options in a phantom (:class:`PhantomOptions`).
    """

    prescription_gy: float | None = None
    isodose_pct: float | None = None
    pressure_hpa: float | None = None
    temperature_c: float | None = None
    rescale: float = 1.0
    surface_inclination_deg: float | None = None
    applicator_cm: int | None = None
    bevel_deg: int | None = None
    energy_mev: int | None = None
    bolus_mm: float | None = None
    target_relative_electron_density: float | None = None
    lateral_margin_mm: float | None = None
    disc: str | None = "al_pb"
    disc_diameter_mm: float | None = None
    in_phantom: PhantomOptions = field(default_factory=PhantomOptions)


@dataclass(frozen=True)
class _Prescription:
    """The case's target and the prescription, defaults applied and checked."""

    thickness_mm: float
    width_mm: float
    prescription_gy: float
    isodose_pct: float
    margin_mm: float


def _prescription(
    case: Case, s: ElectronPlanSettings, dev: ElectronDevice, warnings: list[str]
) -> _Prescription:
    if case.intent.technique != "electron":
        warnings.append(
            f"the case's technique is {case.intent.technique!r}; this is an electron plan for "
            "comparison"
        )
    thickness = case.anatomy.target_thickness_mm
    width = case.anatomy.target_width_mm
    missing = [
        n
        for n, v in (("anatomy.target_thickness_mm", thickness), ("anatomy.target_width_mm", width))
        if v is None
    ]
    if missing:
        raise ElectronPlanningError(
            f"electron planning needs {' and '.join(missing)} (the mobilised gland layer: "
            "thickness "
            "measured with a needle, extent to treat)"
        )
    assert thickness is not None and width is not None
    prescription_gy = s.prescription_gy
    if prescription_gy is None:
        prescription_gy = case.intent.prescription_gy or float(planning_value("prescription_gy"))
    iso = float(s.isodose_pct if s.isodose_pct is not None else planning_value("isodose_pct"))
    margin = float(
        s.lateral_margin_mm
        if s.lateral_margin_mm is not None
        else planning_value("lateral_margin_mm")
    )
    if s.bolus_mm is not None and (not np.isfinite(s.bolus_mm) or s.bolus_mm < 0):
        raise ElectronPlanningError(f"bolus thickness must be >= 0 mm, got {s.bolus_mm}")
    rho = s.target_relative_electron_density
    if rho is not None and (not np.isfinite(rho) or not 0.5 <= rho <= 2.0):
        raise ElectronPlanningError(
            f"relative electron density of the gland layer must be in [0.5, 2], got {rho}"
        )
    if margin < 0:
        raise ElectronPlanningError(f"lateral margin must be >= 0 mm, got {margin}")
    check_dose_inputs(dev, prescription_gy * 100.0, iso, s.rescale)
    return _Prescription(thickness, width, float(prescription_gy), iso, margin)


def _monitor_units(
    dev: ElectronDevice,
    s: ElectronPlanSettings,
    rx: _Prescription,
    sel: BeamSelection,
    warnings: list[str],
) -> tuple[MuRequest, MuCalculation, SecondCheck]:
    """The worksheet MU and the independent check, from one request (today's air or reference)."""
    if s.pressure_hpa is None:
        pressure = dev.reference_pressure_hpa
        if dev.chamber_correction_mode in ("pressure", "pressure_temperature"):
            warnings.append(
                f"air pressure not given: MU computed at the reference pressure {pressure:g} "
                "hPa; recompute with today's pressure before treatment"
            )
    else:
        pressure = float(s.pressure_hpa)
    request = MuRequest(
        dose_cgy=rx.prescription_gy * 100.0,
        applicator_cm=sel.applicator_cm,
        bevel_deg=sel.bevel_deg,
        energy_mev=sel.energy_mev,
        pressure_hpa=pressure,
        isodose_pct=rx.isodose_pct,
        rescale=s.rescale,
        # Without the day's air the MU are at the chamber's reference air, temperature included.
        temperature_c=s.temperature_c
        if s.pressure_hpa is not None or not dev.temperature_correction
        else dev.reference_temperature_c,
    )
    primary = calculate_mu(request, dev)
    check = second_check(request, dev)
    if not check.within_action_level:
        warnings.append(
            f"independent MU check differs by {check.difference_pct:+.2f} % (action level "
            f"{check.action_level_pct:g} %): investigate before treatment"
        )
    return request, primary, check


def plan_electron(
    case: Case,
    settings: ElectronPlanSettings | None = None,
    *,
    phantom: Phantom | None = None,
    device: ElectronDevice | None = None,
) -> ElectronPlanResult:
    """Plan an ELIOT-style electron IORT treatment for a case.

    Parameters
    ----------
    case:
        The case; ``anatomy.target_thickness_mm`` and ``anatomy.target_width_mm`` are required.
    settings:
        Overrides of the planner's defaults and choices (:class:`ElectronPlanSettings`).
    phantom:
        Optional voxel phantom; with it the 3D dose, target coverage and organ doses are
        computed, the beam placed as ``settings.in_phantom`` says (:class:`PhantomOptions`).
    device:
        Electron device; the built-in LIAC HWL by default.

    Raises
    ------
    ElectronPlanningError
        Missing target measurements, a target deeper than every R90 or wider than every 90 %
        isodose, or inconsistent inputs.
    ElectronSettingError
        A forced setting that is not in the device data.
    """
    s = settings or ElectronPlanSettings()
    dev = device or load_electron_device()
    warnings: list[str] = []
    rx = _prescription(case, s, dev, warnings)

    # Placement in the phantom: target, its electron density, gland-surface inclination
    place: BeamPlacement | None = None
    rho_target = s.target_relative_electron_density or 1.0
    inclination = s.surface_inclination_deg
    if phantom is not None:
        place = choose_placement(phantom, s.in_phantom, rx.thickness_mm, rx.width_mm)
        if inclination is None and place.surface_inclination_deg is not None:
            inclination = place.surface_inclination_deg
        rho_target = target_electron_density(phantom, place)
        warnings += thickness_warnings(phantom, place, rx.thickness_mm)
    if inclination is None:
        inclination = 0.0
    if not np.isfinite(inclination) or not 0 <= inclination < 90:
        raise ElectronPlanningError(
            f"surface inclination must be in [0, 90) deg, got {inclination}"
        )

    # Bevel, applicator, energy
    need = TargetReach(
        thickness_mm=rx.thickness_mm,
        depth_mm=rx.thickness_mm * rho_target,
        width_mm=rx.width_mm,
        margin_mm=rx.margin_mm,
        bolus_mm=s.bolus_mm,
    )
    sel = select_beam(
        dev, need, BeamChoice(inclination, s.applicator_cm, s.bevel_deg, s.energy_mev)
    )
    warnings += sel.warnings

    # Monitor units
    request, primary, check = _monitor_units(dev, s, rx, sel, warnings)
    delivered_max = (
        primary.monitor_units
        * primary.output_factor_cgy_per_mu
        / primary.chamber_correction
        / s.rescale
        / 100.0
    )

    # Shielding disc, depth profile
    disc, disc_warnings = place_disc(
        sel.beam,
        s.disc,
        s.disc_diameter_mm,
        float(rx.thickness_mm),
        need.depth_mm + sel.bolus_mm,
        sel.applicator_cm,
        lookup=dev.disc,  # the machine's own disc set
    )
    warnings += disc_warnings
    depth, prof, dose_at_depth = depth_profile(
        sel.beam, delivered_max, disc, sel.bolus_mm, rho_target, rx.thickness_mm
    )

    chars = sel.beam.characteristics
    result = ElectronPlanResult(
        device=dev.to_dict(),
        applicator_diameter_cm=sel.applicator_cm,
        bevel_deg=sel.bevel_deg,
        energy_mev=sel.energy_mev,
        prescription_gy=rx.prescription_gy,
        isodose_pct=rx.isodose_pct,
        pressure_hpa=request.pressure_hpa,
        temperature_c=request.temperature_c,
        chamber_correction=primary.chamber_correction,
        rescale=s.rescale,
        output_factor_cgy_per_mu=primary.output_factor_cgy_per_mu,
        monitor_units=primary.monitor_units,
        monitor_units_exact=primary.monitor_units_exact,
        second_check=check,
        dose_max_gy=rx.prescription_gy / (rx.isodose_pct / 100.0),
        delivered_dose_max_gy=delivered_max,
        beam={
            **chars.to_dict(),
            "r90_mc_mm": round(chars.r90_mm, 3),
            "mc_rel_uncertainty_at_max": round(sel.beam.rel_uncertainty_at_max, 6),
        },
        r90_measured_mm=sel.r90_measured_mm,
        target_thickness_mm=float(rx.thickness_mm),
        target_water_equivalent_thickness_mm=need.depth_mm,
        target_width_mm=float(rx.width_mm),
        required_width90_mm=need.required_width_mm,
        surface_inclination_deg=float(inclination),
        bolus_mm=float(sel.bolus_mm),
        bolus_reason=sel.bolus_reason,
        disc=None if disc is None else disc.to_dict(),
        depth_mm=depth,
        depth_dose_gy=prof,
        dose_at_depth_gy=dose_at_depth,
        rejected_alternatives=sel.rejected,
        warnings=warnings,
    )
    if phantom is not None and place is not None:
        dose_in_phantom(
            result,
            phantom,
            place,
            disc,
            dev,
            bolus_mm=sel.bolus_mm,
            density_scaling=s.in_phantom.density_scaling,
        )
    return result
