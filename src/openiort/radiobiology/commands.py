"""``iort radiobio``: EQD2/BED of a schedule, or of a plan's depth profile.

Register with ``app.command("radiobio")(radiobio)``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from openiort import RESEARCH_NOTICE
from openiort.command_errors import input_error_exit
from openiort.radiobiology.errors import RadiobiologyError
from openiort.radiobiology.inputs import ModelChoice, Rbe, check_model
from openiort.radiobiology.parameters import (
    Tissue,
    custom_tissue,
    get_tissue,
    tissue_library,
)
from openiort.radiobiology.schedules import (
    Schedule,
    ScheduleResult,
    custom_schedule,
    evaluate_schedule,
    get_schedule,
    schedule_library,
)
from openiort.radiobiology.section import TECHNIQUES, build_radiobiology_section

PLAN_DOSE_KEY = "dose_at_depth_water_gy"


def read_plan_profile(plan: Path) -> tuple[list[float], list[float], float, str]:
    """(depth_mm, dose_water_gy, treatment_time_min, technique) from PLAN_DIR/plan.json."""
    path = plan / "plan.json" if plan.is_dir() else plan
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError as exc:
        raise RadiobiologyError(f"no plan file at {path}") from exc
    except json.JSONDecodeError as exc:
        raise RadiobiologyError(f"{path} is not valid JSON: {exc.msg} (line {exc.lineno})") from exc
    if not isinstance(data, dict):
        raise RadiobiologyError(f"{path}: expected a JSON object")
    if "delivery" in data:  # a typed plan document (plans made before it: the keys below)
        return _profile_of_document(path, data)
    if PLAN_DOSE_KEY not in data:
        hint = (
            (
                " (it has dose_at_depth_gy, which may be a nominal TARGIT dose: radiobiology "
                "needs dose to water)"
            )
            if "dose_at_depth_gy" in data
            else ""
        )
        raise RadiobiologyError(f"{path}: no {PLAN_DOSE_KEY!r}{hint}")
    profile = data[PLAN_DOSE_KEY]
    if not isinstance(profile, dict) or not profile:
        raise RadiobiologyError(f"{path}: {PLAN_DOSE_KEY} must map depth in mm to Gy")
    try:
        pairs = sorted((float(k), float(v)) for k, v in profile.items())
    except (TypeError, ValueError) as exc:
        raise RadiobiologyError(f"{path}: {PLAN_DOSE_KEY} keys and values must be numbers") from exc
    for key in ("treatment_time_min", "technique"):
        if data.get(key) is None:
            raise RadiobiologyError(f"{path}: {key!r} is missing")
    t_min = data["treatment_time_min"]
    if isinstance(t_min, bool) or not isinstance(t_min, int | float) or not math.isfinite(t_min):
        raise RadiobiologyError(f"{path}: treatment_time_min must be a number of minutes")
    technique = str(data["technique"])
    if technique not in TECHNIQUES:
        raise RadiobiologyError(
            f"{path}: technique {technique!r} is not one of {', '.join(TECHNIQUES)}"
        )
    return [p[0] for p in pairs], [p[1] for p in pairs], float(t_min), technique


def _profile_of_document(
    path: Path, data: dict[str, Any]
) -> tuple[list[float], list[float], float, str]:
    from pydantic import ValidationError

    from openiort.plan_document import parse_plan_document

    try:
        document = parse_plan_document(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"][1:])
        raise RadiobiologyError(f"{path}: {where}: {first['msg']}") from None
    pairs = sorted((float(k), v) for k, v in document.dose_at_depth_water_gy.items())
    return (
        [p[0] for p in pairs],
        [p[1] for p in pairs],
        document.treatment_time_min,
        document.technique,
    )


def _tissues(
    names: list[str] | None, alpha_beta_gy: float | None, repair_half_time_h: float | None
) -> list[Tissue]:
    chosen = [get_tissue(n) for n in (names or ["tumour", "late"])]
    if alpha_beta_gy is not None and len(chosen) != 1:
        raise RadiobiologyError(
            "--alpha-beta-gy needs exactly one --tissue (whose kind and repair it takes)"
        )
    return [
        custom_tissue(t, alpha_beta_gy=alpha_beta_gy, repair_half_time_h=repair_half_time_h)
        for t in chosen
    ]


def _schedule_results(
    sched: Schedule,
    tissues: list[Tissue],
    model: ModelChoice,
    rbe: Rbe,
    repopulation: bool,
    applicator_cm: float | None,
    delivery_time_min: float | None,
    overall_time_days: float | None,
    dose_water_gy: float | None,
) -> list[ScheduleResult]:
    out = []
    for t in tissues:
        out.append(
            evaluate_schedule(
                sched,
                t,
                model=model.for_tissue_kind(t.kind),
                rbe=rbe,
                repopulation=repopulation and t.kind == "tumour",
                applicator_diameter_cm=applicator_cm,
                dose_water_gy=dose_water_gy,
                delivery_time_min=None if sched.is_composite else delivery_time_min,
                overall_time_days=overall_time_days,
            )
        )
    return out


def _print_schedule(
    console: Console, sched: Schedule, results: list[ScheduleResult], model: str
) -> None:
    table = Table(title=f"{sched.label} ({model})")
    for col in (
        "tissue",
        "alpha/beta (Gy)",
        "dose to water (Gy)",
        "fractions",
        "G",
        "BED (Gy)",
        "EQD2 (Gy)",
    ):
        table.add_column(col, justify="left" if col == "tissue" else "right")
    for r in results:
        ab = next(
            (p.value for p in r.parameters if p.name.startswith(("alpha/beta", "USC alpha/beta"))),
            "",
        )
        table.add_row(
            r.tissue.label,
            f"{ab}",
            f"{r.total_dose_water_gy:.2f}",
            str(r.n_fractions),
            f"{r.protraction_factor:.3f}",
            f"{r.bed_gy:.1f}",
            f"{r.eqd2_gy:.1f}",
        )
    console.print(table)
    console.print(f"source: {sched.source} [{sched.status}]")
    for w in dict.fromkeys(w for r in results for w in r.warnings):
        console.print(f"[yellow]note:[/yellow] {w}", highlight=False)
    console.print(RESEARCH_NOTICE, style="dim")


def _list(console: Console, as_json: bool) -> None:
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "schedules": [s.to_dict() for s in schedule_library().values()],
                    "tissues": [
                        {
                            "tissue_id": t.tissue_id,
                            "kind": t.kind,
                            "label": t.label,
                            "alpha_beta_gy": t.alpha_beta_gy,
                            "status": t.status,
                            "source": t.source,
                            "default_for": t.default_for,
                        }
                        for t in tissue_library().values()
                    ],
                },
                indent=2,
            )
        )
        return
    table = Table(title="schedules")
    for col in ("id", "schedule", "status"):
        table.add_column(col)
    for s in schedule_library().values():
        table.add_row(s.schedule_id, s.label, s.status)
    console.print(table)
    table = Table(title="tissues")
    for col in ("id", "kind", "alpha/beta (Gy)", "status", "default"):
        table.add_column(col)
    for t in tissue_library().values():
        table.add_row(t.tissue_id, t.kind, f"{t.alpha_beta_gy:g}", t.status, t.default_for)
    console.print(table)


def _write_html(path: Path, section: Any) -> None:
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(
        loader=PackageLoader("openiort.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
    )
    body = env.get_template("sections/radiobiology.html").render(section=section)
    path.write_text(
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>openiort radiobiology</title></head><body>\n{body}\n</body></html>\n",
        "utf-8",
    )


def radiobio(
    schedule: Annotated[
        str | None,
        typer.Option(
            "--schedule",
            help="library schedule id, e.g. START-B, FAST-Forward, ELIOT, TARGIT (see --list)",
        ),
    ] = None,
    dose_gy: Annotated[
        float | None,
        typer.Option(
            "--dose-gy",
            help="total dose to water (Gy): of a custom schedule with --fractions, "
            "or replacing a --schedule's dose (e.g. TARGIT's nominal 20 Gy)",
        ),
    ] = None,
    fractions: Annotated[
        int | None, typer.Option("--fractions", help="number of fractions of the custom schedule")
    ] = None,
    plan: Annotated[
        Path | None,
        typer.Option(
            "--plan",
            help="plan directory holding plan.json (dose_at_depth_water_gy, "
            "treatment_time_min, technique)",
        ),
    ] = None,
    tissue: Annotated[
        list[str] | None,
        typer.Option("--tissue", help="tissue id (repeatable); default: tumour and late"),
    ] = None,
    alpha_beta_gy: Annotated[
        float | None,
        typer.Option("--alpha-beta-gy", help="override alpha/beta (Gy) of the one --tissue"),
    ] = None,
    model: Annotated[str, typer.Option("--model", help="lq, lq-l or usc")] = "lq",
    transition_dose_gy: Annotated[
        float | None, typer.Option("--transition-dose-gy", help="LQ-L transition dose (Gy)")
    ] = None,
    delivery_time_min: Annotated[
        float | None, typer.Option("--delivery-time-min", help="beam-on time of one fraction (min)")
    ] = None,
    repair_half_time_h: Annotated[
        float | None, typer.Option("--repair-half-time-h", help="override the repair half-time (h)")
    ] = None,
    rbe: Annotated[float, typer.Option("--rbe", help="RBE applied to the dose")] = 1.0,
    applicator_cm: Annotated[
        float | None,
        typer.Option(
            "--applicator-cm",
            help="TARGIT schedule: applicator diameter (cm) for the dose-to-"
            "water conversion (TG-292, one example source)",
        ),
    ] = None,
    overall_time_days: Annotated[
        float | None, typer.Option("--overall-time-days", help="overall treatment time (days)")
    ] = None,
    repopulation: Annotated[
        bool, typer.Option("--repopulation", help="apply the tumour repopulation term")
    ] = False,
    whole_breast: Annotated[
        str,
        typer.Option(
            "--whole-breast", help="plan mode: whole-breast schedule added to the IORT boost"
        ),
    ] = "START-B",
    html: Annotated[
        Path | None,
        typer.Option(
            "--html", help="plan mode: also write the report section as a standalone HTML page"
        ),
    ] = None,
    list_all: Annotated[bool, typer.Option("--list", help="list schedules and tissues")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """EQD2 and BED of a schedule, or of a plan's depth profile, for tumour and late tissue.

    Doses are doses to water; the nominal TARGIT 20 Gy is converted only with --applicator-cm.
    """
    console = Console()
    try:
        custom = schedule is None and (dose_gy is not None or fractions is not None)
        modes = [schedule is not None, custom, plan is not None, list_all]
        if sum(modes) != 1:
            raise RadiobiologyError(
                "give exactly one of --schedule, --dose-gy with --fractions, --plan, --list"
            )
        if list_all:
            _list(console, as_json)
            return
        if plan is not None:
            _plan_mode(
                console,
                plan,
                tissue,
                alpha_beta_gy,
                repair_half_time_h,
                model,
                transition_dose_gy,
                rbe,
                delivery_time_min,
                whole_breast,
                repopulation,
                html,
                as_json,
            )
            return
        tissues = _tissues(tissue, alpha_beta_gy, repair_half_time_h)
        if schedule is not None:
            sched = get_schedule(schedule)
            if fractions is not None:
                raise RadiobiologyError(
                    "--fractions belongs to a custom schedule (--dose-gy "
                    "without --schedule); a library schedule fixes it"
                )
        else:
            if dose_gy is None or fractions is None:
                raise RadiobiologyError("a custom schedule needs both --dose-gy and --fractions")
            sched = custom_schedule(
                dose_gy,
                fractions,
                overall_time_days=overall_time_days,
                delivery_time_min=delivery_time_min or 0.0,
            )
        results = _schedule_results(
            sched,
            tissues,
            ModelChoice(check_model(model), transition_dose_gy),
            Rbe(rbe),
            repopulation,
            applicator_cm,
            delivery_time_min,
            overall_time_days,
            dose_gy if schedule is not None else None,
        )
    except RadiobiologyError as exc:
        raise input_error_exit(exc) from exc
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "mode": "schedule",
                    "model": model,
                    "results": [r.to_dict() for r in results],
                    "notice": RESEARCH_NOTICE,
                },
                indent=2,
            )
        )
    else:
        _print_schedule(console, sched, results, model)


def _plan_mode(
    console: Console,
    plan: Path,
    tissue: list[str] | None,
    alpha_beta_gy: float | None,
    repair_half_time_h: float | None,
    model: str,
    transition_dose_gy: float | None,
    rbe: float,
    delivery_time_min: float | None,
    whole_breast: str,
    repopulation: bool,
    html: Path | None,
    as_json: bool,
) -> None:
    depth, dose, t_min, technique = read_plan_profile(plan)
    kinds: dict[str, Tissue] = {}
    for t in _tissues(tissue, alpha_beta_gy, repair_half_time_h):
        if t.kind in kinds:
            raise RadiobiologyError("plan mode takes at most one tumour and one late tissue")
        kinds[t.kind] = t
    section = build_radiobiology_section(
        depth,
        dose,
        t_min if delivery_time_min is None else delivery_time_min,
        technique,
        tumour=kinds.get("tumour", get_tissue("tumour")),
        late=kinds.get("late", get_tissue("late")),
        model=ModelChoice(check_model(model), transition_dose_gy),
        rbe=rbe,
        whole_breast_schedule=whole_breast,
        repopulation=repopulation,
    )
    if html is not None:
        _write_html(html, section)
    if as_json:
        typer.echo(json.dumps({"mode": "plan", "plan": str(plan), **section.to_dict()}, indent=2))
        return
    table = Table(
        title=f"EQD2 versus depth: {section.technique_label}, "
        f"{section.delivery_time_min:g} min, model {model}"
    )
    for col in (
        "depth (mm)",
        "dose to water (Gy)",
        "EQD2 tumour (Gy)",
        "EQD2 late (Gy)",
        f"tumour + {section.whole_breast[0].schedule.short_label}",
        f"late + {section.whole_breast[1].schedule.short_label}",
    ):
        table.add_column(col, justify="right")
    for r in section.depth_rows:
        table.add_row(
            f"{r['depth_mm']:g}",
            f"{r['dose_water_gy']:.2f}",
            f"{r['eqd2_tumour_gy']:.1f}",
            f"{r['eqd2_late_gy']:.1f}",
            f"{r['boost_sum_tumour_eqd2_gy']:.1f}",
            f"{r['boost_sum_late_eqd2_gy']:.1f}",
        )
    console.print(table)
    ref = Table(title="reference EBRT schedules")
    for col in ("schedule", "EQD2 tumour (Gy)", "EQD2 late (Gy)"):
        ref.add_column(col, justify="left" if col == "schedule" else "right")
    for row in section.ebrt_rows:
        ref.add_row(str(row["label"]), f"{row['eqd2_tumour_gy']:.1f}", f"{row['eqd2_late_gy']:.1f}")
    console.print(ref)
    console.print(
        f"tumour: {section.tumour.tissue.label}, alpha/beta "
        f"{section.tumour.alpha_beta_gy:.3g} Gy, G {section.tumour.protraction_factor:.3f};"
        f" late: {section.late.tissue.label}, alpha/beta "
        f"{section.late.alpha_beta_gy:.3g} Gy, G {section.late.protraction_factor:.3f};"
        f" RBE {section.rbe_description}",
        highlight=False,
    )
    for w in section.warnings:
        console.print(f"[yellow]note:[/yellow] {w}", highlight=False)
    console.print(RESEARCH_NOTICE, style="dim")
