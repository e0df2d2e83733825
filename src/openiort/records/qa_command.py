"""``iort qa output ...``, ``iort qa isotropy ...``, ``iort qa list``: the 50 kV source's daily
checks from the command line, stored in the records database as from the web app.

The physicist recording a check names themself with ``--user`` and gives their password on
standard input (typed without echo at a terminal, or the first line of piped input), as for
``iort user``. Bad input prints one ``error: ...`` line per problem and exits with status 2;
nothing is stored then.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

import typer

from openiort.records.commands import DatabaseOption, _in_session, read_password
from openiort.records.errors import PermissionDeniedError
from openiort.records.models import User
from openiort.records.qa import (
    REFERENCE_PRESSURE_HPA,
    REFERENCE_TEMPERATURE_C,
    list_qa_checks,
    output_factor,
    record_xray_isotropy_check,
    record_xray_output_check,
)
from openiort.records.users import authenticate

qa_app = typer.Typer(
    no_args_is_help=True,
    help="Record and list the 50 kV source's daily output and isotropy checks.",
)

UserOption = Annotated[str, typer.Option("--user", help="The physicist recording the check.")]
WhenOption = Annotated[
    str | None,
    typer.Option("--performed-at", help="When (ISO 8601 with time zone); default now."),
]


def _actor(s: object, username: str) -> User:
    user = authenticate(s, username, read_password(confirm=False))  # type: ignore[arg-type]
    if user is None:
        raise PermissionDeniedError(f"{username}: unknown user or wrong password")
    return user


def _when(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"--performed-at: {exc}") from None


@qa_app.command("output")
def output(
    user: UserOption,
    source_serial: Annotated[str, typer.Option(help="Serial number of the x-ray source.")],
    chamber_serial: Annotated[str, typer.Option(help="Serial number of the adapter's chamber.")],
    reading: Annotated[float, typer.Option(help="The chamber's reading, as read.")],
    reference_reading: Annotated[
        float, typer.Option(help="Its baseline at the source's calibration, at reference air.")
    ],
    pressure_hpa: Annotated[float, typer.Option(help="Air pressure at the check (hPa).")],
    temperature_c: Annotated[float, typer.Option(help="Temperature at the check (degC).")],
    tolerance_pct: Annotated[float, typer.Option(help="The QA programme's action limit (%).")],
    unit: Annotated[str, typer.Option(help="Unit of the readings.")] = "nC",
    reference_pressure_hpa: float = REFERENCE_PRESSURE_HPA,
    reference_temperature_c: float = REFERENCE_TEMPERATURE_C,
    performed_at: WhenOption = None,
    note: str | None = None,
    database_url: DatabaseOption = None,
) -> None:
    """The output check in the probe adapter: reading corrected to reference air (k_TP),
    against the reference reading; prints the output factor the day's deliveries take."""

    def act(s: object) -> str:
        check = record_xray_output_check(
            s,  # type: ignore[arg-type]
            _actor(s, user),
            source_serial=source_serial,
            chamber_serial=chamber_serial,
            reading=reading,
            reference_reading=reference_reading,
            unit=unit,
            pressure_hpa=pressure_hpa,
            temperature_c=temperature_c,
            reference_pressure_hpa=reference_pressure_hpa,
            reference_temperature_c=reference_temperature_c,
            tolerance_pct=tolerance_pct,
            performed_at=_when(performed_at),
            note=note,
        )
        k_tp = check.details["k_tp"] if check.details else 1.0
        verdict = "passed" if check.passed else "FAILED: the source may not be used today"
        return (
            f"output check {check.id} of {check.device}: k_TP {k_tp:.4f}, output factor "
            f"{output_factor(check):.4f} ({check.deviation_pct:+.2f} %, tolerance "
            f"{check.tolerance_pct:g} %): {verdict}"
        )

    typer.echo(_in_session(database_url, act))


@qa_app.command("isotropy")
def isotropy(
    user: UserOption,
    source_serial: Annotated[str, typer.Option(help="Serial number of the x-ray source.")],
    array_serial: Annotated[str, typer.Option(help="Serial number of the photodiode array.")],
    reading: Annotated[
        list[str], typer.Option(help="DIRECTION=VALUE per diode, e.g. --reading +x=1.01.")
    ],
    tolerance_pct: Annotated[float, typer.Option(help="Largest deviation from the mean (%).")],
    unit: str = "relative",
    performed_at: WhenOption = None,
    note: str | None = None,
    database_url: DatabaseOption = None,
) -> None:
    """The isotropy check with the photodiode array: each diode against the mean."""
    readings: dict[str, float] = {}
    for item in reading:
        key, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError
            readings[key.strip()] = float(value)
        except ValueError:
            typer.echo(f"error: --reading {item!r}: expected DIRECTION=VALUE", err=True)
            raise typer.Exit(code=2) from None

    def act(s: object) -> str:
        check = record_xray_isotropy_check(
            s,  # type: ignore[arg-type]
            _actor(s, user),
            source_serial=source_serial,
            array_serial=array_serial,
            readings=readings,
            unit=unit,
            tolerance_pct=tolerance_pct,
            performed_at=_when(performed_at),
            note=note,
        )
        verdict = "passed" if check.passed else "FAILED"
        return (
            f"isotropy check {check.id} of {check.device}: largest deviation "
            f"{check.max_deviation_pct:+.2f} % (tolerance {check.tolerance_pct:g} %): {verdict}"
        )

    typer.echo(_in_session(database_url, act))


@qa_app.command("list")
def list_checks(
    device: Annotated[str | None, typer.Option(help="Only this source.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="As JSON.")] = False,
    database_url: DatabaseOption = None,
) -> None:
    """The recorded checks, newest first."""

    def act(s: object) -> str:
        out, iso = list_qa_checks(s, device)  # type: ignore[arg-type]
        rows = [
            {
                "kind": "output",
                "id": c.id,
                "device": c.device,
                "performed_at": c.performed_at.isoformat(),
                "output_factor": output_factor(c),
                "passed": c.passed,
            }
            for c in out
        ] + [
            {
                "kind": "isotropy",
                "id": c.id,
                "device": c.device,
                "performed_at": c.performed_at.isoformat(),
                "max_deviation_pct": c.max_deviation_pct,
                "passed": c.passed,
            }
            for c in iso
        ]
        if as_json:
            return json.dumps(rows, indent=1)
        return (
            "\n".join("\t".join(str(v) for v in r.values()) for r in rows)
            or "no QA checks recorded"
        )

    typer.echo(_in_session(database_url, act))
