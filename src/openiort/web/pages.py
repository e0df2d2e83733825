"""The pages: login, cases, case entry, verdicts, planning, plan, approval, downloads.

URLs carry record ids only (never a patient's identifier). Every page needs a logged-in
user; every form carries the session's CSRF token. Messages after a redirect are named by a
code in the query string (``?msg=approved``) so that no text from the request is echoed.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from openiort.case import CaseError, parse_case
from openiort.clinical.summary import build_patient_summary, render_patient_summary
from openiort.plan import REPORT_DEPTHS_MM, depth_key
from openiort.records import audit, service
from openiort.records.delivery import remaining
from openiort.records.errors import (
    ConflictError,
    DeliveryCheckError,
    LifecycleError,
    NotFoundError,
    RecordsValueError,
)
from openiort.records.models import Case, Plan
from openiort.records.plan_data import planned_delivery
from openiort.records.qa import list_qa_checks
from openiort.records.users import authenticate
from openiort.web import caseform, operations
from openiort.web.auth import (
    check_csrf,
    end_session,
    ensure_anonymous_session,
    page_user,
    require_role,
    safe_next,
    start_session,
    user_for,
)
from openiort.web.downloads import dicom_zip_path, plan_json_bytes, report_pdf_path
from openiort.web.dvhplot import dvh_legend, dvh_svg
from openiort.web.slices import AXES, ViewerError, legend, render_slice_png
from openiort.web.worker import REPORT_HTML

router = APIRouter(include_in_schema=False)

MAX_ID = 2_147_483_647  # record ids are 32-bit on PostgreSQL
CaseId = Annotated[int, Path(ge=1, le=MAX_ID)]
PlanId = Annotated[int, Path(ge=1, le=MAX_ID)]

MESSAGES = {
    "created": "Case saved.",
    "saved": "Changes saved.",
    "unchanged": "Nothing had changed; the case was not saved again.",
    "reviewed": "Review recorded.",
    "changes": "Changes requested; the plan stays a draft.",
    "approved": "Plan approved and sealed.",
    "wrong-password": "The password did not match: the plan was not approved.",
    "throttled": "Too many wrong passwords: wait a few minutes before approving.",
    "logged-out": "You have logged out.",
    "delivered": "Delivery recorded: the console settings matched the approved plan.",
    "interrupted": "Interrupted delivery recorded; the remainder is shown below.",
}
# (top, left, right, bottom) labels of each view, radiological convention.
ORIENTATIONS = {
    "axial": ("A", "R", "L", "P"),
    "coronal": ("S", "R", "L", "I"),
    "sagittal": ("S", "A", "P", "I"),
}
SLICE_SCALE = 3


def _message(request: Request) -> str | None:
    return MESSAGES.get(request.query_params.get("msg", ""))


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


# ------------------------------------------------------------------------------- login


@router.get("/")
def home() -> RedirectResponse:
    return _redirect("/cases")


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/cases") -> Response:
    web = operations.web_of(request)
    with web.db() as s:
        if user_for(request.state.session, s) is not None:
            return _redirect(safe_next(next))
    ensure_anonymous_session(request)
    return web.render(
        request, "login.html", {"next": safe_next(next), "message": _message(request)}
    )


@router.post("/login", response_class=HTMLResponse, dependencies=[Depends(check_csrf)])
def login(
    request: Request,
    username: str = Form(..., max_length=200),
    password: str = Form(..., max_length=2000),
    next: str = Form("/cases", max_length=2000),
) -> Response:
    web = operations.web_of(request)
    address = operations.client_address(request)
    target = safe_next(next)
    wait = web.limiter.retry_after_s(username, address)
    if wait:
        response = web.render(
            request,
            "login.html",
            {
                "next": target,
                "username": username,
                "error": f"Too many failed attempts: try again in {wait} s.",
            },
            status_code=429,
        )
        response.headers["Retry-After"] = str(wait)
        return response
    with web.db() as s:
        user = authenticate(s, username, password)
        user_id = user.id if user is not None else None
    if user_id is None:
        web.limiter.failed(username, address)
        operations.logger_login_failed(address)
        return web.render(
            request,
            "login.html",
            {"next": target, "username": username, "error": "Unknown user or wrong password."},
            status_code=401,
        )
    web.limiter.succeeded(username)
    start_session(request, web.sessions, user_id)
    return _redirect(target)


@router.post("/logout", dependencies=[Depends(check_csrf)])
def logout(request: Request) -> Response:
    end_session(request, operations.web_of(request).sessions)
    return _redirect("/login?msg=logged-out")


# ------------------------------------------------------------------------------- cases


@router.get("/cases", response_class=HTMLResponse)
def cases_page(request: Request) -> Response:
    web = operations.web_of(request)
    with web.db() as s:
        page_user(request, s)
        rows = []
        latest_plans = _latest_plans(s)
        for case in service.list_cases(s):
            latest = latest_plans.get(case.id)
            rows.append(
                {
                    "case_id": case.id,
                    "patient_id": case.patient.external_id,
                    "patient_name": case.patient.name,
                    "technique": case.data.get("intent", {}).get("technique", ""),
                    "laterality": case.data.get("preoperative", {}).get("laterality"),
                    "version": case.version,
                    "updated": operations_fmt(case),
                    "updated_by": case.updated_by.username if case.updated_by else "",
                    "plan_id": latest[0] if latest else None,
                    "plan_version": latest[1] if latest else None,
                    "plan_status": latest[2] if latest else None,
                }
            )
        return web.render(
            request, "cases.html", {"rows": rows, "nav": "cases", "message": _message(request)}
        )


def _latest_plans(s: Any) -> dict[int, tuple[int, int, str]]:
    """case id -> (plan id, version, status) of its newest plan, without loading plan JSON."""
    rows = s.execute(
        select(Plan.case_id, Plan.id, Plan.version_number, Plan.status).order_by(
            Plan.case_id, Plan.version_number
        )
    )
    return {case_id: (pid, version, status) for case_id, pid, version, status in rows}


def operations_fmt(case: Case) -> str:
    from openiort.web.app import fmt_time

    return fmt_time(case.updated_at)


def _form_context(
    *,
    heading: str,
    action: str,
    submit_label: str,
    cancel_url: str,
    values: dict[str, str],
    version: int | None,
    new: bool,
    problems: list[str] | None = None,
    extra: dict[str, str] | None = None,
    conflict: str | None = None,
    conflicts: dict[str, str] | None = None,
) -> dict[str, Any]:
    by_field, general = caseform.problems_by_field(problems or [])
    block_errors: dict[str, list[str]] = {}
    rest = []
    for p in general:
        loc, sep, message = p.partition(": ")
        if sep and loc in {b.name for b in caseform.FORM}:
            block_errors.setdefault(loc, []).append(message)
        elif sep and loc == "patient_birth_date":
            by_field.setdefault(loc, []).append(message)
        else:
            rest.append(p)
    return {
        "heading": heading,
        "action": action,
        "submit_label": submit_label,
        "cancel_url": cancel_url,
        "form": caseform.FORM,
        "values": values,
        "errors": by_field,
        "block_errors": block_errors,
        "general_errors": rest,
        "case_version": version,
        "new": new,
        "extra": extra or {},
        "conflict": conflict,
        "conflicts": conflicts or {},
        "nav": "new" if new else "",
    }


def _case_data_from_form(values: dict[str, str]) -> tuple[dict[str, Any] | None, list[str]]:
    """The case mapping and no problems, or ``None`` and every problem found."""
    data, problems = caseform.read_form(values)
    unreadable = {p.partition(": ")[0] for p in problems}
    try:
        parse_case(data)
    except CaseError as exc:
        # A field left out because it was unreadable is reported as such, not as missing.
        problems += [p for p in exc.problems if p.partition(": ")[0] not in unreadable]
    return (None, problems) if problems else (data, [])


@router.get("/cases/new", response_class=HTMLResponse)
def new_case_page(request: Request) -> Response:
    web = operations.web_of(request)
    with web.db() as s:
        user = page_user(request, s)
        if not operations.may_write(user):
            raise HTTPException(403, detail=f"your role ({user.role}) may not enter cases")
    return web.render(
        request,
        "case_form.html",
        _form_context(
            heading="New case",
            action="/cases/new",
            submit_label="Save case",
            cancel_url="/cases",
            values={"intent.technique": "xray"},
            version=None,
            new=True,
        ),
    )


@router.post("/cases/new", response_class=HTMLResponse, dependencies=[Depends(check_csrf)])
async def new_case_submit(request: Request) -> Response:
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    return await run_in_threadpool(_new_case_submit, request, values)


def _new_case_submit(request: Request, values: dict[str, str]) -> Response:
    web = operations.web_of(request)
    extra = {
        "patient_name": values.get("patient_name", "").strip()[:200],
        "patient_birth_date": values.get("patient_birth_date", "").strip()[:20],
    }

    def again(problems: list[str]) -> Response:
        return web.render(
            request,
            "case_form.html",
            _form_context(
                heading="New case",
                action="/cases/new",
                submit_label="Save case",
                cancel_url="/cases",
                values=values,
                version=None,
                new=True,
                problems=problems,
                extra=extra,
            ),
            status_code=422,
        )

    with web.db() as s:
        user = page_user(request, s)
        data, problems = _case_data_from_form(values)
        try:
            birth = operations.parse_birth_date(extra["patient_birth_date"])
        except RecordsValueError as exc:
            problems.append(str(exc))
            birth = None
        if data is None or problems:
            return again(problems)
        try:
            case = operations.new_case(s, user, data, extra["patient_name"] or None, birth)
        except CaseError as exc:
            s.rollback()
            return again(list(exc.problems))
        except RecordsValueError as exc:
            s.rollback()
            return again([str(exc)])
        case_id = case.id
    return _redirect(f"/cases/{case_id}?msg=created")


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(request: Request, case_id: CaseId) -> Response:
    web = operations.web_of(request)
    with web.db() as s:
        page_user(request, s)
        case = service.get_case(s, case_id)
        section = operations.clinical_section(web, case)
        history = audit.entries(s, "case", case.id)
        for p in case.plans:
            history.extend(audit.entries(s, "plan", p.id))
        history.sort(key=lambda e: (e.at, e.id), reverse=True)
        return web.render(
            request,
            "case.html",
            {
                "case": case,
                "patient": case.patient,
                "technique": case.data.get("intent", {}).get("technique", ""),
                "section": section,
                "plans": list(reversed(case.plans)),
                "form": caseform.FORM,
                "values": _display_values(case.data),
                "history": history[:50],
                "message": _message(request),
            },
        )


def _display_values(data: dict[str, Any]) -> dict[str, str]:
    values = caseform.case_data_to_form(data)
    for name, f in caseform.FIELDS.items():
        if f.value_type == "bool" and name in values:
            values[name] = "yes" if values[name] == "true" else "no"
        elif f.kind == "select" and name in values:
            values[name] = values[name].replace("_", " ")
    return values


@router.get("/cases/{case_id}/edit", response_class=HTMLResponse)
def edit_case_page(request: Request, case_id: CaseId) -> Response:
    web = operations.web_of(request)
    with web.db() as s:
        user = page_user(request, s)
        if not operations.may_write(user):
            raise HTTPException(403, detail=f"your role ({user.role}) may not edit cases")
        case = service.get_case(s, case_id)
        return web.render(
            request,
            "case_form.html",
            _form_context(
                heading=f"Edit case {case.id} (patient {case.patient.external_id})",
                action=f"/cases/{case.id}/edit",
                submit_label="Save changes",
                cancel_url=f"/cases/{case.id}",
                values=caseform.case_data_to_form(case.data),
                version=case.version,
                new=False,
            ),
        )


@router.post(
    "/cases/{case_id}/edit", response_class=HTMLResponse, dependencies=[Depends(check_csrf)]
)
async def edit_case_submit(request: Request, case_id: CaseId) -> Response:
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    return await run_in_threadpool(_edit_case_submit, request, case_id, values)


def _edit_case_submit(request: Request, case_id: CaseId, values: dict[str, str]) -> Response:
    web = operations.web_of(request)
    try:
        expected = int(values.get("version", ""))
    except ValueError:
        raise HTTPException(400, detail="the form has no case version: reload the case") from None
    with web.db() as s:
        user = page_user(request, s)
        case = service.get_case(s, case_id)
        heading = f"Edit case {case.id} (patient {case.patient.external_id})"

        def again(
            problems: list[str],
            version: int,
            conflict: str | None = None,
            conflicts: dict[str, str] | None = None,
            status: int = 422,
        ) -> Response:
            return web.render(
                request,
                "case_form.html",
                _form_context(
                    heading=heading,
                    action=f"/cases/{case_id}/edit",
                    submit_label="Save changes",
                    cancel_url=f"/cases/{case_id}",
                    values=values,
                    version=version,
                    new=False,
                    problems=problems,
                    conflict=conflict,
                    conflicts=conflicts,
                ),
                status_code=status,
            )

        data, problems = _case_data_from_form(values)
        if data is None:
            return again(problems, expected)
        before = case.version
        try:
            updated = operations.edit_case(s, user, case_id, expected, data)
        except ConflictError as exc:
            s.rollback()
            current = service.get_case(s, case_id)
            stored = caseform.case_data_to_form(current.data)
            differing = {
                name: stored.get(name, "not known")
                for name in caseform.FIELDS
                if stored.get(name, "") != values.get(name, "").strip()
            }
            return again([], current.version, str(exc), differing, status=409)
        except CaseError as exc:
            s.rollback()
            return again(list(exc.problems), expected)
        except RecordsValueError as exc:
            s.rollback()
            return again([str(exc)], expected)
        msg = "saved" if updated.version != before else "unchanged"
    return _redirect(f"/cases/{case_id}?msg={msg}")


@router.get("/cases/{case_id}/verdicts", response_class=HTMLResponse)
def verdicts_page(request: Request, case_id: CaseId) -> Response:
    web = operations.web_of(request)
    with web.db() as s:
        page_user(request, s)
        case = service.get_case(s, case_id)
        section = operations.clinical_section(web, case)
        return web.render(request, "verdicts.html", {"case": case, "section": section})


@router.get("/cases/{case_id}/summary", response_class=HTMLResponse)
def patient_summary_page(request: Request, case_id: CaseId) -> Response:
    web = operations.web_of(request)
    with web.db() as s:
        page_user(request, s)
        case = service.get_case(s, case_id)
        html = render_patient_summary(build_patient_summary(service.case_model(case)))
    return HTMLResponse(html)


# ------------------------------------------------------------------------------- planning


@router.post("/cases/{case_id}/plans", dependencies=[Depends(check_csrf)])
def start_plan(request: Request, case_id: CaseId, version: int | None = Form(None)) -> Response:
    web = operations.web_of(request)
    with web.db() as s:
        user = page_user(request, s)
        job = operations.start_plan(web, s, user, case_id, version)
    return _redirect(f"/jobs/{job.id}")


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, job_id: str) -> Response:
    web = operations.web_of(request)
    with web.db() as s:
        page_user(request, s)
    job = web.jobs.get(job_id)
    if job is None:
        raise HTTPException(404, detail="no such planning job (jobs are kept for an hour)")
    if job.state == "done" and job.plan_id is not None:
        return _redirect(f"/plans/{job.plan_id}")
    info = job.to_dict(web.jobs.position(job))
    return web.render(
        request,
        "job.html",
        {"job": job, "position": info["queue_position"], "computing_s": info["computing_s"]},
    )


# ------------------------------------------------------------------------------- plans


def _summary_rows(pj: dict[str, Any]) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    if "treatment_time_label" in pj:
        rows.append(("treatment time basis", str(pj["treatment_time_label"])))
    other = pj.get("prescription_other_definition")
    if isinstance(other, dict) and "dose_gy" in other:
        rows.append(
            (
                "same prescription in the other definition",
                f"{other['dose_gy']:.2f} Gy ({other.get('dose_definition', '')})",
            )
        )
    check = pj.get("second_check")
    if isinstance(check, dict):
        if "treatment_time_min" in check:
            rows.append(
                (
                    "independent second check",
                    f"{check['treatment_time_min']:.2f} min ({check.get('difference_pct', 0):+.2f} %)",
                )
            )
        elif "monitor_units" in check:
            rows.append(
                (
                    "independent second check",
                    f"{check['monitor_units']} MU ({check.get('difference_pct', 0):+.1f} %)",
                )
            )
    for key, label in (
        ("pressure_hpa", "pressure (hPa)"),
        ("source_title", "source"),
        ("air_kerma_strength_u", "air-kerma strength (U)"),
        ("trak_ugy_at_1m", "TRAK (uGy at 1 m)"),
    ):
        if key in pj and isinstance(pj[key], int | float | str):
            rows.append((label, str(pj[key])))
    if isinstance(pj.get("dwell_times_s"), list):
        rows.append(("dwell positions", str(len(pj["dwell_times_s"]))))
    return rows


def _axes(volume: Any) -> list[dict[str, Any]]:
    grid = volume.meta["grid"]
    centre = volume.meta["centre_index_zyx"]
    out = []
    for i, name in enumerate(AXES):
        coord = "zyx"[i]
        spacing = float(grid["spacing_mm"][2 - i])
        origin = float(grid["origin_mm"][2 - i])
        count = volume.axis_length(name)
        index = int(centre[i])
        shape = volume.shape
        width_cells = shape[2] if name in ("axial", "coronal") else shape[1]
        col_mm = grid["spacing_mm"][0] if name in ("axial", "coronal") else grid["spacing_mm"][1]
        finest = min(grid["spacing_mm"])
        out.append(
            {
                "name": name,
                "coord": coord,
                "count": count,
                "index": index,
                "origin_mm": origin,
                "spacing_mm": spacing,
                "orient": ORIENTATIONS[name],
                "width_px": int(width_cells * round(SLICE_SCALE * col_mm / finest)),
            }
        )
    return out


def _plan_context(request: Request, s: Any, user: Any, plan_id: PlanId) -> dict[str, Any]:
    web = operations.web_of(request)
    plan = operations.load_plan(web, s, user, plan_id)
    pj = plan.plan_json
    folder = web.files.existing_dir(plan.id)
    volume = web.viewer.get(folder)
    curves = volume.meta["dvh"]["curves"]
    clinical = pj.get("clinical") if isinstance(pj.get("clinical"), dict) else None
    approver_role = (
        plan.approval.approver_role
        if plan.approval
        else (plan.approved_by.role if plan.approved_by else "")
    )
    checks: list[Any] = []
    if plan.status == "approved":
        outputs, _ = list_qa_checks(s)
        checks = [c for c in outputs if c.technique == plan.technique][:10]
    return {
        "plan": plan,
        "case": plan.case,
        "patient": plan.case.patient,
        "pj": pj,
        "console": planned_delivery(pj),
        "summary_rows": _summary_rows(pj),
        "reviews": plan.reviews,
        "approver_role": approver_role,
        "deliveries": plan.deliveries,
        "remaining": remaining(plan) if plan.status in ("approved", "delivered") else None,
        "output_checks": checks,
        "axes": _axes(volume),
        "orientations": ORIENTATIONS,
        "legend": legend(volume),
        "dose_medium": volume.meta.get("dose_medium", ""),
        "dvh_svg": dvh_svg(
            curves, volume.meta["dvh"]["max_dose_gy"], volume.meta["prescription_gy"]
        ),
        "dvh_legend": dvh_legend(curves),
        "dvh_curves": curves,
        "depth_keys": [depth_key(z) for z in REPORT_DEPTHS_MM],
        "verdicts": clinical.get("verdicts", []) if clinical else [],
        "message": _message(request),
        "delivery_errors": [],
        "delivery_values": {},
    }


@router.get("/plans/{plan_id}", response_class=HTMLResponse)
def plan_page(request: Request, plan_id: PlanId) -> Response:
    web = operations.web_of(request)
    with web.db() as s:
        user = page_user(request, s)
        return web.render(request, "plan.html", _plan_context(request, s, user, plan_id))


DELIVERY_NUMBERS = ("time_min", "monitor_units", "energy_mev", "bevel_deg", "given")


def _console_number(raw: str, minutes: bool) -> float:
    """A number, or for times also ``mm:ss`` / ``mm:ss.s`` as consoles show them (in minutes)."""
    if minutes and ":" in raw:
        mm, ss = raw.split(":", 1)
        m, sec = int(mm), float(ss)
        if m < 0 or not 0 <= sec < 60:
            raise ValueError(raw)
        return m + sec / 60.0
    value = float(raw)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(raw)
    return value


def _delivery_entry(values: dict[str, str], technique: str) -> tuple[dict[str, Any], list[str]]:
    """The console entries of the delivery form, and the values that are not numbers."""
    problems: list[str] = []
    numbers: dict[str, float | None] = {}
    by_time = technique != "electron"
    for name in DELIVERY_NUMBERS:
        raw = values.get(name, "").strip()
        if not raw:
            numbers[name] = None
            continue
        try:
            numbers[name] = _console_number(raw, name in ("time_min", "given") and by_time)
        except ValueError:
            problems.append(f"{name.replace('_', ' ')}: {raw!r} is not a number")
    check = values.get("output_check_id", "").strip()
    entry: dict[str, Any] = {
        "applicator": values.get("applicator", "").strip(),
        "interrupted": values.get("interrupted") == "on",
        "note": values.get("note", "").strip()[:4000] or None,
        "output_check_id": int(check) if check.isdigit() else None,
    }
    if not entry["applicator"]:
        problems.append("applicator: enter the applicator set at the console")
    if by_time:
        entry["time_min"] = numbers["time_min"]
        entry["given_time_min"] = numbers["given"]
    else:
        entry["monitor_units"] = numbers["monitor_units"]
        entry["energy_mev"] = numbers["energy_mev"]
        entry["bevel_deg"] = numbers["bevel_deg"]
        entry["given_monitor_units"] = numbers["given"]
    return entry, problems


@router.post(
    "/plans/{plan_id}/deliveries", response_class=HTMLResponse, dependencies=[Depends(check_csrf)]
)
async def delivery_submit(request: Request, plan_id: PlanId) -> Response:
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    return await run_in_threadpool(_delivery_submit, request, plan_id, values)


def _delivery_submit(request: Request, plan_id: PlanId, values: dict[str, str]) -> Response:
    web = operations.web_of(request)
    with web.db() as s:
        user = page_user(request, s)
        require_role(user, "delivery.record")
        plan = operations.load_plan(web, s, user, plan_id)
        entry, problems = _delivery_entry(values, plan.technique)
        if not problems:
            try:
                delivery = operations.record_delivery(web, s, user, plan_id, entry)
                interrupted = delivery.interrupted
            except DeliveryCheckError as exc:
                s.rollback()
                problems = list(exc.mismatches)
            except (RecordsValueError, LifecycleError) as exc:
                s.rollback()
                problems = [str(exc)]
        if problems:
            context = _plan_context(request, s, user, plan_id)
            context["delivery_errors"] = problems
            context["delivery_values"] = values
            return web.render(request, "plan.html", context, status_code=422)
    return _redirect(f"/plans/{plan_id}?msg={'interrupted' if interrupted else 'delivered'}")


@router.get("/plans/{plan_id}/slices/{axis}/{index}.png")
def slice_png(
    request: Request,
    plan_id: PlanId,
    axis: Annotated[str, Path(max_length=10)],
    index: Annotated[int, Path(ge=0, le=100_000)],
) -> Response:
    web = operations.web_of(request)
    if axis not in AXES:
        raise ViewerError(f"axis: one of {', '.join(AXES)}")
    with web.db() as s:
        page_user(request, s)
        # Display only, and the most frequent request: the plan must exist, but its seal is
        # checked by the plan page and every download, not for each slice.
        pid = s.scalar(select(Plan.id).where(Plan.id == plan_id))  # no plan JSON loaded
        if pid is None:
            raise NotFoundError(f"plan {plan_id} does not exist")
    key = (pid, axis, index)
    png = web.png_cache.get(key)
    if png is None:
        volume = web.viewer.get(web.files.existing_dir(pid))
        png = render_slice_png(volume, axis, index, scale=SLICE_SCALE)
        web.png_cache.put(key, png)
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=600"})


@router.post("/plans/{plan_id}/review", dependencies=[Depends(check_csrf)])
def review_submit(
    request: Request,
    plan_id: PlanId,
    decision: str = Form(...),
    comment: str = Form("", max_length=4000),
) -> Response:
    if decision not in ("accept", "changes"):
        raise HTTPException(400, detail="decision: accept or changes")
    web = operations.web_of(request)
    with web.db() as s:
        user = page_user(request, s)
        operations.load_plan(web, s, user, plan_id)
        operations.review(s, user, plan_id, decision == "accept", comment or None)
    return _redirect(f"/plans/{plan_id}?msg={'reviewed' if decision == 'accept' else 'changes'}")


@router.post("/plans/{plan_id}/approve", dependencies=[Depends(check_csrf)])
def approve_submit(
    request: Request,
    plan_id: PlanId,
    password: str = Form(..., max_length=2000),
    comment: str = Form("", max_length=4000),
) -> Response:
    web = operations.web_of(request)
    with web.db() as s:
        user = page_user(request, s)
        operations.require_approver(user)
        try:
            operations.check_approval_password(web, request, user, password)
        except HTTPException as exc:
            code = "throttled" if exc.status_code == 429 else "wrong-password"
            return _redirect(f"/plans/{plan_id}?msg={code}")
        operations.approve(web, s, user, plan_id, comment or None)
    return _redirect(f"/plans/{plan_id}?msg=approved")


# ------------------------------------------------------------------------------- downloads


@router.get("/plans/{plan_id}/report.pdf")
def report_pdf(request: Request, plan_id: PlanId) -> Response:
    web = operations.web_of(request)
    with web.db() as s:
        user = page_user(request, s)
        plan = operations.load_plan(web, s, user, plan_id)
        path = report_pdf_path(web.files, plan)
        filename = f"openiort-plan{plan.id}-v{plan.version_number}-{plan.status}.pdf"
    return FileResponse(path, media_type="application/pdf", filename=filename)


@router.get("/plans/{plan_id}/report.html", response_class=HTMLResponse)
def report_html(request: Request, plan_id: PlanId) -> Response:
    web = operations.web_of(request)
    with web.db() as s:
        user = page_user(request, s)
        plan = operations.load_plan(web, s, user, plan_id)
        folder = web.files.check(plan.id, plan.plan_json, (REPORT_HTML,))
    return FileResponse(folder / REPORT_HTML, media_type="text/html; charset=utf-8")


@router.get("/plans/{plan_id}/dicom.zip")
def dicom_zip(request: Request, plan_id: PlanId, anonymise: bool = False) -> Response:
    web = operations.web_of(request)
    with web.db() as s:
        user = page_user(request, s)
        plan = operations.load_plan(web, s, user, plan_id)
        path = dicom_zip_path(web.files, plan, plan.case.patient.name, anonymise)
        suffix = "-deidentified" if anonymise else ""
        filename = f"openiort-plan{plan.id}-v{plan.version_number}-dicom{suffix}.zip"
    return FileResponse(path, media_type="application/zip", filename=filename)


@router.get("/plans/{plan_id}/plan.json")
def plan_json(request: Request, plan_id: PlanId) -> Response:
    web = operations.web_of(request)
    with web.db() as s:
        user = page_user(request, s)
        plan = operations.load_plan(web, s, user, plan_id)
        body = plan_json_bytes(plan)
        filename = f"openiort-plan{plan.id}-v{plan.version_number}.json"
    return Response(
        body,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# ------------------------------------------------------------------------------- API docs


@router.get("/api/docs", response_class=HTMLResponse)
def api_docs(request: Request) -> Response:
    web = operations.web_of(request)
    with web.db() as s:
        page_user(request, s)
    schema = request.app.openapi()
    operations_list = []
    for path, methods in schema.get("paths", {}).items():
        for method, op in methods.items():
            operations_list.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "description": (op.get("description") or "").split("\n")[0],
                }
            )
    return web.render(
        request,
        "api_docs.html",
        {
            "operations": operations_list,
            "openapi_version": schema.get("openapi", ""),
            "nav": "api",
        },
    )
