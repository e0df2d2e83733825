"""Downloads of a stored plan, for pages and API alike: report PDF, DICOM RT zip, plan JSON.

Each is made from the plan's record (status, approval, seal) and its files, which are first
checked against the hashes in the record. PDF and zip take several seconds; they are made
once per plan and status and kept in the plan's ``cache/`` folder. The ``*_response``
functions are the whole of a download route: the page and the API route differ only in how
they find the user (``page_user`` or ``api_user``).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import FileResponse, Response
from sqlalchemy.orm import Session

from openiort.io.dicom_export import export_plan
from openiort.io.plan_dir import read_plan_dir
from openiort.records.models import Plan, User
from openiort.records.sealed_plans import sealed_plan_json
from openiort.report.pdf import RecordStamp, html_report_to_pdf
from openiort.web.artifacts import PlanFiles
from openiort.web.operations import load_plan
from openiort.web.state import WebApp, web_of
from openiort.web.worker import ARRAYS_NPZ, REPORT_HTML

DICOM_ZIP_LEVEL = 1  # DEFLATE level: CT slices compress well even at the fastest setting

UserOf = Callable[[Request, Session], User]
T = TypeVar("T")


def _utc(when: dt.datetime | None) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if when else ""


def record_stamp(plan: Plan) -> RecordStamp:
    """What the PDF says about the plan's standing in the treatment record."""
    rows: list[tuple[str, str]] = [
        ("plan record", f"plan {plan.id}, version {plan.version_number} of case {plan.case_id}"),
        (
            "computed",
            f"{_utc(plan.created_at)} by {plan.created_by.username if plan.created_by else 'unknown'}",
        ),
    ]
    accepted = [r for r in plan.reviews if r.decision == "accepted"]
    if accepted:
        r = accepted[-1]
        rows.append(
            ("reviewed", f"{_utc(r.created_at)} by {r.reviewer.username} ({r.reviewer_role})")
        )
    if plan.sealed and plan.approved_by is not None:
        role = plan.approval.approver_role if plan.approval else plan.approved_by.role
        rows.append(
            ("approved", f"{_utc(plan.approved_at)} by {plan.approved_by.username} ({role})")
        )
        rows.append(("seal (SHA-256 of the canonical plan JSON)", plan.canonical_sha256 or ""))
    else:
        rows.append(("approval", "not approved: not for treatment"))
    if plan.delivered_at is not None:
        rows.append(("delivered", _utc(plan.delivered_at)))
    return RecordStamp(plan.status, tuple(rows))


def _cache_key(plan: Plan) -> str:
    seal = (plan.canonical_sha256 or "unsealed")[:16]
    return f"{plan.status}-{seal}"


def report_pdf_path(files: PlanFiles, plan: Plan) -> Path:
    """The plan's report as PDF (made on first request)."""
    folder = files.check(plan.id, plan.plan_json, (REPORT_HTML,))
    stamp = record_stamp(plan)

    def make(path: Path) -> None:
        html = (folder / REPORT_HTML).read_text("utf-8")
        path.write_bytes(html_report_to_pdf(html, stamp))

    return files.cached(plan.id, f"report-{_cache_key(plan)}.pdf", make)


def dicom_plan_dict(plan: Plan) -> dict[str, Any]:
    """The plan JSON for the DICOM writers: sealed content, status and approver."""
    out = sealed_plan_json(plan)
    approval = out.get("approval")
    if isinstance(approval, dict):
        out["approved_by"] = approval.get("approved_by")
        out["approved_at"] = approval.get("approved_at")
    return out


def dicom_zip_path(files: PlanFiles, plan: Plan, patient_name: str | None, anonymise: bool) -> Path:
    """The plan as DICOM RT (CT, RTSTRUCT, RTDOSE, RTPLAN) in one zip (made on first request)."""
    folder = files.check(plan.id, plan.plan_json, (ARRAYS_NPZ,))
    data = dicom_plan_dict(plan)

    def make(path: Path) -> None:
        contents = read_plan_dir(folder)
        with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
            written = export_plan(
                contents.phantom,
                contents.dose,
                data,
                Path(tmp) / "dicom",
                patient_name=None if anonymise else patient_name,
                anonymise=anonymise,
            )
            with zipfile.ZipFile(
                path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=DICOM_ZIP_LEVEL
            ) as zf:
                for f in written:
                    zf.write(f, f"dicom/{f.name}")
                zf.writestr("plan.json", json.dumps(data, indent=2, allow_nan=False))

    suffix = "anon" if anonymise else "named"
    return files.cached(plan.id, f"dicom-{suffix}-{_cache_key(plan)}.zip", make)


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
    """The report as PDF, stamped with the plan's standing in the record."""

    def make(web: WebApp, plan: Plan) -> FileResponse:
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
        path = dicom_zip_path(web.files, plan, plan.case.patient.name, anonymise)
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
