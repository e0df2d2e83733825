"""The CT import pages of a case: upload a zip (CT series + RT Structure Set), map its ROI
names onto openiort's structures, confirm (see :mod:`openiort.web.ct_import`)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile

from openiort.case import Case as CaseData
from openiort.case import parse_case
from openiort.errors import OpenIortInputError
from openiort.records import service
from openiort.records.models import Case
from openiort.web import ct_import
from openiort.web.auth import check_csrf, may, page_user, require_role
from openiort.web.routing import CaseId, form_text, redirect
from openiort.web.state import WebApp, web_of

router = APIRouter(include_in_schema=False)

MESSAGES = {
    "uploaded": "CT and structure set imported: check each ROI's structure, then confirm.",
    "confirmed": "Mapping confirmed and stored with the CT.",
}


def _case_data(case: Case) -> CaseData:
    return parse_case(case.data)


def _patient_check(case: Case, data: CaseData) -> Any:
    from openiort.inputs.ct import check_ct_patient

    patient = case.patient
    born = patient.birth_date.strftime("%Y%m%d") if patient.birth_date is not None else None

    def check(reference: Any) -> None:
        check_ct_patient(
            reference,
            patient.external_id,
            patient_name=patient.name,
            birth_date=born,
            age_years=data.patient.age_years,
        )

    return check


def _render(
    web: WebApp,
    request: Request,
    case: Case,
    info: dict[str, Any] | None,
    *,
    check: ct_import.ImportCheck | None = None,
    mapping: dict[str, str] | None = None,
    problems: list[str] | None = None,
    status_code: int = 200,
) -> Response:
    user = request.state.user
    data = _case_data(case)
    if info is not None and check is None:
        check = ct_import.check_mapping(data, info["roi_names"], info["mapping"])
    rows = []
    if info is not None:
        chosen = mapping if mapping is not None else info["mapping"]
        for i, name in enumerate(info["roi_names"]):
            rows.append(
                {
                    "index": i,
                    "name": name,
                    "choice": chosen.get(name, ct_import.IGNORE),
                    "suggested": info["mapping"].get(name, ct_import.IGNORE)
                    if not info.get("confirmed")
                    else None,
                    "errors": check.by_roi.get(name, []) if check is not None else [],
                }
            )
    return web.render(
        request,
        "ct_import.html",
        {
            "case": case,
            "info": info,
            "rows": rows,
            "check": check,
            "problems": problems or [],
            "choices": (*ct_import.STRUCTURE_CHOICES, ct_import.IGNORE),
            "laterality": data.laterality or "",
            "may_write": may(user, "case.write"),
            "may_plan": may(user, "plan.write"),
            "max_upload_mb": web.config.max_upload_bytes // (1024 * 1024),
            "message": MESSAGES.get(request.query_params.get("msg", "")),
            "nav": "cases",
        },
        status_code=status_code,
    )


@router.get("/cases/{case_id}/ct-import", response_class=HTMLResponse)
def ct_import_page(request: Request, case_id: CaseId) -> Response:
    web = web_of(request)
    with web.db() as s:
        page_user(request, s)
        case = service.get_case(s, case_id)
        info = ct_import.read_import(web.config.files_dir, case.id)
        return _render(web, request, case, info)


@router.post(
    "/cases/{case_id}/ct-import", response_class=HTMLResponse, dependencies=[Depends(check_csrf)]
)
async def ct_import_upload(request: Request, case_id: CaseId) -> Response:
    form = await request.form()  # already parsed (and the size limited) by the CSRF check
    upload = form.get("archive")
    web = web_of(request)
    root = ct_import.imports_root(web.config.files_dir)
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".upload-") as tmp:
        archive = Path(tmp) / "upload.zip"
        if isinstance(upload, UploadFile):
            await upload.seek(0)
            with archive.open("wb") as out:
                await run_in_threadpool(shutil.copyfileobj, upload.file, out)
        return await run_in_threadpool(
            _upload, request, case_id, archive if isinstance(upload, UploadFile) else None
        )


def _upload(request: Request, case_id: int, archive: Path | None) -> Response:
    web = web_of(request)
    with web.db() as s:
        user = page_user(request, s)
        require_role(user, "case.write")
        case = service.get_case(s, case_id)
        if archive is None or archive.stat().st_size == 0:
            problems = ["choose a zip file holding one CT series and its RT Structure Set"]
        else:
            data = _case_data(case)
            try:
                ct_import.store_upload(
                    web.config.files_dir,
                    case.id,
                    archive,
                    web.config.max_unzipped_bytes,
                    _patient_check(case, data),
                )
            except OpenIortInputError as exc:
                problems = exc.problems
            else:
                return redirect(f"/cases/{case.id}/ct-import?msg=uploaded")
        info = ct_import.read_import(web.config.files_dir, case.id)
        return _render(web, request, case, info, problems=problems, status_code=422)


@router.post(
    "/cases/{case_id}/ct-import/mapping",
    response_class=HTMLResponse,
    dependencies=[Depends(check_csrf)],
)
async def ct_import_mapping(request: Request, case_id: CaseId) -> Response:
    values = await form_text(request)
    return await run_in_threadpool(_mapping, request, case_id, values)


def _mapping(request: Request, case_id: int, values: dict[str, str]) -> Response:
    web = web_of(request)
    with web.db() as s:
        user = page_user(request, s)
        require_role(user, "case.write")
        case = service.get_case(s, case_id)
        info = ct_import.read_import(web.config.files_dir, case.id)
        if info is None:
            return _render(
                web, request, case, None, problems=["no CT imported for this case"], status_code=409
            )
        names: list[str] = info["roi_names"]
        mapping = {n: values.get(f"roi-{i}", ct_import.IGNORE) for i, n in enumerate(names)}
        data = _case_data(case)
        check = ct_import.check_mapping(data, names, mapping)
        problems: list[str] = []
        if check.ok:
            problems = _load_check(web, case, data, mapping)
        if not check.ok or problems:
            return _render(
                web,
                request,
                case,
                info,
                check=check,
                mapping=mapping,
                problems=problems,
                status_code=422,
            )
        info["mapping"] = mapping
        info["confirmed"] = True
        info["confirmed_by"] = user.username
        ct_import.write_import(web.config.files_dir, case.id, info)
        return redirect(f"/cases/{case.id}/ct-import?msg=confirmed")


def _load_check(web: WebApp, case: Case, data: CaseData, mapping: dict[str, str]) -> list[str]:
    """Load the CT with the mapping, as a plan on it would: what cannot be read or mapped."""
    from openiort.inputs.ct import load_ct

    folder = ct_import.import_dir(web.config.files_dir, case.id)
    try:
        load_ct(
            folder / ct_import.CT_DIRNAME,
            folder / ct_import.RS_NAME,
            roi_names=ct_import.roi_map_of(mapping),
            laterality=data.laterality,
            synonyms=False,
        )
    except OpenIortInputError as exc:
        return list(exc.problems)
    return []


def plan_job_data(files_dir: Path, case: Case) -> dict[str, Any]:
    """The case data of a plan on the case's confirmed CT import (the CT folder, structure set
    and ROI map under :data:`~openiort.web.worker.CT_IMPORT_KEY`)."""
    from openiort.web.worker import CT_IMPORT_KEY

    info = ct_import.read_import(files_dir, case.id)
    if info is None or not info.get("confirmed"):
        raise ct_import.CtImportError("confirm the CT import's mapping before planning on it")
    folder = ct_import.import_dir(files_dir, case.id)
    return {
        **dict(case.data),
        CT_IMPORT_KEY: {
            "ct_dir": str(folder / ct_import.CT_DIRNAME),
            "rtstruct": str(folder / ct_import.RS_NAME),
            "roi_map": ct_import.roi_map_of(info["mapping"]),
        },
    }


@router.post("/cases/{case_id}/ct-import/plan", dependencies=[Depends(check_csrf)])
def ct_import_plan(request: Request, case_id: CaseId) -> Response:
    """Queue a plan of the case on its imported CT (the same planning job as the case page's,
    with ``plan_case(..., ct_phantom=...)`` as ``iort plan --ct``)."""
    web = web_of(request)
    with web.db() as s:
        user = page_user(request, s)
        require_role(user, "plan.write")
        case = service.get_case(s, case_id)
        service.case_model(case)  # a stored case is valid; this guards against old records
        try:
            data = plan_job_data(web.config.files_dir, case)
        except ct_import.CtImportError as exc:
            info = ct_import.read_import(web.config.files_dir, case.id)
            return _render(web, request, case, info, problems=exc.problems, status_code=409)
        job = web.jobs.submit(case.id, case.version, user.id, data)
    return redirect(f"/jobs/{job.id}")
