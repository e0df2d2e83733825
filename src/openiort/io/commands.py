"""``iort export`` and ``iort send``: Typer command functions over the library calls.

Register with ``app.command("export")(export)`` and ``app.command("send")(send)``. Errors print
one line ``error: ...`` on stderr, never a traceback, and nothing is written or sent. Exit status
2: bad input (corrupt or unsupported files, a malformed plan directory or destination), as for
the other ``iort`` commands; 1: the peer refused or could not be reached.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from openiort.command_errors import input_error_exit
from openiort.errors import EXIT_BAD_INPUT, OpenIortInputError
from openiort.io.dicom_export import export_plan
from openiort.io.errors import DicomSendError
from openiort.io.geometry import PATIENT_POSITIONS
from openiort.io.plan_dir import read_plan_dir
from openiort.io.send import DEFAULT_CALLING_AE, parse_destination, send_directory

EXIT_PEER = 1


def _fail(exc: OpenIortInputError, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    return input_error_exit(exc, code=code)


def export(
    plan_dir: Annotated[
        Path, typer.Argument(help="Plan directory with plan.json and plan_arrays.npz.")
    ],
    dicom_out: Annotated[
        Path, typer.Option("--dicom", help="Output directory for the DICOM RT objects.")
    ],
    anonymise: Annotated[
        bool, typer.Option("--anonymise", help="De-identify: pseudonym, no dates, new UIDs.")
    ] = False,
    patient_position: Annotated[
        str, typer.Option("--patient-position", help="HFS, FFS, HFP or FFP.")
    ] = "HFS",
    patient_name: Annotated[
        str | None, typer.Option("--patient-name", help="Patient name (DICOM PN, e.g. DOE^JANE).")
    ] = None,
    patient_id: Annotated[
        str | None, typer.Option("--patient-id", help="Patient ID (default: the plan's case_id).")
    ] = None,
    dose_bits: Annotated[int, typer.Option("--dose-bits", help="RTDOSE bits: 32 or 16.")] = 32,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the *.dcm files of an earlier export.")
    ] = False,
) -> None:
    """Export a plan as DICOM RT: CT series, RTSTRUCT, RTDOSE and RTPLAN."""
    if patient_position not in PATIENT_POSITIONS:
        raise _fail(
            OpenIortInputError(
                f"--patient-position must be one of {', '.join(PATIENT_POSITIONS)}",
                source="--patient-position",
            )
        )
    try:
        contents = read_plan_dir(plan_dir)
        files = export_plan(
            contents.phantom,
            contents.dose,
            contents.plan,
            dicom_out,
            patient_name=patient_name,
            patient_id=patient_id,
            anonymise=anonymise,
            patient_position=patient_position,
            dose_bits=dose_bits,
            overwrite=overwrite,
        )
    except OpenIortInputError as exc:
        raise _fail(exc) from exc
    n_ct = sum(1 for f in files if f.name.startswith("CT_"))
    typer.echo(
        f"wrote {len(files)} DICOM objects to {dicom_out}: {n_ct} CT images, RTSTRUCT, RTDOSE, "
        f"RTPLAN{' (de-identified)' if anonymise else ''}"
    )


def send(
    directory: Annotated[Path, typer.Argument(help="Directory of DICOM objects to send.")],
    to: Annotated[str, typer.Option("--to", help="Peer as AE@HOST:PORT.")],
    calling_ae: Annotated[
        str, typer.Option("--calling-ae", help="Our AE title.")
    ] = DEFAULT_CALLING_AE,
    timeout_s: Annotated[
        float, typer.Option("--timeout-s", help="Network timeout in seconds.")
    ] = 30.0,
) -> None:
    """Send DICOM objects to a PACS or record-and-verify system (C-STORE)."""
    try:
        destination = parse_destination(to)
    except DicomSendError as exc:
        raise _fail(exc) from exc
    try:
        results = send_directory(
            directory, destination, calling_ae_title=calling_ae, timeout_s=timeout_s
        )
    except DicomSendError as exc:
        raise _fail(exc, EXIT_PEER) from exc
    except OpenIortInputError as exc:
        raise _fail(exc) from exc
    warnings = sum(1 for r in results if r.status != 0)
    note = f" ({warnings} with warning status)" if warnings else ""
    typer.echo(f"stored {len(results)} objects at {to}{note}")
