"""HDR brachytherapy plan of a case, as the common plan results object."""

from __future__ import annotations

import numpy as np

from openiort.anatomy.breast_phantom import build_breast_phantom
from openiort.case import Case, CaseError
from openiort.evaluation.limits import LimitSet
from openiort.evaluation.metrics import evaluate, exceeded_limits, radial_profile_gy
from openiort.plan import REPORT_DEPTHS_MM, PlanResult, depth_key
from openiort.plan_document import AppliedDefault
from openiort.planning.hdr import plan_hdr_from_case

DEFAULT_APPLICATOR = "balloon"


def plan_hdr_case(
    case: Case, applicator: str | None = None, limits: LimitSet | None = None
) -> PlanResult:
    """Balloon (or surface) HDR plan on the phantom built from the case's measurements.

    ``applicator`` None: the balloon (the case has no field for it), listed among the plan's
    defaults with the prescription depth, which is always the applicator's default here.
    """
    defaults: list[AppliedDefault] = []
    if applicator is None:
        applicator = DEFAULT_APPLICATOR
        defaults.append(
            AppliedDefault(
                field="hdr.applicator",
                value=applicator,
                why="HDR applicator not given (the case has no field for it): a balloon "
                "filling the cavity",
            )
        )
    if case.anatomy.cavity_diameter_mm is None:
        raise CaseError("case", ["anatomy.cavity_diameter_mm: required for HDR planning, got null"])
    if case.intent.prescription_gy is None:
        raise CaseError("case", ["intent.prescription_gy: required for HDR planning, got null"])
    # The balloon is inflated to fill the cavity with saline (water).
    phantom = build_breast_phantom(
        case, applicator_radius_mm=case.anatomy.cavity_diameter_mm / 2, applicator_material="water"
    )
    result = plan_hdr_from_case(case, phantom, applicator=applicator)  # type: ignore[arg-type]
    dose = result.to_dose_grid()
    dvhs, metrics, constraints = evaluate(
        phantom, dose, technique="hdr", limits=limits, prescription_gy=result.prescription_gy
    )
    depths = np.arange(0.0, 40.5, 1.0)
    tissue = phantom.material_ids != phantom.materials.index("air")
    tissue &= ~phantom.structures["applicator"]
    centre, radius = phantom.applicator_centre_mm, phantom.applicator_radius_mm
    assert centre is not None and radius is not None  # the breast phantom always sets both
    profile = np.nan_to_num(radial_profile_gy(dose, centre, radius, depths, tissue))
    at_depth = {
        depth_key(z): round(float(np.interp(z, depths, profile)), 4) for z in REPORT_DEPTHS_MM
    }
    warnings = list(result.warnings) + exceeded_limits(constraints)
    defaults.append(
        AppliedDefault(
            field="hdr.prescription_depth_mm",
            value=result.prescription_depth_mm,
            why=f"prescription depth (the case has no field for it): the {applicator} "
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
        dose_at_depth_water_gy=at_depth,
        depth_profile_mm=depths.tolist(),
        depth_profile_water_gy=profile.tolist(),
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
