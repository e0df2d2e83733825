"""The `iort` command: a thin shell over the library."""

from __future__ import annotations

import importlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from openiort import RESEARCH_NOTICE
from openiort.case import Case, CaseError, case_json_schema, implausible_values, load_case
from openiort.clinical.commands import eligibility, evidence, pathology
from openiort.clinical.summary import write_patient_summary
from openiort.command_errors import input_error_exit
from openiort.console_command import console as console_values_command
from openiort.datafiles import data_path
from openiort.engines import McSettings, resolve_engine_name
from openiort.errors import OpenIortInputError
from openiort.pipeline import plan_case
from openiort.plan_document import AppliedDefault
from openiort.radiobiology.commands import radiobio
from openiort.report.outputs import REPORT_HTML, check_output_folder, write_plan_outputs

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="openiort: breast IORT planning toolkit. " + RESEARCH_NOTICE,
)
console = Console(stderr=True)


def demo_case_path() -> Path:
    return data_path("openiort", "data/demo_case.yaml")


def run_plan(
    case_path: Path,
    out: Path,
    source_data: Path | None,
    dicom: bool = False,
    ct: Path | None = None,
    rtstruct: Path | None = None,
    engine: str | None = None,
    mc_options: McSettings | None = None,
    compare_with: str | None = None,
    overwrite: bool = False,
    accept_implausible: bool = False,
    limits: Path | None = None,
    roi_map: str | None = None,
    machine_data: str | None = None,
    dicom_settings: Path | None = None,
) -> None:
    started = time.perf_counter()
    interrupted: tuple[type[BaseException], ...] = ()
    if {"mc", "xray.mc", "hdr.mc"} & {engine, compare_with}:
        from openiort.dose.mc.runner import SimulationInterruptedError

        interrupted = (SimulationInterruptedError,)
    try:
        case = load_case(case_path)
        check_plausible(case_path, case, accept_implausible)
        check_output_folder(out, overwrite)  # before minutes of planning, not after
        ct_phantom = None
        if ct is None and (rtstruct is not None or roi_map):
            given = "--rtstruct" if rtstruct is not None else "--roi-map"
            raise OpenIortInputError(
                f"{given} needs --ct (the CT series it belongs to)", source=given
            )
        ct_reference = None
        if ct is not None:
            from openiort.inputs.ct import check_ct_patient, load_ct
            from openiort.inputs.roi_names import parse_roi_map

            ct_phantom, ct_reference = load_ct(
                ct, rtstruct, roi_names=parse_roi_map(roi_map), laterality=case.laterality
            )
            check_ct_patient(ct_reference, case.patient.id, age_years=case.patient.age_years)
        if dicom:
            from openiort.io.dicom_settings import load_settings

            settings = load_settings(dicom_settings)
        engine_name = resolve_engine_name(case.intent.technique, engine)
        console.print(f"planning {case_path.name} ({engine_name} engine)...")
        plan = plan_case(
            case,
            source_data,
            ct_phantom=ct_phantom,
            engine=engine_name,
            mc_options=mc_options,
            compare_with=compare_with,
            limits_file=limits,
            machine_data=machine_data,
        )
        print_defaults(plan.defaults_applied)
        with console.status("writing the report..."):
            writers: list[Callable[[Path], object]] = [lambda d: write_patient_summary(case, d)]
            if dicom:
                from openiort.io.dicom_export import export_plan

                writers.append(
                    lambda d: export_plan(
                        plan.phantom,
                        plan.dose,
                        plan.to_json_dict(),
                        d / "dicom",
                        settings=settings,
                        ct_reference=ct_reference,
                    )
                )
            written = write_plan_outputs(
                plan, out, extra_writers=tuple(writers), overwrite=overwrite
            )
    except OpenIortInputError as exc:
        raise input_error_exit(exc, wrote_nothing=True) from None
    except interrupted:
        console.print(
            "[yellow]interrupted:[/] the Monte Carlo run was stopped; nothing was written"
        )
        raise typer.Exit(130) from None
    console.print(f"[green]plan written[/] in {time.perf_counter() - started:.1f} s:")
    for _name, path in written.items():
        console.print(f"  {path}")
    for w in plan.warnings:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
    console.print(f"Open the report: {written[REPORT_HTML].resolve()}")
    console.print(RESEARCH_NOTICE, style="bold")


def check_plausible(case_path: Path, case: Case, accept: bool) -> None:
    """Refuse values that look like a unit slip unless ``accept`` (--accept-implausible)."""
    found = implausible_values(case)
    if found and not accept:
        raise CaseError(
            str(case_path),
            [
                f"{v.message}; correct the case, or pass --accept-implausible if the value is right"
                for v in found
            ],
        )
    for v in found:
        console.print(
            f"[yellow]accepted (--accept-implausible):[/] {v.message}",
            highlight=False,
            soft_wrap=True,
        )


def print_defaults(defaults: list[AppliedDefault]) -> None:
    """One line per value the case did not give that planning supplied (plan.json lists them
    too, under defaults_applied)."""
    for d in defaults:
        value = f"{d.value:g}" if isinstance(d.value, float) else d.value
        console.print(
            f"[cyan]default applied:[/] {d.field} = {value} ({d.why})",
            highlight=False,
            soft_wrap=True,
        )


OVERWRITE_HELP = "replace an existing output folder's plan (all or nothing)"


@app.command()
def plan(
    case: Annotated[Path, typer.Argument(help="case file (YAML or JSON)")],
    out: Annotated[Path, typer.Option("--out", help="output folder")] = Path("plan-output"),
    source_data: Annotated[
        Path | None,
        typer.Option(
            help="your source's data: the x-ray source's commissioning YAML, or the HDR "
            "afterloader's source record (docs/hdr-console.md)"
        ),
    ] = None,
    dicom: Annotated[
        bool, typer.Option("--dicom", help="also export DICOM RT into OUT/dicom")
    ] = False,
    ct: Annotated[
        Path | None,
        typer.Option(
            "--ct",
            help="plan on this CT series folder (x-ray: intraoperative CT; HDR: post-implant "
            "CT with the balloon contoured)",
        ),
    ] = None,
    rtstruct: Annotated[
        Path | None, typer.Option("--rtstruct", help="RTSTRUCT file for --ct")
    ] = None,
    machine_data: Annotated[
        str | None,
        typer.Option(
            "--machine-data",
            help="your electron machine's data (machine YAML, format in "
            "docs/electron-machine-data.md), or an example's name: liac_hwl, mobetron_1000",
        ),
    ] = None,
    roi_map: Annotated[
        str | None,
        typer.Option(
            "--roi-map",
            help='ROI names of --rtstruct -> openiort structures, e.g. "Lumpectomy cavity=cavity,'
            'Heart=heart" (TG-263 names and common variants are recognised without it)',
        ),
    ] = None,
    dicom_settings: Annotated[
        Path | None,
        typer.Option(
            "--dicom-settings",
            help="the department's DICOM settings for --dicom (YAML: UID root, institution, "
            "department, machine names; default $OPENIORT_DICOM_SETTINGS)",
        ),
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option(
            help="dose engine: xray.table (default) or xray.mc (Monte Carlo in tissue) for "
            "x-rays, electron.beamdata, hdr.tg43 (default) or hdr.mc (Ir-192 Monte Carlo in "
            "tissue, the source's capsule modelled); `table` and `mc` are kept for x-rays"
        ),
    ] = None,
    compare_with: Annotated[
        str | None,
        typer.Option(
            "--compare-with",
            help="another engine of the technique whose dose the report shows beside the "
            "plan's (an xray.mc plan is compared with xray.table, an hdr.mc plan with "
            "hdr.tg43 by default)",
        ),
    ] = None,
    histories: Annotated[int, typer.Option(help="Monte Carlo photon histories")] = 30_000_000,
    seed: Annotated[int, typer.Option(help="Monte Carlo random seed")] = 1,
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address for the Monte Carlo batches")
    ] = None,
    parallel: Annotated[
        bool, typer.Option("--parallel", help="Monte Carlo batches on a local Dask cluster")
    ] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help=OVERWRITE_HELP)] = False,
    limits: Annotated[
        Path | None,
        typer.Option(
            "--limits",
            help="your department's organ-at-risk limits (CSV, format in "
            "openiort.evaluation.limits) instead of openiort's IORT defaults",
        ),
    ] = None,
    accept_implausible: Annotated[
        bool,
        typer.Option(
            "--accept-implausible",
            help="plan with values that look like a unit slip (a skin distance under 1 mm): "
            "only when they are right",
        ),
    ] = False,
) -> None:
    """Plan a case: phantom or CT, applicator, time, 3D dose, DVH, report and plan.json."""
    mc = McSettings(histories=histories, seed=seed, scheduler_address=scheduler, use_dask=parallel)
    run_plan(
        case,
        out,
        source_data,
        dicom=dicom,
        ct=ct,
        rtstruct=rtstruct,
        engine=engine,
        mc_options=mc,
        compare_with=compare_with,
        limits=limits,
        overwrite=overwrite,
        accept_implausible=accept_implausible,
        roi_map=roi_map,
        dicom_settings=dicom_settings,
        machine_data=machine_data,
    )


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="output folder")] = Path("demo-output"),
    overwrite: Annotated[bool, typer.Option("--overwrite", help=OVERWRITE_HELP)] = False,
) -> None:
    """Plan the built-in demo case (left breast, 50 kV x-ray IORT)."""
    run_plan(demo_case_path(), out, None, overwrite=overwrite)


@app.command()
def schema(
    plan: Annotated[
        bool, typer.Option("--plan", help="the schema of plan.json instead of the case file")
    ] = False,
    machine: Annotated[
        bool,
        typer.Option("--machine", help="the schema of an electron machine-data file instead"),
    ] = False,
) -> None:
    """Print the JSON Schema of the case file (or of plan.json, or of a machine-data file)."""
    if machine:
        from openiort.devices.electron.machine_format import machine_json_schema

        sys.stdout.write(json.dumps(machine_json_schema(), indent=2) + "\n")
        return
    if plan:
        from openiort.plan_document import plan_json_schema

        sys.stdout.write(json.dumps(plan_json_schema(), indent=2) + "\n")
        return
    sys.stdout.write(json.dumps(case_json_schema(), indent=2) + "\n")


app.command("radiobio")(radiobio)
app.command("console")(console_values_command)
app.command("eligibility")(eligibility)
app.command("pathology")(pathology)
app.command("evidence")(evidence)


def lazy_command(name: str, target: str, help_text: str) -> None:
    """Register a command whose module is imported only when it runs.

    DICOM networking, the records database and the Monte Carlo cost seconds to import;
    `iort demo` and `iort plan` should not pay for them. ``target`` is ``module:attribute``,
    a Typer app or a command function; its own options and ``--help`` work unchanged.
    """

    @app.command(
        name,
        help=help_text,
        add_help_option=False,
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )
    def _run(ctx: typer.Context) -> None:
        module, attribute = target.split(":")
        obj = getattr(importlib.import_module(module), attribute)
        if not isinstance(obj, typer.Typer):
            single = typer.Typer(add_completion=False)
            single.command()(obj)
            obj = single
        obj(args=ctx.args, prog_name=f"iort {name}")


lazy_command(
    "export",
    "openiort.io.commands:export",
    "Export a plan folder as DICOM RT (CT, RTSTRUCT, RTDOSE, RTPLAN).",
)
lazy_command(
    "send",
    "openiort.io.commands:send",
    "Send DICOM objects to a PACS or record-and-verify system (C-STORE).",
)
lazy_command(
    "fetch",
    "openiort.io.commands:fetch",
    "Retrieve a patient's CT series from a PACS (C-FIND, C-GET).",
)
lazy_command(
    "user",
    "openiort.records.commands:user_app",
    "Manage the users of the records database and web app.",
)
lazy_command(
    "db", "openiort.records.commands:db_app", "Create, migrate and check the records database."
)
lazy_command(
    "backup",
    "openiort.records.commands:backup",
    "Back up the records and plan files (keys excluded: back them up apart).",
)
lazy_command(
    "restore",
    "openiort.records.commands:restore",
    "Restore a backup into an empty database, then check every seal and record chain.",
)
lazy_command(
    "audit",
    "openiort.records.commands:audit_app",
    "Export the audit log (JSON lines) for the hospital's log system.",
)
lazy_command(
    "key",
    "openiort.records.commands:key_app",
    "Make, show and rotate the seal key (kept outside the data folder).",
)
lazy_command(
    "qa",
    "openiort.records.qa_command:qa_app",
    "Record and list the 50 kV source's daily output and isotropy checks.",
)
lazy_command(
    "serve",
    "openiort.web.commands:serve",
    "Serve the team's web app (cases, verdicts, plans, approval, downloads) with uvicorn.",
)
lazy_command(
    "worker",
    "openiort.web.worker_command:worker",
    "Compute queued plans for `iort serve --workers N` (run `iort db upgrade` first).",
)
lazy_command(
    "devices",
    "openiort.devices.commands:devices_app",
    "The department's own device data: record their hashes once they are reviewed.",
)
lazy_command(
    "commission",
    "openiort.dose.mc.commands:commission",
    "Regenerate the 50 kV applicators' depth-dose table with the Monte Carlo.",
)

if __name__ == "__main__":  # pragma: no cover
    app()
