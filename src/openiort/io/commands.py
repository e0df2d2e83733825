"""``iort export``, ``iort send`` and ``iort fetch``: Typer command functions over the library.

Register with ``app.command("export")(export)``, ``app.command("send")(send)`` and
``app.command("fetch")(fetch)``. Errors print one line ``error: ...`` on stderr, never a
traceback, and nothing is written or sent. Exit status 2: bad input (corrupt or unsupported
files, a malformed plan directory or destination), as for the other ``iort`` commands; 1: the
peer refused or could not be reached.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from openiort.command_errors import input_error_exit
from openiort.errors import EXIT_BAD_INPUT, OpenIortInputError
from openiort.io.ct_reference import CtReference
from openiort.io.dicom_export import export_plan
from openiort.io.dicom_settings import SETTINGS_ENV, DicomSettings, load_settings
from openiort.io.errors import DicomExportError, DicomSendError
from openiort.io.geometry import PATIENT_POSITIONS
from openiort.io.plan_dir import read_plan_dir
from openiort.io.record_export import DeliveryRow, write_record_treatment_records
from openiort.io.rtplan_writer import read_export_plan
from openiort.io.send import DEFAULT_CALLING_AE, parse_destination, send_directory

EXIT_PEER = 1


@dataclass(frozen=True)
class _User:
    username: str


@dataclass(frozen=True)
class _Row:
    """A delivery row read out of its session (plain values)."""

    id: int
    sequence: int
    interrupted: bool
    delivered_fraction: float
    cumulative_fraction: float
    delivered_at: datetime
    delivered_by: _User

    @classmethod
    def of(cls, row: Any) -> _Row:
        return cls(
            int(row.id),
            int(row.sequence),
            bool(row.interrupted),
            float(row.delivered_fraction),
            float(row.cumulative_fraction),
            row.delivered_at,
            _User(str(getattr(row.delivered_by, "username", "") or "")),
        )


def deliveries_in_database(
    plan_id: int, database_url: str | None = None
) -> tuple[dict[str, object], list[DeliveryRow]]:
    """(the stored plan's JSON, its delivery rows) from openiort's records database (here, in
    the command shell, because the DICOM layer below does not import the records layer)."""
    from openiort.records.db import prepare_database, session_scope
    from openiort.records.delivery import list_deliveries
    from openiort.records.errors import RecordsError
    from openiort.records.plans import get_plan

    try:
        engine = prepare_database(database_url)
        try:
            with session_scope(engine) as s:
                plan = get_plan(s, plan_id)
                rows: list[DeliveryRow] = [_Row.of(r) for r in list_deliveries(s, plan_id)]
                return dict(plan.plan_json), rows
        finally:
            engine.dispose()
    except RecordsError as exc:
        raise DicomExportError(f"records database: {exc}") from None


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
    dicom_settings: Annotated[
        Path | None,
        typer.Option(
            "--dicom-settings",
            help="The department's DICOM settings (YAML: UID root, institution, department, "
            f"machine names); default ${SETTINGS_ENV}.",
        ),
    ] = None,
    plan_version: Annotated[
        int | None,
        typer.Option("--plan-version", min=1, help="The plan's version, for the RT Plan Label."),
    ] = None,
    ct: Annotated[
        Path | None,
        typer.Option(
            "--ct",
            help="The patient's CT series the plan was made on (needed for such a plan: the "
            "objects join its study and no CT is written).",
        ),
    ] = None,
    treatment_record: Annotated[
        bool,
        typer.Option(
            "--treatment-record",
            help="Also write an RT Treatment Record (RT_<n>.dcm, marked as manually recorded) "
            "for each delivery of the plan recorded in openiort's records database "
            "(--record-plan-id); one instance per delivery on every export.",
        ),
    ] = False,
    record_plan_id: Annotated[
        int | None,
        typer.Option("--record-plan-id", min=1, help="The plan's id in the records database."),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="Records database (SQLAlchemy URL; default: OPENIORT_DATABASE_URL, else the "
            "SQLite file in the user data directory).",
            show_default=False,
        ),
    ] = None,
    rtplan: Annotated[
        Path | None,
        typer.Option(
            "--rtplan",
            help="With --treatment-record: the RT Plan already sent to the hospital's systems, "
            "for the records to reference; only the records are written then.",
        ),
    ] = None,
) -> None:
    """Export a plan as DICOM RT: CT series, RTSTRUCT, RTDOSE and RTPLAN (and treatment
    records of its recorded deliveries)."""
    if patient_position not in PATIENT_POSITIONS:
        raise _fail(
            OpenIortInputError(
                f"--patient-position must be one of {', '.join(PATIENT_POSITIONS)}",
                source="--patient-position",
            )
        )
    if (record_plan_id is not None or rtplan is not None) and not treatment_record:
        raise _fail(
            OpenIortInputError(
                "--record-plan-id and --rtplan go with --treatment-record", source="--rtplan"
            )
        )
    if treatment_record:
        if record_plan_id is None:
            raise _fail(
                OpenIortInputError(
                    "--treatment-record needs --record-plan-id (the plan's id in the records "
                    "database)",
                    source="--record-plan-id",
                )
            )
        try:
            settings = load_settings(dicom_settings)
            records = _treatment_records(
                plan_dir, dicom_out, record_plan_id, database_url, rtplan, settings, overwrite
            )
            if rtplan is not None:
                only = records.write(rtplan)
        except OpenIortInputError as exc:
            raise _fail(exc) from exc
        if rtplan is not None:
            typer.echo(f"wrote {len(only)} treatment record(s) to {dicom_out}")
            return
    try:
        settings = load_settings(dicom_settings)
        contents = read_plan_dir(plan_dir)
        reference = ct_reference_for_plan(contents.phantom.description, ct)
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
            settings=settings,
            plan_version=plan_version,
            ct_reference=reference,
        )
    except OpenIortInputError as exc:
        raise _fail(exc) from exc
    n_ct = sum(1 for f in files if f.name.startswith("CT_"))
    images = f"{n_ct} CT images" if reference is None else "(on the patient's CT series)"
    written = []
    if treatment_record:
        try:
            written = records.write(Path(dicom_out) / "RP.dcm")
        except OpenIortInputError as exc:
            raise _fail(exc) from exc
    typer.echo(
        f"wrote {len(files) + len(written)} DICOM objects to {dicom_out}: {images}, RTSTRUCT, "
        f"RTDOSE, RTPLAN{' (de-identified)' if anonymise else ''}"
        + (f", {len(written)} treatment record(s)" if written else "")
    )


class _Records:
    """The treatment records to write once the RT Plan they reference is known."""

    def __init__(
        self, plan_id: int, rows: list[Any], fractions: int, out: Path, settings: DicomSettings
    ) -> None:
        self.plan_id, self.rows, self.fractions = plan_id, rows, fractions
        self.out, self.settings = out, settings

    def write(self, rp_path: Path) -> list[Path]:
        return write_record_treatment_records(
            rp_path,
            self.plan_id,
            self.rows,
            self.out,
            fractions=self.fractions,
            uid_root=self.settings.organisation_uid_root,
            institution_name=self.settings.institution_name,
        )


def _treatment_records(
    plan_dir: Path,
    out: Path,
    plan_id: int,
    database_url: str | None,
    rtplan: Path | None,
    settings: DicomSettings,
    overwrite: bool,
) -> _Records:
    """The plan's recorded deliveries, checked against the plan directory."""
    stored, rows = deliveries_in_database(plan_id, database_url)
    plan = read_plan_dir(plan_dir).plan
    for key in ("case_id", "technique"):
        if stored.get(key) != plan.get(key):
            raise DicomExportError(
                f"--record-plan-id {plan_id}: the stored plan's {key} {stored.get(key)!r} is not "
                f"the plan directory's {plan.get(key)!r}"
            )
    if not rows:
        raise DicomExportError(f"plan {plan_id} has no recorded delivery: no treatment record")
    fractions = int(getattr(read_export_plan(plan).settings, "fractions", 1))
    if rtplan is not None and out.exists() and any(out.glob("RT_*.dcm")) and not overwrite:
        raise DicomExportError(f"{out}: holds treatment records; give --overwrite")
    return _Records(plan_id, rows, fractions, out, settings)


def ct_reference_for_plan(description: Mapping[str, object], ct: Path | None) -> CtReference | None:
    """The CT a plan was made on, read from ``ct`` and checked against what plan.json recorded
    of it; None for a plan on openiort's phantom (``ct`` must then not be given)."""
    from openiort.inputs.ct import load_ct_reference

    recorded = description.get("ct_series_instance_uid")
    if recorded is None:
        if ct is not None:
            raise OpenIortInputError(
                "--ct: this plan was made on openiort's phantom, not on a CT", source="--ct"
            )
        return None
    if ct is None:
        raise OpenIortInputError(
            "this plan was made on the patient's CT: give its series with --ct DIR (the objects "
            "reference it and join its study)",
            source="--ct",
        )
    return load_ct_reference(ct, series_instance_uid=str(recorded))


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


def fetch(
    source: Annotated[str, typer.Option("--from", help="The PACS as AE@HOST:PORT.")],
    patient: Annotated[str, typer.Option("--patient", help="Patient ID on the PACS.")],
    out: Annotated[Path, typer.Option("--out", help="Empty folder for the CT images.")],
    series: Annotated[
        str | None,
        typer.Option("--series", help="Series Instance UID, when the patient has several CTs."),
    ] = None,
    calling_ae: Annotated[
        str, typer.Option("--calling-ae", help="Our AE title.")
    ] = DEFAULT_CALLING_AE,
    timeout_s: Annotated[
        float, typer.Option("--timeout-s", help="Network timeout in seconds.")
    ] = 60.0,
) -> None:
    """Retrieve a patient's CT series from a PACS (C-FIND, then C-GET) into a folder."""
    from openiort.io.fetch import fetch_ct_series

    try:
        destination = parse_destination(source)
        files = fetch_ct_series(
            destination,
            patient,
            out,
            series_instance_uid=series,
            calling_ae_title=calling_ae,
            timeout_s=timeout_s,
        )
    except DicomSendError as exc:
        raise _fail(exc, EXIT_PEER) from exc
    except OpenIortInputError as exc:
        raise _fail(exc) from exc
    typer.echo(f"retrieved {len(files)} CT images from {source} into {out}")
