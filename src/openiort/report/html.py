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
                f"({details.second_check.difference_pct:+.2f} %; {details.second_check.second_path})",
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
            "TARGIT: the definition in which the TARGIT trials prescribed (20 Gy at the surface). "
            "V4.0: closer to absorbed dose to water (AAPM TG-292). TARGIT values at depth follow "
            "from the published V4.0/TARGIT ratios at 0, 10 and 20 mm, linear in between, held at "
            "the 20 mm value deeper."
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
        ),
        dvh_svg=figures.dvh_figure(plan.dvhs, max_dose),
        slices_svg=figures.dose_slices_figure(
            plan.phantom, plan.dose, isodoses, plan.phantom.applicator_centre_mm or (0.0, 0.0, 0.0)
        ),
        section_templates=section_templates,
        section_figures=section_figures,
    )
