"""`iort console PLAN_DIR`: the day's console values of a plan, every factor shown."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from openiort import RESEARCH_NOTICE
from openiort.command_errors import reported_input_errors
from openiort.delivery import parse_delivery
from openiort.errors import OpenIortInputError
from openiort.io.errors import PlanDirError
from openiort.session import (
    ConsoleValues,
    TreatmentSession,
    make_session,
    session_console_values,
    source_now,
)


def read_delivery(plan_dir: Path) -> Any:
    """The typed delivery of PLAN_DIR/plan.json (or of a plan.json path)."""
    path = plan_dir / "plan.json" if plan_dir.is_dir() else plan_dir
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise PlanDirError(f"cannot read {path}: {exc}", source=str(path)) from None
    if not isinstance(data, dict) or "delivery" not in data:
        raise PlanDirError(
            f"{path} has no 'delivery' block: re-plan it with this version of openiort",
            source=str(path),
        )
    try:
        return parse_delivery(data["delivery"])
    except ValidationError as exc:
        problems = [
            f"delivery.{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in exc.errors()
        ]
        raise PlanDirError(*problems, source=str(path)) from None


def _session(
    date: str | None,
    output_factor: float | None,
    pressure_hpa: float | None,
    temperature_c: float | None,
    fraction: int,
    check_pressure_hpa: float | None = None,
    check_temperature_c: float | None = None,
) -> TreatmentSession:
    try:
        at = dt.datetime.now(dt.UTC) if date is None else dt.datetime.fromisoformat(date)
    except ValueError as exc:
        raise OpenIortInputError(f"--date: {exc}", source="session") from None
    return make_session(
        at,
        output_factor=output_factor,
        pressure_hpa=pressure_hpa,
        temperature_c=temperature_c,
        fraction=fraction,
        output_check_pressure_hpa=check_pressure_hpa,
        output_check_temperature_c=check_temperature_c,
    )


def _example_note(technique: str) -> str:
    return {
        "electron": " (EXAMPLE DATA: example machine, not your machine)",
        "xray": " (EXAMPLE DATA: example source, not your source)",
    }.get(technique, " (EXAMPLE DATA, not your device)")


def _print(values: ConsoleValues, device: str, example: bool) -> None:
    s = values.session
    typer.echo(
        f"console values for {s.at_utc.isoformat(timespec='minutes')} (fraction {s.fraction})"
    )
    typer.echo(f"device data: {device}{_example_note(values.technique) if example else ''}")
    width = max(len(x.name) for x in values.settings)
    for x in values.settings:
        typer.echo(
            f"  {x.name:<{width}}  planned {x.planned:10.3f} {x.unit:<3}  today {x.today:10.3f} {x.unit}"
        )
    if values.strength_today_u is not None:
        typer.echo(f"source strength today: S_K {values.strength_today_u:.1f} U")
    typer.echo("factors applied:")
    for f in values.factors:
        typer.echo(f"  {f.name}: {f.value:.5f} ({f.reason})")
    for w in values.warnings:
        typer.echo(f"warning: {w}")
    typer.echo(RESEARCH_NOTICE)


def console(
    plan_dir: Annotated[Path, typer.Argument(help="plan folder (or its plan.json)")],
    date: Annotated[
        str | None, typer.Option("--date", help="ISO date and time with zone (default: now)")
    ] = None,
    pressure_hpa: Annotated[
        float | None, typer.Option("--pressure-hpa", help="air pressure today (electrons)")
    ] = None,
    temperature_c: Annotated[
        float | None, typer.Option("--temperature-c", help="temperature today (electrons)")
    ] = None,
    output_factor: Annotated[
        float | None,
        typer.Option("--output-factor", help="day's output / reference output (daily QA)"),
    ] = None,
    check_pressure_hpa: Annotated[
        float | None,
        typer.Option(
            "--check-pressure-hpa",
            help="air pressure at the day's output check (electron machines whose day's "
            "output comes from the daily output check)",
        ),
    ] = None,
    check_temperature_c: Annotated[
        float | None,
        typer.Option("--check-temperature-c", help="temperature at the day's output check"),
    ] = None,
    fraction: Annotated[int, typer.Option("--fraction", help="fraction number")] = 1,
    source_data: Annotated[
        Path | None,
        typer.Option(
            "--source-data",
            help="HDR: the department's current source record, when the source was exchanged "
            "since the plan (the dwell times are rescaled to it)",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """The day's console values of a plan: time, MU or dwell times, with every factor applied."""
    with reported_input_errors():
        delivery = read_delivery(plan_dir)
        session = _session(
            date,
            output_factor,
            pressure_hpa,
            temperature_c,
            fraction,
            check_pressure_hpa,
            check_temperature_c,
        )
        current = None
        if source_data is not None:
            from openiort.devices.hdr_source import load_hdr_source_record

            current = source_now(load_hdr_source_record(source_data))
        values = session_console_values(delivery, session, current)
    if as_json:
        out = {"delivery": delivery.model_dump(mode="json"), **values.model_dump(mode="json")}
        typer.echo(json.dumps(out, indent=2))
        return
    _print(values, delivery.device.name, delivery.device.is_example)
