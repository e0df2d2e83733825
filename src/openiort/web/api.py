"""The JSON API under ``/api/``: the pages' operations with the same authorisation.

Log in with ``POST /api/session``; the session cookie it sets authenticates later requests,
and the ``csrf_token`` it returns goes in the ``X-CSRF-Token`` header of every POST, PUT and
DELETE. Errors are ``{"detail": ..., "problems": [...]}`` with the status codes listed for
each operation (401 not logged in, 403 role not allowed, 404 no such record, 409 conflict,
lifecycle or seal failure, 422 invalid input, 429 throttled, 503 planning queue full).
The bodies are in :mod:`openiort.web.api_models`.
"""

from __future__ import annotations

from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from openiort.case import Case as CaseModel
from openiort.case import CaseError, implausible_values
from openiort.records import audit, service
from openiort.records.roles import Role
from openiort.records.sealed_plans import sealed_plan_json
from openiort.records.users import authenticate
from openiort.web import downloads, operations
from openiort.web.api_models import (
    CONFLICT,
    ERRORS,
    PDF_RESPONSE,
    ZIP_RESPONSE,
    ApproveIn,
    CaseIn,
    CaseOut,
    CaseSummaryOut,
    CaseUpdateIn,
    ConsoleIn,
    DeliveryIn,
    DeliveryOut,
    ErrorOut,
    JobOut,
    LoginIn,
    PlanConsoleOut,
    PlanOut,
    PlanRequestIn,
    PlanSummaryOut,
    ReviewIn,
    SessionOut,
    VerifyOut,
)
from openiort.web.auth import api_user, check_csrf, end_session, session_of, start_session
from openiort.web.routing import CaseId, PlanId
from openiort.web.state import web_of

router = APIRouter(prefix="/api", tags=["api"])


# ------------------------------------------------------------------------------- session


def _session_out(request: Request, username: str, role: str) -> SessionOut:
    from openiort.records.roles import PERMISSIONS

    data = session_of(request)
    return SessionOut(
        username=username,
        role=cast(Role, role),
        csrf_token=data.csrf if data else "",
        may=sorted(a for a, who in PERMISSIONS.items() if role in who),
    )


@router.post(
    "/session",
    response_model=SessionOut,
    summary="Log in",
    responses={
        401: {"model": ErrorOut, "description": "unknown user or wrong password"},
        403: {"model": ErrorOut, "description": "request from another site"},
        422: ERRORS[422],  # a malformed body, or a NUL character in it (web.guards)
        429: {"model": ErrorOut, "description": "too many failed attempts"},
    },
)
def login(request: Request, body: LoginIn) -> SessionOut:
    from openiort.web.sessions import same_origin

    if not same_origin(request):
        raise HTTPException(403, detail="request from another site refused")
    web = web_of(request)
    address = operations.client_address(request)
    wait = web.limiter.retry_after_s(body.username, address)
    if wait:
        raise HTTPException(
            429,
            detail=f"too many failed attempts; try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    with web.db() as s, operations.hash_slot(web):
        user = authenticate(s, body.username, body.password)
        if user is None:
            web.limiter.failed(body.username, address)
            operations.logger_login_failed(address)
            raise HTTPException(401, detail="unknown user or wrong password")
        username, role, user_id = user.username, user.role, user.id
    web.limiter.succeeded(body.username, address)
    start_session(request, web.sessions, user_id)
    return _session_out(request, username, role)


@router.get(
    "/session", response_model=SessionOut, summary="Who is logged in", responses={401: ERRORS[401]}
)
def whoami(request: Request) -> SessionOut:
    web = web_of(request)
    with web.db() as s:
        user = api_user(request, s)
        return _session_out(request, user.username, user.role)


@router.delete(
    "/session",
    status_code=204,
    summary="Log out",
    dependencies=[Depends(check_csrf)],
    responses={403: ERRORS[403]},
)
def logout(request: Request) -> Response:
    end_session(request, web_of(request).sessions)
    return Response(status_code=204)


# ------------------------------------------------------------------------------- cases


@router.get(
    "/cases",
    response_model=list[CaseSummaryOut],
    summary="List cases",
    responses={401: ERRORS[401]},
)
def list_cases(request: Request) -> list[dict[str, Any]]:
    web = web_of(request)
    with web.db() as s:
        api_user(request, s)
        return [operations.case_summary(s, c) for c in service.list_cases(s)]


def _case_out(s: Any, case: Any) -> dict[str, Any]:
    return {**operations.case_summary(s, case), "case": case.data}


def _check_plausible(case: CaseModel, accept: bool) -> None:
    """Refuse values that look like a unit slip unless confirmed (``accept_implausible``), as
    the form and ``iort plan --accept-implausible`` do: 422, one problem per value, nothing
    written."""
    found = implausible_values(case)
    if found and not accept:
        raise CaseError(
            "case",
            [
                f"case.{v.message}; correct the case, or set accept_implausible to true if the "
                "value is right"
                for v in found
            ],
        )


@router.post(
    "/cases",
    response_model=CaseOut,
    status_code=201,
    summary="Enter a case",
    dependencies=[Depends(check_csrf)],
    responses=ERRORS,
)
def create_case(request: Request, body: CaseIn) -> dict[str, Any]:
    web = web_of(request)
    _check_plausible(body.case, body.accept_implausible)  # before any record is touched
    with web.db() as s:
        user = api_user(request, s)
        case = operations.new_case(
            s,
            user,
            body.case.model_dump(mode="json"),
            body.patient_name,
            body.patient_birth_date,
        )
        return _case_out(s, case)


@router.get("/cases/{case_id}", response_model=CaseOut, summary="One case", responses=ERRORS)
def get_case(request: Request, case_id: CaseId) -> dict[str, Any]:
    web = web_of(request)
    with web.db() as s:
        user = api_user(request, s)
        case = service.get_case(s, case_id)
        audit.record_view(s, user, "case", case.id)  # who viewed which record
        return _case_out(s, case)


@router.put(
    "/cases/{case_id}",
    response_model=CaseOut,
    summary="Replace a case (optimistic locking)",
    description="409 if someone saved the case after `version`; nothing is written then.",
    dependencies=[Depends(check_csrf)],
    responses={**ERRORS, **CONFLICT},
)
def update_case(request: Request, case_id: CaseId, body: CaseUpdateIn) -> dict[str, Any]:
    web = web_of(request)
    _check_plausible(body.case, body.accept_implausible)  # before any record is touched
    with web.db() as s:
        user = api_user(request, s)
        case = operations.edit_case(
            s, user, case_id, body.version, body.case.model_dump(mode="json")
        )
        return _case_out(s, case)


@router.get(
    "/cases/{case_id}/verdicts",
    summary="Guideline verdicts, EBRT decision and evidence",
    responses=ERRORS,
)
def case_verdicts(request: Request, case_id: CaseId) -> dict[str, Any]:
    web = web_of(request)
    with web.db() as s:
        api_user(request, s)
        case = service.get_case(s, case_id)
        return operations.clinical_section(web, case).to_dict()


@router.get(
    "/cases/{case_id}/plans",
    response_model=list[PlanSummaryOut],
    summary="The case's plan versions",
    responses=ERRORS,
)
def case_plans(request: Request, case_id: CaseId) -> list[dict[str, Any]]:
    web = web_of(request)
    with web.db() as s:
        api_user(request, s)
        service.get_case(s, case_id)
        return [operations.plan_summary(p) for p in service.list_plans(s, case_id)]


@router.post(
    "/cases/{case_id}/plans",
    response_model=JobOut,
    status_code=202,
    summary="Compute a plan (queued; poll the job)",
    dependencies=[Depends(check_csrf)],
    responses={
        **ERRORS,
        **CONFLICT,
        503: {"model": ErrorOut, "description": "planning queue full (see Retry-After)"},
    },
)
def start_plan(
    request: Request, case_id: CaseId, body: PlanRequestIn | None = None
) -> JSONResponse:
    web = web_of(request)
    with web.db() as s:
        user = api_user(request, s)
        job = operations.start_plan(web, s, user, case_id, body.version if body else None)
    return JSONResponse(
        job.to_dict(web.jobs.position(job)),
        status_code=202,
        headers={"Location": f"/api/jobs/{job.id}"},
    )


@router.get("/jobs/{job_id}", response_model=JobOut, summary="A planning job", responses=ERRORS)
def get_job(request: Request, job_id: Annotated[str, Path(max_length=64)]) -> dict[str, Any]:
    web = web_of(request)
    with web.db() as s:
        api_user(request, s)
    job = web.jobs.get(job_id)
    if job is None:
        raise HTTPException(404, detail="no such planning job (jobs are kept for an hour)")
    return job.to_dict(web.jobs.position(job))


# ------------------------------------------------------------------------------- plans


@router.get(
    "/plans/{plan_id}",
    response_model=PlanOut,
    summary="A plan version with its JSON and seal",
    description="A plan whose seal no longer matches is refused with 409.",
    responses={**ERRORS, **CONFLICT},
)
def get_plan(request: Request, plan_id: PlanId) -> dict[str, Any]:
    web = web_of(request)
    with web.db() as s:
        user = api_user(request, s)
        plan = operations.load_plan(web, s, user, plan_id)
        return {**operations.plan_summary(plan), "plan": sealed_plan_json(plan)}


@router.post(
    "/plans/{plan_id}/review",
    response_model=PlanSummaryOut,
    summary="Review a draft (physicist or oncologist)",
    dependencies=[Depends(check_csrf)],
    responses={**ERRORS, **CONFLICT},
)
def review_plan(request: Request, plan_id: PlanId, body: ReviewIn) -> dict[str, Any]:
    web = web_of(request)
    with web.db() as s:
        user = api_user(request, s)
        operations.load_plan(web, s, user, plan_id)
        plan = operations.review(s, user, plan_id, body.accept, body.comment)
        return operations.plan_summary(plan)


@router.post(
    "/plans/{plan_id}/approve",
    response_model=PlanSummaryOut,
    summary="Approve and seal a reviewed plan (physicist or oncologist)",
    dependencies=[Depends(check_csrf)],
    responses={
        **ERRORS,
        **CONFLICT,
        429: {"model": ErrorOut, "description": "too many wrong passwords"},
    },
)
def approve_plan(request: Request, plan_id: PlanId, body: ApproveIn) -> dict[str, Any]:
    web = web_of(request)
    with web.db() as s:
        user = api_user(request, s)
        operations.require_approver(user)
        operations.check_approval_password(web, request, user, body.password)
        plan = operations.approve(web, s, user, plan_id, body.comment)
        return operations.plan_summary(plan)


@router.get(
    "/plans/{plan_id}/deliveries",
    response_model=list[DeliveryOut],
    summary="The plan's recorded deliveries",
    responses={**ERRORS, **CONFLICT},
)
def list_deliveries(request: Request, plan_id: PlanId) -> list[dict[str, Any]]:
    web = web_of(request)
    with web.db() as s:
        user = api_user(request, s)
        plan = operations.load_plan(web, s, user, plan_id)
        return [operations.delivery_summary(d) for d in plan.deliveries]


@router.post(
    "/plans/{plan_id}/deliveries",
    response_model=DeliveryOut,
    status_code=201,
    summary="Record a delivery (physicist or oncologist)",
    description="The console values are checked against the approved, sealed plan; a "
    "mismatch is refused with 422 listing each setting, and nothing is recorded.",
    dependencies=[Depends(check_csrf)],
    responses={**ERRORS, **CONFLICT},
)
def record_delivery(request: Request, plan_id: PlanId, body: DeliveryIn) -> dict[str, Any]:
    web = web_of(request)
    with web.db() as s:
        user = api_user(request, s)
        entry = body.model_dump(exclude={"conditions"})
        serial = None
        if body.conditions is not None:
            entry["conditions"] = operations.conditions_of(body.conditions.model_dump())
            serial = body.conditions.source_serial
        delivery = operations.record_delivery(web, s, user, plan_id, entry, serial)
        return operations.delivery_summary(delivery)


@router.post(
    "/plans/{plan_id}/console",
    response_model=PlanConsoleOut,
    summary="The day's console values of an approved plan (any logged-in user)",
    description="What `iort console` prints: the sealed plan's console settings at the "
    "device's reference conditions and under the conditions of the day, every factor with "
    "its reason, and the warnings; nothing is stored. Conditions the plan's device does not "
    "take, or values outside their plausible range, are refused with 422 (one problem per "
    "line); a plan not approved, or stored by an earlier release without a typed delivery, "
    "with 409.",
    dependencies=[Depends(check_csrf)],
    responses={**ERRORS, **CONFLICT},
)
def plan_console(request: Request, plan_id: PlanId, body: ConsoleIn) -> dict[str, Any]:
    web = web_of(request)
    with web.db() as s:
        user = api_user(request, s)
        plan = operations.load_plan(web, s, user, plan_id)
        source = operations.day_source(web, plan, body.source_serial)
        day = operations.day_console(plan, operations.conditions_of(body.model_dump()), source)
        return operations.console_summary(plan, day)


@router.get(
    "/plans/{plan_id}/verify",
    response_model=VerifyOut,
    summary="Check a plan against its seal",
    responses={**ERRORS, **CONFLICT},
)
def verify(request: Request, plan_id: PlanId) -> dict[str, Any]:
    web = web_of(request)
    with web.db() as s:
        user = api_user(request, s)
        plan = operations.load_plan(web, s, user, plan_id)
        return {"plan_id": plan.id, "status": plan.status, "sealed": plan.sealed, "seal_ok": True}


@router.get(
    "/plans/{plan_id}/report.pdf",
    summary="The plan report as PDF",
    response_class=FileResponse,
    responses={**PDF_RESPONSE, **ERRORS, **CONFLICT},
)
def report_pdf(request: Request, plan_id: PlanId) -> FileResponse:
    return downloads.report_pdf_response(request, plan_id, api_user)


@router.get(
    "/plans/{plan_id}/dicom.zip",
    summary="The plan as DICOM RT (CT, RTSTRUCT, RTDOSE, RTPLAN) in a zip",
    response_class=FileResponse,
    responses={**ZIP_RESPONSE, **ERRORS, **CONFLICT},
)
def dicom_zip(request: Request, plan_id: PlanId, anonymise: bool = False) -> FileResponse:
    return downloads.dicom_zip_response(request, plan_id, api_user, anonymise)


@router.get(
    "/plans/{plan_id}/plan.json",
    summary="The sealed plan JSON as a file",
    responses={200: {"content": {"application/json": {}}}, **ERRORS, **CONFLICT},
)
def plan_json_file(request: Request, plan_id: PlanId) -> Response:
    return downloads.plan_json_response(request, plan_id, api_user)
