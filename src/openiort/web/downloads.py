"""Downloads of a stored plan, for pages and API alike: report PDF, DICOM RT zip, plan JSON.

Each is made from the plan's record (status, approval, seal) and its files, which are first
checked against the hashes in the record (after a delivery, also the RT Treatment Records of
its deliveries, with the RT Plan they reference). PDF and zip take several seconds; they are made
once per plan and status (the PDF: and chart) and kept in the plan's ``cache/`` folder. The
PDF's first page is a treatment chart (patient name, date of birth and id, device and serial,
version, review and approval, signature lines) rendered from the record and the sealed plan
at download time: the sealed plan and its files never hold the patient's name or birth date,
and the cached PDF is keyed by its chart, so that it shows the record as it is. The ``*_response``
functions are the whole of a download route: the page and the API route differ only in how
they find the user (``page_user`` or ``api_user``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from fastapi import HTTPException, Request
from fastapi.responses import FileResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session, object_session

from openiort.delivery import parse_delivery
from openiort.io.dicom_export import export_plan
from openiort.io.dicom_settings import DicomSettings, load_settings
from openiort.io.plan_dir import read_plan_dir
from openiort.io.record_export import write_record_treatment_records
from openiort.io.rtplan_writer import read_export_plan
from openiort.records.chart_seal import require_signed_chart
from openiort.records.models import Plan, User
from openiort.records.plan_data import example_data_problem
from openiort.records.sealed_plans import sealed_plan_json
from openiort.report.pdf import (
    AnyDelivery,
    ChartPatient,
    ChartStep,
    TreatmentChart,
    html_report_to_pdf,
)
from openiort.web.artifacts import PlanFiles
from openiort.web.ct_import import ct_reference_for_plan_files
from openiort.web.operations import load_plan
from openiort.web.state import WebApp, web_of
from openiort.web.worker import ARRAYS_NPZ, REPORT_HTML

REPORT_PREFIX = "report-"
DICOM_ZIP_LEVEL = 1  # DEFLATE level: CT slices compress well even at the fastest setting

UserOf = Callable[[Request, Session], User]
T = TypeVar("T")


def _typed_delivery(plan_json: Mapping[str, Any]) -> AnyDelivery | None:
    """The sealed plan's typed delivery, or None for a plan stored before deliveries were typed."""
    if "delivery" not in plan_json:
        return None
    try:
        return parse_delivery(plan_json["delivery"])
    except ValidationError:
        return None


def record_chart(plan: Plan) -> TreatmentChart:
    """The chart on the PDF's first page, from the treatment record and the sealed plan.

    Patient name, date of birth and id come from the record (never from, nor into, the sealed
    plan); the device and the console settings from the sealed plan's typed delivery; the
    plan version, the reviews and the approval (user names, roles and times) from the record.
    """
    patient = plan.case.patient
    steps = [
        ChartStep(
            "computed",
            plan.created_by.username if plan.created_by else "unknown",
            plan.created_by.role if plan.created_by else "",
            plan.created_at,
        )
    ]
    for review in plan.reviews:
        steps.append(
            ChartStep(
                "reviewed" if review.decision == "accepted" else "changes requested",
                review.reviewer.username,
                review.reviewer_role,
                review.created_at,
                _short(review.comment),
            )
        )
    if plan.sealed and plan.approved_by is not None:
        approval = plan.approval
        steps.append(
            ChartStep(
                "approved and sealed",
                plan.approved_by.username,
                approval.approver_role if approval else plan.approved_by.role,
                plan.approved_at,
                _short(approval.comment if approval else None),
            )
        )
    if plan.delivered_at is not None:
        last = plan.deliveries[-1] if plan.deliveries else None
        steps.append(
            ChartStep(
                "delivered",
                last.delivered_by.username if last else None,
                last.delivered_by.role if last else None,
                plan.delivered_at,
                f"{len(plan.deliveries)} session(s)" if plan.deliveries else "",
            )
        )
    software = plan.plan_json.get("software")
    version = software.get("version") if isinstance(software, Mapping) else None
    return TreatmentChart(
        status=plan.status,
        patient=ChartPatient(patient.external_id, patient.name, patient.birth_date),
        plan_label=f"plan {plan.id} of case {plan.case_id}",
        version=str(plan.version_number),
        delivery=_typed_delivery(plan.plan_json),
        example_data=example_data_problem(plan.plan_json) is not None,
        steps=tuple(steps),
        technique=plan.technique,
        case_version=plan.case_version,
        software=f"openiort {version}" if version else "openiort",
        seal_sha256=plan.canonical_sha256 if plan.sealed else None,
    )


def _short(text: str | None, limit: int = 160) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _report_cache_name(plan: Plan, chart_html: str) -> str:
    """The cached PDF's name: the plan's status and seal, and a digest of its chart, so that a
    corrected patient name or a new review makes a new PDF (a cached approved PDF has the chart
    of the record as it is)."""
    seal = (plan.canonical_sha256 or "unsealed")[:16]
    chart = hashlib.sha256(chart_html.encode("utf-8")).hexdigest()[:16]
    return f"{REPORT_PREFIX}{plan.status}-{seal}-{chart}.pdf"


def _cache_key(plan: Plan) -> str:
    seal = (plan.canonical_sha256 or "unsealed")[:16]
    return f"{plan.status}-{seal}"


def report_pdf_path(files: PlanFiles, plan: Plan) -> Path:
    """The plan's report as PDF with the chart of the record (made on first request).

    The PDF holds the patient's name and date of birth, so an earlier PDF of the plan (another
    status or chart) is removed from the cache when a new one is made.
    """
    folder = files.check(plan.id, plan.plan_json, (REPORT_HTML,))
    if plan.sealed:
        # The approved chart is printed only while it matches the chart signed at approval.
        session = object_session(plan)
        if session is None:  # pragma: no cover - plans are always loaded in a session
            raise RuntimeError(f"plan {plan.id} is not attached to a session")
        require_signed_chart(session, plan, files.key)
    chart = record_chart(plan)
    name = _report_cache_name(plan, chart.html())

    def make(path: Path) -> None:
        html = (folder / REPORT_HTML).read_text("utf-8")
        path.write_bytes(html_report_to_pdf(html, chart))
        for old in path.parent.glob(f"{REPORT_PREFIX}*.pdf"):
            if old.name != name:
                old.unlink(missing_ok=True)

    return files.cached(plan.id, name, make)


def dicom_plan_dict(plan: Plan) -> dict[str, Any]:
    """The plan JSON for the DICOM writers: sealed content, status and approver."""
    out = sealed_plan_json(plan)
    approval = out.get("approval")
    if isinstance(approval, dict):
        out["approved_by"] = approval.get("approved_by")
        out["approved_at"] = approval.get("approved_at")
    return out


def dicom_zip_path(
    files: PlanFiles,
    plan: Plan,
    patient_name: str | None,
    anonymise: bool,
    settings: DicomSettings | None = None,
) -> Path:
    """The plan as DICOM RT (CT, RTSTRUCT, RTDOSE, RTPLAN) in one zip (made on first request),
    with the server's DICOM settings (``None``: :func:`load_settings`)."""
    settings = settings if settings is not None else load_settings()
    folder = files.check(plan.id, plan.plan_json, (ARRAYS_NPZ,))
    data = dicom_plan_dict(plan)

    def make(path: Path) -> None:
        contents = read_plan_dir(folder)
        # a plan on the case's imported CT references that CT (no synthetic CT is written)
        ct_reference = ct_reference_for_plan_files(
            files.root, plan.case_id, contents.phantom.description
        )
        with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
            written = export_plan(
                contents.phantom,
                contents.dose,
                data,
                Path(tmp) / "dicom",
                patient_name=None if anonymise else patient_name,
                anonymise=anonymise,
                settings=settings,
                plan_version=plan.version_number,
                ct_reference=ct_reference,
            )
            with zipfile.ZipFile(
                path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=DICOM_ZIP_LEVEL
            ) as zf:
                for f in written:
                    zf.write(f, f"dicom/{f.name}")
                zf.writestr("plan.json", json.dumps(data, indent=2, allow_nan=False))

    suffix = "anon" if anonymise else "named"
    # settings changed in the file (and the server restarted) make a new zip
    tag = hashlib.sha256(repr(settings).encode("utf-8")).hexdigest()[:8]
    return files.cached(plan.id, f"dicom-{suffix}-{_cache_key(plan)}-{tag}.zip", make)


def treatment_record_zip_path(
    files: PlanFiles, plan: Plan, patient_name: str | None, settings: DicomSettings | None = None
) -> Path:
    """RT Treatment Records of the plan's recorded deliveries (marked as manually recorded),
    with the RT Plan they reference: the one in the plan's DICOM zip (named), in one zip."""
    if not plan.deliveries:
        raise HTTPException(status_code=404, detail="no delivery recorded for this plan")
    settings = settings if settings is not None else load_settings()
    dicom_zip = dicom_zip_path(files, plan, patient_name, anonymise=False, settings=settings)
    fractions = int(getattr(read_export_plan(dicom_plan_dict(plan)).settings, "fractions", 1))
    last = plan.deliveries[-1]

    def make(path: Path) -> None:
        with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
            rp = Path(tmp) / "RP.dcm"
            with zipfile.ZipFile(dicom_zip) as zf:
                rp.write_bytes(zf.read("dicom/RP.dcm"))
            written = write_record_treatment_records(
                rp,
                plan.id,
                list(plan.deliveries),
                Path(tmp) / "records",
                fractions=fractions,
                uid_root=settings.organisation_uid_root,
                institution_name=settings.institution_name,
            )
            with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                zf.write(rp, "dicom/RP.dcm")
                for f in written:
                    zf.write(f, f"dicom/{f.name}")

    name = f"records-{len(plan.deliveries)}-{last.id}-{_cache_key(plan)}.zip"
    return files.cached(plan.id, name, make)


def treatment_record_zip_response(request: Request, plan_id: int, user_of: UserOf) -> Response:
    """The treatment records of the plan's deliveries, with the RT Plan they reference (a
    small file, sent from memory)."""

    def make(web: WebApp, plan: Plan) -> Response:
        path = treatment_record_zip_path(
            web.files, plan, plan.case.patient.name, web.dicom_settings
        )
        name = f"openiort-plan{plan.id}-v{plan.version_number}-treatment-records.zip"
        return Response(
            path.read_bytes(),
            media_type="application/zip",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    return _from_plan(request, plan_id, user_of, make)


def plan_json_bytes(plan: Plan) -> bytes:
    """The sealed plan JSON (content, status, approval and seal block) as a file."""
    return json.dumps(sealed_plan_json(plan), indent=2, allow_nan=False).encode("utf-8")


def _from_plan(
    request: Request, plan_id: int, user_of: UserOf, make: Callable[[WebApp, Plan], T]
) -> T:
    """``make(web, plan)`` for the asking user's plan, whose seal has been checked."""
    web = web_of(request)
    with web.db() as s:
        plan = load_plan(web, s, user_of(request, s), plan_id)
        return make(web, plan)


def report_pdf_response(request: Request, plan_id: int, user_of: UserOf) -> FileResponse:
    """The report as PDF, with the chart of the plan's record on its first page."""

    def make(web: WebApp, plan: Plan) -> FileResponse:
        # No patient details in the file name: it ends up in download folders and histories.
        name = f"openiort-plan{plan.id}-v{plan.version_number}-{plan.status}.pdf"
        path = report_pdf_path(web.files, plan)
        return FileResponse(path, media_type="application/pdf", filename=name)

    return _from_plan(request, plan_id, user_of, make)


def report_html_response(request: Request, plan_id: int, user_of: UserOf) -> FileResponse:
    """The report as computed (HTML, checked against the hash in the record)."""

    def make(web: WebApp, plan: Plan) -> FileResponse:
        folder = web.files.check(plan.id, plan.plan_json, (REPORT_HTML,))
        return FileResponse(folder / REPORT_HTML, media_type="text/html; charset=utf-8")

    return _from_plan(request, plan_id, user_of, make)


def dicom_zip_response(
    request: Request, plan_id: int, user_of: UserOf, anonymise: bool
) -> FileResponse:
    """The plan as DICOM RT in a zip, with the patient's name or de-identified."""

    def make(web: WebApp, plan: Plan) -> FileResponse:
        path = dicom_zip_path(
            web.files, plan, plan.case.patient.name, anonymise, web.dicom_settings
        )
        suffix = "-deidentified" if anonymise else ""
        name = f"openiort-plan{plan.id}-v{plan.version_number}-dicom{suffix}.zip"
        return FileResponse(path, media_type="application/zip", filename=name)

    return _from_plan(request, plan_id, user_of, make)


def plan_json_response(request: Request, plan_id: int, user_of: UserOf) -> Response:
    """The sealed plan JSON as a file."""

    def make(web: WebApp, plan: Plan) -> Response:
        name = f"openiort-plan{plan.id}-v{plan.version_number}.json"
        return Response(
            plan_json_bytes(plan),
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    return _from_plan(request, plan_id, user_of, make)


def copy_tree(src: Path, dst: Path) -> None:
    """Copy a plan folder (tests and benchmarks seed plans from a computed one)."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("cache"))
