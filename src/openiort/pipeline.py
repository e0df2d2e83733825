"""One call from a case to a finished plan: the technique's planner, then the report sections."""

from __future__ import annotations

from pathlib import Path

from openiort.anatomy.phantom import Phantom
from openiort.case import Case, CaseError
from openiort.clinical.section import build_clinical_section
from openiort.devices.xray import load_commissioning, load_example_source
from openiort.engines import McSettings, resolve_engine_name
from openiort.plan import PlanResult
from openiort.planning.xray import plan_xray
from openiort.radiobiology import build_radiobiology_section


def plan_case(
    case: Case,
    source_data: Path | None = None,
    ct_phantom: Phantom | None = None,
    engine: str | None = None,
    mc_options: McSettings | None = None,
    compare_with: str | None = None,
) -> PlanResult:
    """Plan ``case`` with the planner of its technique and attach every report section.

    ``ct_phantom`` plans on the patient's CT instead of the phantom built from the case
    (x-ray technique). ``engine`` is a registered engine of the case's technique
    (:mod:`openiort.engines`; None: the technique's default). ``compare_with`` names another
    engine of the technique whose dose the report shows beside the plan's (an x-ray Monte Carlo
    plan is compared with the water table unless told otherwise).
    """
    technique = case.intent.technique
    engine_name = resolve_engine_name(technique, engine)
    if compare_with is None and engine_name == "xray.mc":
        compare_with = "xray.table"
    reference_engine = (
        None if compare_with is None else resolve_engine_name(technique, compare_with)
    )
    if ct_phantom is not None and technique != "xray":
        raise CaseError(
            "case",
            [f"intent.technique: planning on a CT is available for 'xray' only, not {technique!r}"],
        )
    device_data: object = None  # what the engines compute with: the source, the machine
    if technique == "xray":
        source = load_commissioning(source_data) if source_data else load_example_source()
        device_data = source
        plan = plan_xray(
            case, source=source, ct_phantom=ct_phantom, engine=engine_name, mc_options=mc_options
        )
    elif technique == "hdr":  # each technique's stack is imported only when it is planned
        from openiort.planning.hdr_case import plan_hdr_case

        plan = plan_hdr_case(case)
    else:
        from openiort.devices.electron import load_electron_device
        from openiort.planning.electron_case import plan_electron_case

        plan = plan_electron_case(case)
        device_data = load_electron_device()
    device = plan.delivery.device
    if device.is_example:
        plan.warnings.insert(
            0,
            f"Computed with example device data ({device.name}): for demonstration only, this "
            "plan cannot be approved for treatment",
        )
    if reference_engine is not None:
        from openiort.planning.engine_comparison import compare_engines

        settings = mc_options or McSettings()
        uses_mc = "xray.mc" in (engine_name, reference_engine)
        plan.sections["engine_comparison"] = compare_engines(
            plan,
            engine_name,
            reference_engine,
            device_data,
            histories=settings.histories if uses_mc else None,
            settings=settings,
        )
    plan.sections["clinical"] = build_clinical_section(case)
    plan.sections["radiobiology"] = build_radiobiology_section(
        plan.depth_profile_mm,
        plan.depth_profile_water_gy,
        plan.details.treatment_time_min,
        plan.technique,
    )
    return plan
