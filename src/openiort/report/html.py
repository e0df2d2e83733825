"""Render the plan report (self-contained HTML) from a :class:`PlanResult`."""

from __future__ import annotations

from importlib import resources
from typing import Any

import jinja2

from openiort import RESEARCH_NOTICE
from openiort.plan import REPORT_DEPTHS_MM, PlanResult, depth_key
from openiort.plan_document import parse_plan_document
from openiort.plan_figures import ElectronFigures, Figures, XrayFigures
from openiort.planning.engine_comparison import EngineComparisonSection
from openiort.report import figures

TECHNIQUE_LABELS = {
    "xray": "50 kV x-rays, spherical applicator",
    "electron": "electrons (mobile linac)",
    "hdr": "HDR brachytherapy (Ir-192)",
}
ISODOSES_GY = (2.0, 5.0, 10.0, 15.0, 20.0)
DEPTH_LABELS = {
    "xray": "depth below the applicator surface (mm)",
    "hdr": "depth below the balloon surface (mm, mean over directions)",
    "electron": "depth along the beam axis from the gland surface (mm)",
}


def _environment() -> jinja2.Environment:
    loader = jinja2.FileSystemLoader(str(resources.files("openiort.report").joinpath("templates")))
    return jinja2.Environment(loader=loader, autoescape=jinja2.select_autoescape(["html"]))


def _prescription_row(plan: PlanResult) -> tuple[str, str]:
    definition = (
        f" ({plan.prescription_definition} definition)" if plan.prescription_definition else ""
    )
    course = getattr(plan.details, "course", None)
    if course and course.get("fractions", 1) > 1:
        return (
            "prescription",
            f"{plan.prescription_gy:g} Gy per fraction x {course['fractions']} fractions = "
            f"{course['total_prescription_gy']:g} Gy at the {plan.prescription_point}, at least "
            f"{course['min_interval_h']:g} h between fractions",
        )
    return (
        "prescription",
        f"{plan.prescription_gy:g} Gy at the {plan.prescription_point}{definition}",
    )


def _technique_rows(details: Figures) -> list[tuple[str, str]]:
    """The rows of the technique's own figures, up to and including the treatment time."""
    if isinstance(details, XrayFigures):
        o = details.prescription_other_definition
        return [
            (
                "same prescription in the other definition",
                f"{o.dose_gy:.2f} Gy ({o.dose_definition})",
            ),
            ("applicator", f"spherical, {details.applicator_diameter_cm:g} cm diameter"),
            (
                "treatment time",
                f"{details.treatment_time_min:.2f} min — {details.treatment_time_label}",
            ),
            (
                "independent second check",
                f"{details.second_check.treatment_time_min:.2f} min "
                f"({details.second_check.difference_pct:+.2f} % from the primary "
                f"{details.treatment_time_min:.2f} min, tolerance "
                f"{details.second_check.tolerance_pct:g} %; primary: "
                f"{details.second_check.primary_path}; second: {details.second_check.second_path})",
            ),
            *(
                [
                    (
                        "time on the device's console",
                        f"{c.console_time_min:.2f} min ({c.difference_pct:+.2f} % from the "
                        f"{c.expected_time_min:.2f} min of the loaded tables; tolerance "
                        f"{c.tolerance_pct:g} %{'' if c.agrees_within_tolerance else ': CHECK'})",
                    )
                ]
                if (c := details.console_time) is not None
                else []
            ),
            *(
                [
                    (
                        f"{sh.location.replace('_', ' ')} shield",
                        f"{sh.thickness_mm:g} mm {sh.material} ({sh.density_g_cm3:g} g/cm3), "
                        f"front face {sh.front_depth_mm:g} mm below the applicator surface; "
                        f"transmission {100 * sh.transmission:.2f} % "
                        f"(±{100 * sh.transmission_rel_unc:.0f} % rel.); dose behind it "
                        f"{sh.dose_behind_table_gy:.3g} Gy (table x transmission), "
                        f"{sh.dose_behind_mc_gy:.3g} Gy (Monte Carlo), "
                        f"{sh.dose_behind_without_gy:.2f} Gy without; in front "
                        f"{sh.dose_in_front_with_gy:.2f} Gy vs {sh.dose_in_front_without_gy:.2f} Gy "
                        f"({sh.front_change_pct:+.1f} %, photon scatter only, over the 0.5 mm in "
                        f"front); dose to water; {sh.model}"
                        + (
                            f". At the shield's face (estimate): {sh.front_interface_estimate}"
                            if sh.front_interface_estimate
                            else ""
                        ),
                    )
                ]
                if (sh := details.shield) is not None
                else []
            ),
        ]
    if isinstance(details, ElectronFigures):
        s = details.second_check
        return [
            (
                "beam",
                f"{details.energy_mev} MeV, applicator {details.applicator_diameter_cm} cm, "
                f"bevel {details.bevel_deg} deg",
            ),
            (
                "monitor units",
                f"{details.monitor_units} MU at {details.pressure_hpa:g} hPa (second check "
                f"{s.monitor_units} MU, {s.difference_pct:+.1f} %)",
            ),
            (
                "treatment time",
                f"{details.treatment_time_min:.2f} min — {details.treatment_time_label}",
            ),
            *_operating_room_rows(details),
        ]
    return [
        (
            "applicator and source",
            f"{details.applicator}; {details.source_title}, S_K {details.air_kerma_strength_u:g} U",
        ),
        (
            "dwell positions",
            f"{len(details.dwell_times_s)}, total {details.total_time_s:.1f} s, "
            f"TRAK {details.trak_ugy_at_1m:.1f} uGy at 1 m",
        ),
        ("treatment time", f"{details.treatment_time_min:.2f} min — "),
        (
            "hot spots (tissue, balloon excluded)",
            f"V150 {details.hot_spots.v150_cc:.1f} cc, V200 {details.hot_spots.v200_cc:.1f} cc",
        ),
        *_source_rows(details),
    ]


def _operating_room_rows(details: ElectronFigures) -> list[tuple[str, str]]:
    """The electron plan in the operating-room phantom: target, layer, isodoses, disc, skin."""
    o = details.operating_room
    rows = []
    if details.bolus_mm:
        rows.append(("bolus", f"{details.bolus_mm:g} mm — {details.bolus_reason}"))
    for ov in details.overrides:
        rows.append(("set in the case", f"{ov.field} = {ov.value} (planner: {ov.planner_choice})"))
    if o is None:
        return rows
    rows += [
        ("geometry", o.sentence),
        (
            "target (gland layer in the 90 % width)",
            f"V90 {o.target_v90_pct:.1f} % of {o.target_volume_cc:.1f} cc; whole layer V90 "
            f"{o.layer_v90_pct:.1f} %, lateral coverage {o.layer_lateral_coverage_pct:.0f} % "
            f"(90 % width {o.width90_at_zmax_mm:.1f} mm at zmax)",
        ),
        (
            "isodose depths",
            f"90 % at {o.isodose_90_depth_mm:.1f} mm, 50 % at {o.isodose_50_depth_mm:.1f} mm "
            f"(without the disc {o.isodose_90_depth_without_disc_mm:.1f} / "
            f"{o.isodose_50_depth_without_disc_mm:.1f} mm)",
        ),
    ]
    if o.disc is not None:
        rows.append(
            (
                "dose at the disc",
                f"upper face {o.disc.upper_face_gy:.2f} Gy ({o.disc.upper_face_pct_of_prescription:.0f} "
                f"% of the prescription, backscatter +{o.disc.backscatter_increase_pct:.1f} %); "
                f"beneath {o.disc.beneath_gy:.2f} Gy (transmission bound "
                f"{o.disc.transmission_fraction:g})",
            )
        )
    if o.skin_flaps_max_gy is not None:
        rows.append(
            (
                "skin flaps",
                f"max {o.skin_flaps_max_gy:.2f} Gy ({o.skin_flaps_max_pct_of_prescription:.1f} % "
                "of the prescription)",
            )
        )
    return rows


def _source_rows(details: Figures) -> list[tuple[str, str]]:
    record = getattr(details, "source_record", None)
    if not record:
        return [("source record", "none: example source strength, no calibration date")]
    return [
        (
            "source record",
            f"{record['afterloader_name']} (serial {record['afterloader_serial']}); "
            f"{record['source_model_title']} serial {record['source_serial']}; certificate "
            f"S_K {record['certificate_air_kerma_strength_u']:g} U at "
            f"{record['certificate_reference_utc']}; well chamber "
            f"{record['well_chamber_deviation_percent']:+.2f} % (record {record['version']})",
        )
    ]


def _summary_rows(plan: PlanResult) -> list[tuple[str, str]]:
    rows = [_prescription_row(plan), *_technique_rows(plan.details)]
    device = ", ".join(
        f"{k}: {v}" for k, v in plan.device.items() if isinstance(v, str | bool | int | float)
    )
    rows.append(("device data", device))
    return rows


def _section_figures(plan: PlanResult) -> dict[str, dict[str, str]]:
    """The figures of the plan's sections, as inline SVG by section and figure name."""
    out: dict[str, dict[str, str]] = {}
    comparison = plan.sections.get("engine_comparison")
    if isinstance(comparison, EngineComparisonSection):
        names = (comparison.plan_engine, comparison.reference_engine)
        out["engine_comparison"] = {
            "difference_map_svg": figures.comparison_difference_figure(
                comparison.difference_slice, *names
            ),
            "dvh_svg": figures.comparison_dvh_figure(
                comparison.dvh_pairs, comparison.dvh_max_dose_gy, *names
            ),
        }
    return out


def _depth_dose_band(details: Figures) -> tuple[list[float], list[float]] | None:
    """An x-ray plan's per-depth uncertainty band: depths (mm) and total relative %."""
    u = getattr(details, "depth_dose_uncertainty", None)
    if u is None:
        return None
    return [b.depth_mm for b in u.points], [b.total_pct for b in u.points]


def render_report(plan: PlanResult, plan_json: dict[str, Any]) -> str:
    """The report of ``plan``; ``plan_json`` is its :meth:`PlanResult.to_json_dict`."""
    env = _environment()
    document = parse_plan_document(plan_json)
    depth_keys = [depth_key(z) for z in REPORT_DEPTHS_MM]
    max_dose = max(
        plan.prescription_gy * 1.6, *(m.max_gy for n, m in plan.metrics.items() if n != "breast")
    )
    section_templates = {
        name: f"sections/{name}.html"
        for name in plan.sections
        if resources.files("openiort.report").joinpath(f"templates/sections/{name}.html").is_file()
    }
    isodoses = tuple(v for v in ISODOSES_GY if v < plan.dose.dose_gy.max())
    section_figures = _section_figures(plan)
    return env.get_template("plan_report.html").render(
        plan=plan,
        document=document,
        notice=RESEARCH_NOTICE,
        technique_label=TECHNIQUE_LABELS[plan.technique],
        summary_rows=_summary_rows(plan),
        depth_keys=depth_keys,
        depth_label=DEPTH_LABELS[plan.technique],
        definition_note=(
            "TARGIT and V4.0 as Zeiss defines them (AAPM TG-292). TARGIT: the definition in which "
            "the TARGIT trials prescribed (20 Gy at the surface). V4.0: the PTW 34013 reading at "
            "its entrance foil, closer to absorbed dose to water but not corrected for the "
            "chamber's volume averaging (the physics section estimates the physical point dose). "
            "TARGIT at depth: the published V4.0/TARGIT ratios at 0, 10 and 20 mm, shaped between "
            "and beyond them by the shifted-chamber model fitted to all 24 published ratios."
            if plan.technique == "xray"
            else ""
        ),
        depth_dose_svg=figures.depth_dose_figure(
            plan.depth_profile_mm,
            plan.depth_profile_water_gy,
            plan.depth_profile_definition_gy,
            plan.prescription_definition,
            plan.prescription_gy,
            depth_label=DEPTH_LABELS[plan.technique],
            band=_depth_dose_band(plan.details),
        ),
        dvh_svg=figures.dvh_figure(plan.dvhs, max_dose),
        slices_svg=figures.dose_slices_figure(
            plan.phantom, plan.dose, isodoses, plan.phantom.applicator_centre_mm or (0.0, 0.0, 0.0)
        ),
        section_templates=section_templates,
        section_figures=section_figures,
    )
