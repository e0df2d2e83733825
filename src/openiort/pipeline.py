"""One call from a case to a finished plan: the technique's planner, then the report sections."""

from __future__ import annotations

from pathlib import Path

from openiort.anatomy.breast_phantom import gland_fraction
from openiort.anatomy.phantom import Phantom
from openiort.case import Case, CaseError, implausible_values
from openiort.clinical.section import build_clinical_section
from openiort.devices.xray import load_commissioning, load_example_source
from openiort.engines import McSettings, resolve_engine_name
from openiort.evaluation.limits import load_limits
from openiort.plan import PlanResult
from openiort.plan_document import AppliedDefault
from openiort.planning.xray import plan_xray
from openiort.radiobiology import build_radiobiology_section


def phantom_defaults(case: Case) -> list[AppliedDefault]:
    """What the breast phantom (:mod:`openiort.anatomy.breast_phantom`) assumes for the case
    fields it needs that the case leaves out; none when planning on a CT."""
    a, pre = case.anatomy, case.preoperative
    defaults: list[AppliedDefault] = []
    if pre.laterality is None:
        defaults.append(
            AppliedDefault(
                field="preoperative.laterality",
                value="left",
                why="not in the case: the phantom is a left breast, with the heart modelled "
                "(the side where the heart can receive dose)",
            )
        )
    measured_shape = a.breast_base_diameter_mm is not None and a.breast_projection_mm is not None
    if a.breast_cup is None and not measured_shape:
        defaults.append(
            AppliedDefault(
                field="anatomy.breast_cup",
                value="C",
                why="not in the case (nor the measured breast dimensions): the cup C breast "
                "dimensions of anatomy/data/breast_cup_dimensions.csv",
            )
        )
    if a.breast_density is None:
        defaults.append(
            AppliedDefault(
                field="anatomy.breast_density",
                value="unknown",
                why=f"not in the case: breast tissue of {gland_fraction(case) * 100:g} % gland by "
                "mass, as TG-186 recommends when nothing is known "
                "(anatomy/data/breast_density_gland_fraction.csv)",
            )
        )
    if pre.clock_position is None and pre.quadrant is None:
        defaults.append(
            AppliedDefault(
                field="preoperative.clock_position",
                value="central",
                why="neither the clock position nor the quadrant is in the case: the cavity is "
                "placed behind the nipple",
            )
        )
    return defaults


def plan_case(
    case: Case,
    source_data: Path | None = None,
    ct_phantom: Phantom | None = None,
    engine: str | None = None,
    mc_options: McSettings | None = None,
    compare_with: str | None = None,
    limits_file: Path | None = None,
) -> PlanResult:
    """Plan ``case`` with the planner of its technique and attach every report section.

    ``ct_phantom`` plans on the patient's CT instead of the phantom built from the case
    (x-ray technique). ``engine`` is a registered engine of the case's technique
    (:mod:`openiort.engines`; None: the technique's default). ``compare_with`` names another
    engine of the technique whose dose the report shows beside the plan's (an x-ray Monte Carlo
    plan is compared with the water table unless told otherwise).

    Every value the case leaves out that planning supplies is listed in the plan's
    ``defaults_applied``; values that look like a unit slip
    (:func:`openiort.case.implausible_values`) are planned as given, with a warning: the
    command line and the web form ask for their confirmation before planning.
    ``limits_file`` is a department's organ-at-risk limits (format of
    :mod:`openiort.evaluation.limits`) in place of openiort's IORT defaults.
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
    limits = load_limits(limits_file) if limits_file is not None else None
    device_data: object = None  # what the engines compute with: the source, the machine
    if technique == "xray":
        source = load_commissioning(source_data) if source_data else load_example_source()
        device_data = source
        plan = plan_xray(
            case,
            source=source,
            ct_phantom=ct_phantom,
            engine=engine_name,
            mc_options=mc_options,
            limits=limits,
        )
    elif technique == "hdr":  # each technique's stack is imported only when it is planned
        from openiort.planning.hdr_case import plan_hdr_case

        plan = plan_hdr_case(case, limits=limits)
    else:
        from openiort.devices.electron import load_electron_device
        from openiort.planning.electron_case import plan_electron_case

        plan = plan_electron_case(case, limits=limits)
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
    if ct_phantom is None:
        plan.defaults_applied += phantom_defaults(case)
    # A value that looks like a unit slip reaches planning only once confirmed (`iort plan
    # --accept-implausible`, the web form's confirmation); the plan keeps it in view.
    plan.warnings += [f"{v.message}: planned as given" for v in implausible_values(case)]
    plan.sections["clinical"] = build_clinical_section(case)
    plan.sections["radiobiology"] = build_radiobiology_section(
        plan.depth_profile_mm,
        plan.depth_profile_water_gy,
        plan.details.treatment_time_min,
        plan.technique,
    )
    return plan
