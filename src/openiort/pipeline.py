"""One call from a case to a finished plan: the technique's planner, then the report sections."""

from __future__ import annotations

from pathlib import Path

from openiort.anatomy.breast_phantom import gland_fraction
from openiort.anatomy.phantom import STRUCTURE_NAMES, Phantom
from openiort.case import Case, CaseError, implausible_values
from openiort.clinical.section import build_clinical_section
from openiort.delivery import HdrDelivery
from openiort.devices.xray import load_commissioning, load_example_source
from openiort.engines import McSettings, make_engine, resolve_engine_name
from openiort.evaluation.limits import LimitSet, iort_default_limits, load_limits
from openiort.plan import PlanResult
from openiort.plan_document import AppliedDefault
from openiort.planning.xray import plan_xray
from openiort.radiobiology import build_radiobiology_section

# A Monte Carlo plan is compared with its technique's water calculation unless told otherwise.
DEFAULT_COMPARISON = {"xray.mc": "xray.table", "hdr.mc": "hdr.tg43"}
MONTE_CARLO_ENGINES = frozenset({"xray.mc", "hdr.mc"})


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


def check_ct_structures(case: Case, ct_phantom: Phantom) -> None:
    """Refuse a CT whose structure set lacks what planning needs, naming the ROIs found."""
    from openiort.inputs.roi_names import StructureNameError

    structures = ct_phantom.structures
    if (
        case.anatomy.cavity_centre_mm is None
        and "cavity" not in structures
        and "applicator" not in structures
    ):
        mapping = ct_phantom.description.get("roi_mapping")
        found = list(mapping) if isinstance(mapping, dict) and mapping else list(structures)
        found += [n for n in structures if n not in found and n not in STRUCTURE_NAMES]
        raise StructureNameError(
            [
                "no cavity (or applicator) structure on the CT and no anatomy.cavity_centre_mm "
                "in the case: map the cavity's ROI with --roi-map NAME=cavity, or give the "
                "centre"
            ],
            sorted(set(found)),
        )


def missing_limit_warnings(plan: PlanResult, limits: LimitSet | None) -> list[str]:
    """One warning naming the organ-at-risk structures whose limits the plan could not check
    because its anatomy has no such structure (a CT without them, or with other names)."""
    chosen = limits if limits is not None else iort_default_limits()
    wanted = [lim.structure for lim in chosen.for_technique(plan.technique)]
    missing = sorted({s for s in wanted if s not in plan.phantom.structures})
    if not missing:
        return []
    mapping = plan.phantom.description.get("roi_mapping")
    unmapped = [n for n in plan.phantom.structures if n not in STRUCTURE_NAMES]
    found = ""
    if isinstance(mapping, dict):
        names = ", ".join(repr(n) for n in [*mapping, *unmapped]) or "none"
        found = f"; ROI names found: {names} (map one with --roi-map NAME=STRUCTURE)"
    n_checked = len(plan.constraints)
    return [
        f"organ-at-risk limits not checked for {', '.join(missing)}: no such structure in the "
        f"plan's anatomy ({n_checked} of {len(wanted)} limits of {chosen.label} checked){found}"
    ]


def _electron_machine_sections(plan: PlanResult, machine: object) -> None:
    """The MU hand calculation of an electron plan, and the example machine's warning."""
    from openiort.devices.electron import ElectronDevice
    from openiort.devices.electron.worksheet import mu_worksheet
    from openiort.plan_figures import ElectronFigures

    d = plan.details
    if not isinstance(machine, ElectronDevice) or not isinstance(d, ElectronFigures):
        return
    if machine.is_example:
        plan.warnings.insert(
            0,
            f"Monitor units computed with the {machine.label} ({machine.data_version}): load "
            "your machine's data (iort plan --machine-data FILE)",
        )
    plan.sections["mu_worksheet"] = mu_worksheet(
        machine,
        prescription_gy=plan.prescription_gy,
        isodose_pct=d.isodose_pct,
        applicator_cm=d.applicator_diameter_cm,
        bevel_deg=d.bevel_deg,
        energy_mev=d.energy_mev,
        pressure_hpa=d.pressure_hpa,
        temperature_c=d.temperature_c,
        chamber_correction=d.chamber_correction,
        rescale=d.rescale,
        monitor_units=d.monitor_units,
        monitor_units_exact=d.monitor_units_exact,
        check_output_factor=d.second_check.output_factor_mc_cgy_per_mu,
        check_monitor_units=d.second_check.monitor_units,
        check_difference_pct=d.second_check.difference_pct,
        check_action_level_pct=d.second_check.action_level_pct,
    )


def plan_case(
    case: Case,
    source_data: Path | None = None,
    ct_phantom: Phantom | None = None,
    engine: str | None = None,
    mc_options: McSettings | None = None,
    compare_with: str | None = None,
    limits_file: Path | None = None,
    machine_data: Path | str | None = None,
) -> PlanResult:
    """Plan ``case`` with the planner of its technique and attach every report section.

    ``machine_data`` is a department's electron machine file (format of
    :mod:`openiort.devices.electron.machine_format`) or a shipped example's name; without it
    electron plans use the example LIAC HWL.

    ``ct_phantom`` plans on the patient's CT instead of the phantom built from the case
    (x-ray: an intraoperative CT; HDR: a post-implant CT with the balloon contoured). ``engine`` is a registered engine of the case's technique
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
    if compare_with is None and engine_name in DEFAULT_COMPARISON:
        compare_with = DEFAULT_COMPARISON[engine_name]
    reference_engine = (
        None if compare_with is None else resolve_engine_name(technique, compare_with)
    )
    if machine_data is not None and technique != "electron":
        raise CaseError(
            "case",
            [f"--machine-data is electron machine data; the case's technique is {technique!r}"],
        )
    if ct_phantom is not None and technique not in ("xray", "hdr"):
        raise CaseError(
            "case",
            [
                "intent.technique: planning on a CT is available for 'xray' and 'hdr' only, "
                f"not {technique!r}"
            ],
        )
    limits = load_limits(limits_file) if limits_file is not None else None
    if ct_phantom is not None:
        check_ct_structures(case, ct_phantom)
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
        from openiort.devices.hdr_source import load_hdr_source_record
        from openiort.planning.hdr_case import plan_hdr_case

        record = load_hdr_source_record(source_data) if source_data else None
        dose_engine = (
            make_engine(engine_name, settings=mc_options or McSettings())
            if engine_name != "hdr.tg43"
            else None
        )
        plan = plan_hdr_case(
            case,
            limits=limits,
            source_record=record,
            ct_phantom=ct_phantom,
            dose_engine=dose_engine,
        )
        device_data = record
    else:
        from openiort.devices.electron import load_electron_device, load_machine_data
        from openiort.planning.electron_case import plan_electron_case

        machine = (
            load_machine_data(machine_data) if machine_data is not None else load_electron_device()
        )
        plan = plan_electron_case(case, limits=limits, device=machine)
        device_data = machine
        _electron_machine_sections(plan, machine)
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
        uses_mc = bool(MONTE_CARLO_ENGINES & {engine_name, reference_engine})
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
    plan.warnings += missing_limit_warnings(plan, limits)
    # A value that looks like a unit slip reaches planning only once confirmed (`iort plan
    # --accept-implausible`, the web form's confirmation); the plan keeps it in view.
    plan.warnings += [f"{v.message}: planned as given" for v in implausible_values(case)]
    plan.sections["clinical"] = build_clinical_section(case)
    course = plan.delivery if isinstance(plan.delivery, HdrDelivery) else None
    plan.sections["radiobiology"] = build_radiobiology_section(
        plan.depth_profile_mm,
        plan.depth_profile_water_gy,
        plan.details.treatment_time_min,
        plan.technique,
        fractions=course.fractions if course else 1,
        interval_h=course.min_interval_h if course else None,
        prescription_gy=plan.prescription_gy,
    )
    return plan
