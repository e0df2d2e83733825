"""HDR brachytherapy plan of a case, as the common plan results object."""

from __future__ import annotations

import dataclasses

import numpy as np

from openiort.anatomy.breast_phantom import build_breast_phantom
from openiort.anatomy.materials import balloon_fill_name
from openiort.anatomy.phantom import Phantom
from openiort.case import Case, CaseError
from openiort.devices.hdr_source import HdrSourceRecord, hdr_protocol
from openiort.engines import DoseEngine
from openiort.evaluation.limits import LimitSet
from openiort.evaluation.metrics import evaluate, exceeded_limits, radial_profile_gy
from openiort.plan import REPORT_DEPTHS_MM, PlanResult, depth_key
from openiort.plan_document import AppliedDefault
from openiort.planning.hdr import ApplicatorKind, plan_hdr_from_case
from openiort.planning.hdr_quality import ct_balloon_indices

DEFAULT_APPLICATOR = "single_lumen_balloon"


def balloon_on_ct(case: Case, ct_phantom: Phantom) -> Phantom:
    """A post-implant CT with the balloon placed where it is contoured (structure
    ``applicator``: ROIs named Balloon, Applicator_IORT ... are mapped to it): the sphere of the
    contour's volume at its centroid, filled with saline (water). Without a contour, the
    case's cavity diameter at its cavity centre (or the cavity contour's centroid)."""
    from openiort.anatomy.applicator import sphere_from_mask
    from openiort.planning.xray import phantom_on_ct

    grid = ct_phantom.grid
    balloon = ct_phantom.structures.get("applicator")
    centre: tuple[float, float, float] | None
    if balloon is not None and balloon.any():
        centre, radius = sphere_from_mask(balloon, grid.axes_mm(), grid.voxel_volume_cc)
    elif case.anatomy.cavity_diameter_mm is not None:
        centre, radius = case.anatomy.cavity_centre_mm, case.anatomy.cavity_diameter_mm / 2
    else:
        raise CaseError(
            "case",
            [
                "post-implant CT: no balloon structure (map its ROI with --roi-map "
                "NAME=applicator) and no anatomy.cavity_diameter_mm"
            ],
        )
    phantom = phantom_on_ct(ct_phantom, radius, centre, material=balloon_material(case))
    if phantom.shaft_direction is None:
        phantom = dataclasses.replace(
            phantom, shaft_direction=towards_nearest_skin(phantom), warnings=list(phantom.warnings)
        )
        phantom.warnings.append(
            "HDR on CT: the catheter axis is taken from the balloon centre to the nearest skin "
            "(a contoured catheter is not read); check it against the CT"
        )
    return phantom


def towards_nearest_skin(phantom: Phantom) -> tuple[float, float, float]:
    """Unit vector from the applicator centre to the nearest skin voxel (else the nearest air
    voxel): the catheter's way out of the breast, when the CT does not show it."""
    centre = phantom.applicator_centre_mm
    assert centre is not None  # placed by phantom_on_ct
    skin = phantom.structures.get("skin")
    if skin is None or not skin.any():
        skin = (
            phantom.material_ids == phantom.materials.index("air")
            if "air" in phantom.materials
            else None
        )
    if skin is None or not skin.any():
        raise CaseError("case", ["post-implant CT: no skin or air to run the catheter to"])
    distance = np.where(skin, phantom.grid.distance_from_mm(centre), np.inf)
    index = np.unravel_index(int(np.argmin(distance)), distance.shape)
    point = phantom.grid.index_to_position_mm(np.asarray(index, dtype=np.float64))
    axis = point - np.asarray(centre)
    axis /= np.linalg.norm(axis)
    return (float(axis[0]), float(axis[1]), float(axis[2]))


def balloon_material(case: Case) -> str:
    """The balloon's fill: water (saline), or saline with the case's contrast."""
    pct = case.intent.hdr_balloon_contrast_pct
    return "water" if not pct else balloon_fill_name(pct)


def plan_hdr_case(
    case: Case,
    applicator: str | None = None,
    limits: LimitSet | None = None,
    source_record: HdrSourceRecord | None = None,
    ct_phantom: Phantom | None = None,
    dose_engine: DoseEngine | None = None,
) -> PlanResult:
    """Balloon (or surface) HDR plan on the phantom built from the case's measurements, or on
    a post-implant CT (``ct_phantom``, :func:`openiort.inputs.ct.load_ct_phantom`) with the
    balloon as a structure (:func:`balloon_on_ct`).

    ``applicator``: one of the applicator models of ``hdr_protocol.yaml``
    (``intent.hdr_applicator`` of the case when None; when neither, the single-lumen balloon,
    listed among the plan's defaults with the prescription depth, which is always the
    applicator's default here). ``source_record``: the department's source (None: the example
    source, not approvable). ``dose_engine``: the engine of the plan's dose, DVHs and limits
    (None: TG-43; ``hdr.mc``: Ir-192 Monte Carlo in the tissues, :mod:`openiort.dose.mc.hdr_dose`); the dwell times
    are always optimised with TG-43.
    """
    defaults: list[AppliedDefault] = []
    applicator = applicator or case.intent.hdr_applicator
    if applicator is None:
        applicator = DEFAULT_APPLICATOR
        defaults.append(
            AppliedDefault(
                field="intent.hdr_applicator",
                value=applicator,
                why="HDR applicator not given: a single-lumen balloon filling the cavity",
            )
        )
    models = hdr_protocol()["applicators"]
    if applicator not in models or not isinstance(models[applicator], dict):
        known = [k for k, v in models.items() if isinstance(v, dict)]
        raise CaseError("case", [f"hdr applicator {applicator!r}: use one of {', '.join(known)}"])
    kind: ApplicatorKind = "surface" if applicator == "surface" else "balloon"
    offsets = tuple(float(o) for o in models[applicator].get("lumens_offset_mm", []))
    intent = case.intent
    min_interval = intent.min_interval_h
    if intent.fractions > 1 and min_interval is None:
        min_interval = float(hdr_protocol()["course"]["default_min_interval_h"])
        defaults.append(
            AppliedDefault(
                field="intent.min_interval_h",
                value=min_interval,
                why="minimum interval between fractions not given: the twice-daily minimum "
                "of the NSABP B-39/RTOG 0413 schedule (devices/data/tg43/hdr_protocol.yaml)",
            )
        )
    if case.intent.prescription_gy is None:
        raise CaseError("case", ["intent.prescription_gy: required for HDR planning, got null"])
    if ct_phantom is not None:
        if kind != "balloon":
            raise CaseError("case", ["intent.hdr_applicator: on a CT, HDR plans use a balloon"])
        phantom = balloon_on_ct(case, ct_phantom)
    else:
        if case.anatomy.cavity_diameter_mm is None:
            raise CaseError(
                "case", ["anatomy.cavity_diameter_mm: required for HDR planning, got null"]
            )
        # The balloon is inflated to fill the cavity with saline (water unless the case gives
        # its contrast: TG-43 sees water either way, the hdr.mc engine the fill).
        phantom = build_breast_phantom(
            case,
            applicator_radius_mm=case.anatomy.cavity_diameter_mm / 2,
            applicator_material=balloon_material(case),
        )
    result = plan_hdr_from_case(
        case,
        phantom,
        applicator=kind,
        lumen_offsets_mm=offsets,
        source_record=source_record,
        fractions=intent.fractions,
        min_interval_h=min_interval,
        applicator_model=applicator,
    )
    result.applicator_geometry["model"] = applicator
    result.applicator_geometry["title"] = models[applicator]["title"]
    water_dose = result.to_dose_grid()
    dose = water_dose if dose_engine is None else dose_engine.compute(result.delivery, phantom)
    # Limits stated in dose to water (the protocol's, TG-43's) are checked on the TG-43 dose.
    dvhs, metrics, constraints = evaluate(
        phantom,
        dose,
        technique="hdr",
        limits=limits,
        prescription_gy=result.prescription_gy,
        definitions={"water": water_dose} if dose_engine is not None else None,
    )
    depths = np.arange(0.0, 40.5, 1.0)
    tissue = phantom.material_ids != phantom.materials.index("air")
    tissue &= ~phantom.structures["applicator"]
    centre, radius = phantom.applicator_centre_mm, phantom.applicator_radius_mm
    assert centre is not None and radius is not None  # the breast phantom always sets both
    profile = np.nan_to_num(radial_profile_gy(dose, centre, radius, depths, tissue))
    water_profile = np.nan_to_num(radial_profile_gy(water_dose, centre, radius, depths, tissue))
    at_depth = {
        depth_key(z): round(float(np.interp(z, depths, profile)), 4) for z in REPORT_DEPTHS_MM
    }
    at_depth_water = {
        depth_key(z): round(float(np.interp(z, depths, water_profile)), 4) for z in REPORT_DEPTHS_MM
    }
    warnings = list(result.warnings) + exceeded_limits(constraints)
    if dose_engine is not None:
        warnings.append(
            f"Dose, DVHs and limits by {dose_engine.name} ({dose.medium_label}); the dwell "
            "times, the prescription and the balloon quality indices are from TG-43 (dose to "
            "water in water), as TG-186 keeps the prescription in TG-43 terms."
        )
    if ct_phantom is not None:  # what the CT and the balloon's placement on it leave open
        warnings = [*phantom.warnings, *warnings]
        contour = ct_phantom.structures.get("applicator")
        if result.balloon_quality is not None and contour is not None:
            warnings += ct_balloon_indices(phantom, contour, result.balloon_quality)
    defaults.append(
        AppliedDefault(
            field="hdr.prescription_depth_mm",
            value=result.prescription_depth_mm,
            why=f"prescription depth (the case has no field for it): the {kind} "
            "applicator's default in devices/data/tg43/hdr_applicators.yaml, from the "
            f"{result.prescription_reference}",
        )
    )
    return PlanResult(
        case_id=case.patient.id,
        technique="hdr",
        delivery=result.delivery,
        prescription_gy=result.prescription_gy,
        prescription_definition=None,
        prescription_point=f"{result.prescription_depth_mm:g} mm from the {result.prescription_reference}",
        details=result.figures(),
        dose_at_depth_gy=at_depth,
        dose_at_depth_water_gy=at_depth_water,
        depth_profile_mm=depths.tolist(),
        depth_profile_water_gy=water_profile.tolist(),
        depth_profile_definition_gy=None,
        metrics=metrics,
        constraints=constraints,
        warnings=warnings,
        uncertainty=[
            {
                "component": "TG-43 dose in water vs the patient's scatter conditions",
                "value": "about 7 % (see the warnings for this plan)",
                "source": "Kirisits et al. Radiother Oncol 2014, Table 3 (as carried in devices/data/tg43/tg43_water_conditions.yaml)",
            },
        ],
        dose=dose,
        phantom=phantom,
        dvhs=dvhs,
        device={
            "source": result.source_title,
            "source_id": result.source_id,
            "depth_dose_origin": "TG-43U1 consensus data",
        },
        defaults_applied=defaults,
    )
