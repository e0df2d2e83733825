"""Plan a 50 kV spherical-applicator case: applicator, time, 3D dose, evaluation, warnings."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from openiort.anatomy.breast_phantom import anatomy_parameters, build_breast_phantom
from openiort.anatomy.phantom import Phantom
from openiort.case import Case, CaseError
from openiort.datafiles import read_data
from openiort.delivery import XrayDelivery
from openiort.devices.xray import (
    EXAMPLE_SOURCE_LABEL,
    DoseDefinition,
    TreatmentTime,
    XraySource,
    choose_applicator,
    load_example_source,
    treatment_time,
)
from openiort.dose.table import radial_depth_mm
from openiort.dosegrid import DoseGrid
from openiort.engines import McSettings, make_engine, resolve_engine_name
from openiort.evaluation.limits import LimitSet
from openiort.evaluation.metrics import evaluate, exceeded_limits
from openiort.plan import REPORT_DEPTHS_MM, PlanResult, depth_key
from openiort.plan_document import AppliedDefault
from openiort.plan_figures import (
    ConsoleTimeCheck,
    OtherDefinitionDose,
    XrayBandPoint,
    XrayDepthDoseUncertainty,
    XrayFigures,
    XrayPhysicalDose,
    XraySecondCheck,
)
from openiort.planning.xray_shield import apply_shield, shield_figures

DEFAULT_PRESCRIPTION_GY = 20.0  # TARGIT-A: 20 Gy at the applicator surface (AAPM TG-292)
DEFAULT_DOSE_DEFINITION: DoseDefinition = "TARGIT"
# openiort's choice, not a published limit: applicator sizes step by 5 mm and the largest that
# fits is chosen, so a wider gap arises only when the cavity exceeds the 5 cm applicator by more
# than 5 mm, and the tissue must then be drawn in further than usual.
CAVITY_GAP_WARNING_MM = 5.0


def _devices_csv(name: str) -> list[dict[str, str]]:
    return read_data("openiort.devices", f"data/{name}").rows()


def xray_prescription(case: Case) -> tuple[float, DoseDefinition, list[AppliedDefault]]:
    """The case's prescription and dose definition, and a record of each default applied."""
    defaults: list[AppliedDefault] = []
    rx_gy = case.intent.prescription_gy
    if rx_gy is None:
        rx_gy = DEFAULT_PRESCRIPTION_GY
        defaults.append(
            AppliedDefault(
                field="intent.prescription_gy",
                value=rx_gy,
                why="not in the case: 20 Gy at the applicator surface, the TARGIT-A "
                "prescription (AAPM TG-292)",
            )
        )
    definition = case.intent.dose_definition
    if definition is None:
        definition = DEFAULT_DOSE_DEFINITION
        defaults.append(
            AppliedDefault(
                field="intent.dose_definition",
                value=definition,
                why="not in the case: the TARGIT definition, in which TARGIT-A's 20 Gy was "
                "prescribed (AAPM TG-292); V4.0 gives a different dose for the same time",
            )
        )
    return float(rx_gy), definition, defaults


def targit_dose(water: DoseGrid, src: XraySource, diameter_cm: float, phantom: Phantom) -> DoseGrid:
    """The table engine's dose to water (V4.0) restated in the nominal TARGIT definition: each
    voxel divided by the source's V4.0/TARGIT ratio at its depth below the applicator surface
    (for organ-at-risk limits stated in the TARGIT definition)."""
    depth = np.maximum(radial_depth_mm(phantom), 0.0)
    ratio = src.ratio_v40_over_targit(diameter_cm, depth)
    return replace(
        water,
        dose_gy=water.dose_gy / ratio,
        normalisation=water.normalisation + "; divided by the V4.0/TARGIT ratio at each depth",
        notes=(*water.notes, "nominal TARGIT dose: V4.0 dose / (V4.0/TARGIT ratio at depth)"),
    )


def prescription_point(depth_mm: float) -> str:
    """Where the prescription applies, as plan.json and the report name it."""
    if depth_mm == 0:
        return "applicator surface"
    return f"{depth_mm:g} mm below the applicator surface"


def console_time_check(
    console_time_min: float | None, time: TreatmentTime
) -> ConsoleTimeCheck | None:
    """The device console's time for the prescription against the primary time."""
    if console_time_min is None:
        return None
    diff = 100.0 * (console_time_min - time.time_min) / time.time_min
    return ConsoleTimeCheck(
        console_time_min=console_time_min,
        expected_time_min=round(time.time_min, 3),
        difference_pct=round(diff, 3),
        tolerance_pct=time.tolerance_pct,
        agrees_within_tolerance=abs(diff) <= time.tolerance_pct,
    )


def placement_warnings(case: Case) -> list[str]:
    warnings = []
    measured = {
        "skin": case.anatomy.skin_distance_mm,
        "chest_wall": case.anatomy.chest_wall_distance_mm,
    }
    for row in _devices_csv("xray50_placement_limits.csv"):
        value = measured[row["structure"]]
        limit = float(row["min_distance_mm"])
        if value is not None and value < limit:
            warnings.append(
                f"{row['structure'].replace('_', ' ')} is {value:g} mm from the cavity edge, closer "
                f"than {limit:g} mm ({row['source']})"
            )
    return warnings


def phantom_on_ct(
    ct_phantom: Phantom,
    applicator_radius_mm: float,
    centre_mm: tuple[float, float, float] | None,
    material: str = "applicator_pei",
) -> Phantom:
    """The CT phantom with the applicator (of ``material``; an HDR balloon: water) placed and,
    unless contoured, the target rind."""
    from openiort.anatomy.applicator import place_applicator

    try:
        phantom = place_applicator(
            ct_phantom, applicator_radius_mm, centre_mm=centre_mm, material=material
        )
    except ValueError as exc:  # no cavity structure, or the sphere leaves the CT
        raise CaseError("case", [f"anatomy.cavity_centre_mm: {exc}"]) from None
    if "target" not in phantom.structures:
        rind_mm = float(anatomy_parameters()["target_rind_mm"])
        depth = phantom.grid.distance_from_mm(phantom.applicator_centre_mm) - applicator_radius_mm  # type: ignore[arg-type]
        body = (
            phantom.material_ids != phantom.materials.index("air")
            if "air" in phantom.materials
            else np.ones(phantom.grid.shape, bool)
        )
        target = (depth > 0) & (depth <= rind_mm) & body
        for excluded in ("skin", "chest_wall", "ribs", "lung", "heart"):
            if excluded in phantom.structures:
                target &= ~phantom.structures[excluded]
        phantom.structures["target"] = target
    return phantom


V40_LABEL = (
    "V4.0 as Zeiss defines it (the PTW 34013 reading at its entrance foil, no volume-averaging "
    "correction; AAPM TG-292): a nominal dose to water, not the physical point dose"
)
TARGIT_LABEL = "TARGIT as Zeiss defines it (the trials' definition; AAPM TG-292)"


def dose_definitions(definition: DoseDefinition, engine_name: str) -> dict[str, str]:
    """Which dose definition each of the plan's dose tables is in."""
    rx = TARGIT_LABEL if definition == "TARGIT" else V40_LABEL
    grid = (
        "dose to medium in medium from the Monte Carlo engine (TG-186): neither TARGIT nor V4.0"
        if engine_name == "xray.mc"
        else V40_LABEL
    )
    return {
        "prescription": rx,
        "dose_at_depth_gy": rx,
        "dose_at_depth_water_gy": V40_LABEL,
        "dvhs_and_metrics": grid,
        "organ_limits": "each limit in the definition its row names (TARGIT or V4.0 from the "
        "water table, medium from Monte Carlo)",
        "dicom_rtdose": grid,
        "physical_dose": "estimated physical point dose to water (V4.0 / chamber factor): "
        "report physics section only",
    }


def physical_dose(src: XraySource, diameter_cm: float, time_min: float) -> XrayPhysicalDose:
    """The estimated physical point dose to water at the applicator surface."""
    from openiort.devices.xray_chamber import surface_chamber_factor

    f = surface_chamber_factor(src, diameter_cm)
    v40 = float(src.dose_rate_gy_min(diameter_cm, 0.0, "V4.0")) * time_min
    return XrayPhysicalDose(
        chamber=f.chamber,
        chamber_factor=round(f.factor, 4),
        chamber_factor_range=(round(f.factor_low, 4), round(f.factor_high, 4)),
        surface_dose_v40_gy=round(v40, 4),
        physical_point_dose_gy=round(v40 / f.factor, 4),
        physical_point_dose_range_gy=(round(v40 / f.factor_high, 4), round(v40 / f.factor_low, 4)),
        geometry_source=f.source,
        not_included=f.cq_note,
    )


def depth_dose_uncertainty(src: XraySource, diameter_cm: float) -> XrayDepthDoseUncertainty:
    """The depth-dose's per-depth uncertainty band (openiort.devices.xray_uncertainty)."""
    from openiort.devices.xray_uncertainty import depth_dose_band, sources

    return XrayDepthDoseUncertainty(
        statement="relative uncertainty of the depth-dose about its surface value, per depth: "
        "the quadrature sum of the components (an estimate treating published ranges as "
        "independent standard uncertainties); the output and dose-definition uncertainties "
        "are in the uncertainty table",
        sources=sources(),
        points=[XrayBandPoint(**vars(p)) for p in depth_dose_band(src, diameter_cm)],
    )


McOptions = McSettings  # the Monte Carlo settings of ``--engine xray.mc``


def plan_xray(
    case: Case,
    source: XraySource | None = None,
    spacing_mm: float = 1.0,
    ct_phantom: Phantom | None = None,
    engine: str = "xray.table",
    mc_options: McSettings | None = None,
    limits: LimitSet | None = None,
) -> PlanResult:
    """Plan an x-ray IORT case on the phantom built from its measurements, or on a CT.

    With ``ct_phantom`` (from :func:`openiort.inputs.ct.load_ct_phantom`) the applicator is
    placed at ``anatomy.cavity_centre_mm`` or the centroid of the "cavity" structure.
    ``limits``: the organ-at-risk limits to check (a department's set); by default openiort's
    IORT limits for x-ray (:mod:`openiort.evaluation.limits`), checked in the dose definition
    each limit names (TARGIT or V4.0, from the water table's dose; medium from Monte Carlo).
    """
    if case.intent.technique != "xray":
        raise CaseError(
            "case", [f"intent.technique: value {case.intent.technique!r} is not 'xray'"]
        )
    if case.anatomy.cavity_diameter_mm is None:
        raise CaseError(
            "case", ["anatomy.cavity_diameter_mm: required for x-ray planning, got null"]
        )
    src = source or load_example_source()
    rx_gy, definition, defaults = xray_prescription(case)
    rx_depth_mm = float(case.intent.prescription_depth_mm or 0.0)
    diameter = choose_applicator(src, case.anatomy.cavity_diameter_mm)
    time = treatment_time(src, diameter, rx_gy, definition, rx_depth_mm)
    if ct_phantom is None:
        phantom = build_breast_phantom(
            case, applicator_radius_mm=diameter * 5.0, spacing_mm=spacing_mm
        )
    else:
        phantom = phantom_on_ct(ct_phantom, diameter * 5.0, case.anatomy.cavity_centre_mm)
    engine_name = resolve_engine_name("xray", engine)
    delivery = XrayDelivery(
        device=src.data_ref(),
        applicator_diameter_cm=diameter,
        treatment_time_min=time.time_min,
        prescription_gy=rx_gy,
        dose_definition=definition,
    )
    water_dose = make_engine("xray.table", src).compute(delivery, phantom)
    dose = water_dose
    if engine_name == "xray.mc":
        # Dose to medium in medium is the plan's dose (TG-186); the pipeline puts the water
        # table's dose beside it (openiort.planning.engine_comparison).
        opts = mc_options or McSettings()
        dose = make_engine(engine_name, src, settings=opts).compute(delivery, phantom)
    shield = shield_figures(case, src, diameter, time.time_min)
    shield_in_3d = False
    if shield is not None:
        shielded_water = apply_shield(water_dose, phantom, shield)
        if shielded_water is not None:
            shield_in_3d = True
            dose = shielded_water if dose is water_dose else apply_shield(dose, phantom, shield)  # type: ignore[assignment]
            water_dose = shielded_water
    dvhs, metrics, constraints = evaluate(
        phantom,
        dose,
        technique="xray",
        limits=limits,
        prescription_gy=rx_gy,
        definitions={
            "V4.0": water_dose,
            "TARGIT": targit_dose(water_dose, src, diameter, phantom),
        },
    )

    depth_profile = np.arange(0.0, 40.5, 0.5)
    water_rate = src.dose_rate_gy_min(diameter, depth_profile, "V4.0")
    rx_rate = src.dose_rate_gy_min(diameter, depth_profile, definition)
    water = water_rate * time.time_min
    in_definition = rx_rate * time.time_min
    other: DoseDefinition = "V4.0" if definition == "TARGIT" else "TARGIT"
    other_at_rx = float(src.dose_rate_gy_min(diameter, rx_depth_mm, other)) * time.time_min

    warnings = []
    if src.is_example_source:
        warnings.append(
            f"Treatment time computed with the {EXAMPLE_SOURCE_LABEL}: load your source's commissioning data"
        )
    if not time.agrees:
        warnings.append(
            f"Second check differs from the primary time by {time.difference_pct:+.1f} % "
            f"(> {time.tolerance_pct:g} %): do not treat until resolved"
        )
    if case.anatomy.cavity_diameter_mm - diameter * 10 > CAVITY_GAP_WARNING_MM:
        warnings.append(
            f"the {diameter:g} cm applicator is {case.anatomy.cavity_diameter_mm - diameter * 10:g} mm "
            "smaller than the cavity: the tissue must be drawn onto it with purse-string sutures"
        )
    console = console_time_check(case.intent.console_time_min, time)
    if console is not None and not console.agrees_within_tolerance:
        warnings.append(
            f"the console's time {console.console_time_min:.2f} min differs from the "
            f"{console.expected_time_min:.2f} min expected from the loaded source tables by "
            f"{console.difference_pct:+.1f} % (> {console.tolerance_pct:g} %): check the "
            "source data loaded in the device and here"
        )
    if shield is not None:
        warnings.append(
            f"{shield.location.replace('_', ' ')} shield ({shield.thickness_mm:g} mm "
            f"{shield.material}): dose behind it {shield.dose_behind_table_gy:.3g} Gy (table x "
            f"Monte Carlo transmission {100 * shield.transmission:.2f} %) instead of "
            f"{shield.dose_behind_without_gy:.2f} Gy; "
            + (
                "the 3D dose, DVHs and organ limits include it (dose behind x transmission)"
                if shield_in_3d
                else "no chest wall or skin structure to place it against: the 3D dose, DVHs "
                "and organ limits do not include the shield"
            )
        )
    warnings += placement_warnings(case)
    warnings += exceeded_limits(constraints)
    warnings += [f"phantom: {w}" for w in phantom.warnings]

    plan = PlanResult(
        case_id=case.patient.id,
        technique="xray",
        delivery=delivery,
        prescription_gy=rx_gy,
        prescription_definition=definition,
        prescription_point=prescription_point(rx_depth_mm),
        details=XrayFigures(
            applicator_diameter_cm=diameter,
            treatment_time_min=round(time.time_min, 3),
            treatment_time_label=EXAMPLE_SOURCE_LABEL if src.is_example_source else src.name,
            second_check=XraySecondCheck(
                treatment_time_min=round(time.second_check_time_min, 3),
                difference_pct=round(time.difference_pct, 3),
                primary_path=time.primary_path,
                second_path=time.second_path,
                tolerance_pct=time.tolerance_pct,
                agrees_within_tolerance=time.agrees,
            ),
            prescription_other_definition=OtherDefinitionDose(
                dose_definition=other, dose_gy=round(other_at_rx, 3)
            ),
            console_time=console,
            shield=shield,
            dose_definitions=dose_definitions(definition, engine_name),
            physical_dose=physical_dose(src, diameter, time.time_min),
            depth_dose_uncertainty=depth_dose_uncertainty(src, diameter),
        ),
        dose_at_depth_gy={
            depth_key(z): round(float(np.interp(z, depth_profile, in_definition)), 4)
            for z in REPORT_DEPTHS_MM
        },
        dose_at_depth_water_gy={
            depth_key(z): round(float(np.interp(z, depth_profile, water)), 4)
            for z in REPORT_DEPTHS_MM
        },
        depth_profile_mm=depth_profile.tolist(),
        depth_profile_water_gy=water.tolist(),
        depth_profile_definition_gy=in_definition.tolist(),
        metrics=metrics,
        constraints=constraints,
        warnings=warnings,
        uncertainty=_devices_csv("xray50_uncertainty.csv"),
        dose=dose,
        phantom=phantom,
        dvhs=dvhs,
        device={
            "source": src.name,
            "example_source": src.is_example_source,
            "depth_dose_origin": src.depth_dose_origin,
            "applicator_diameters_available_cm": src.diameters_cm,
        },
        defaults_applied=defaults,
    )

    return plan
