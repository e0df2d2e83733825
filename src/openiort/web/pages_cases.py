"""Case pages: the case list, case entry and editing, the case, its verdicts and summary.

Every page needs a logged-in user; every form carries the session's CSRF token.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from openiort.case import CaseError, ImplausibleValue, implausible_values, parse_case
from openiort.clinical.summary import build_patient_summary, render_patient_summary
from openiort.records import audit, service
from openiort.records.errors import ConflictError, RecordsValueError
from openiort.records.models import Plan
from openiort.web import caseform, operations
from openiort.web.auth import check_csrf, page_user
from openiort.web.formatting import fmt_time
from openiort.web.routing import CaseId, form_text, message, redirect
from openiort.web.state import web_of

router = APIRouter(include_in_schema=False)


@router.get("/cases", response_class=HTMLResponse)
def cases_page(request: Request) -> Response:
    web = web_of(request)
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
                    "updated": fmt_time(case.updated_at),
                    "updated_by": case.updated_by.username if case.updated_by else "",
                    "plan_id": latest[0] if latest else None,
                    "plan_version": latest[1] if latest else None,
                    "plan_status": latest[2] if latest else None,
                }
            )
        return web.render(
            request, "cases.html", {"rows": rows, "nav": "cases", "message": message(request)}
        )


def _latest_plans(s: Any) -> dict[int, tuple[int, int, str]]:
    """case id -> (plan id, version, status) of its newest plan, without loading plan JSON."""
    rows = s.execute(
        select(Plan.case_id, Plan.id, Plan.version_number, Plan.status).order_by(
            Plan.case_id, Plan.version_number
        )
    )
    return {case_id: (pid, version, status) for case_id, pid, version, status in rows}


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
    implausible: list[ImplausibleValue] | None = None,
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
        "confirm": caseform.confirmation(implausible or []),
        "nav": "new" if new else "",
    }


def _case_data_from_form(
    values: dict[str, str],
) -> tuple[dict[str, Any] | None, list[str], list[ImplausibleValue]]:
    """The case mapping and no problems, or ``None`` and every problem found, with the values
    that look like a unit slip and are not confirmed (the form then asks for confirmation)."""
    data, problems = caseform.read_form(values)
    unreadable = {p.partition(": ")[0] for p in problems}
    try:
        case = parse_case(data)
    except CaseError as exc:
        # A field left out because it was unreadable is reported as such, not as missing.
        problems += [p for p in exc.problems if p.partition(": ")[0] not in unreadable]
        return None, problems, []
    if problems:
        return None, problems, []
    found = implausible_values(case)
    if found and not caseform.confirmed(values, found):
        return None, [caseform.unconfirmed_problem(v) for v in found], found
    return data, [], []


@router.get("/cases/new", response_class=HTMLResponse)
def new_case_page(request: Request) -> Response:
    web = web_of(request)
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
    values = await form_text(request)
    return await run_in_threadpool(_new_case_submit, request, values)


def _new_case_submit(request: Request, values: dict[str, str]) -> Response:
    web = web_of(request)
    extra = {
        "patient_name": values.get("patient_name", "").strip()[:200],
        "patient_birth_date": values.get("patient_birth_date", "").strip()[:20],
    }

    def again(problems: list[str], implausible: list[ImplausibleValue] | None = None) -> Response:
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
                implausible=implausible,
            ),
            status_code=422,
        )

    with web.db() as s:
        user = page_user(request, s)
        data, problems, implausible = _case_data_from_form(values)
        try:
            birth = operations.parse_birth_date(extra["patient_birth_date"])
        except RecordsValueError as exc:
            problems.append(str(exc))
            birth = None
        if data is None or problems:
            return again(problems, implausible)
        try:
            case = operations.new_case(s, user, data, extra["patient_name"] or None, birth)
        except CaseError as exc:
            s.rollback()
            return again(list(exc.problems))
        except RecordsValueError as exc:
            s.rollback()
            return again([str(exc)])
        case_id = case.id
    return redirect(f"/cases/{case_id}?msg=created")


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(request: Request, case_id: CaseId) -> Response:
    web = web_of(request)
    with web.db() as s:
        user = page_user(request, s)
        case = service.get_case(s, case_id)
        audit.record_view(s, user, "case", case.id)  # who viewed which record
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
                "message": message(request),
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
    web = web_of(request)
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
    values = await form_text(request)
    return await run_in_threadpool(_edit_case_submit, request, case_id, values)


def _edit_case_submit(request: Request, case_id: CaseId, values: dict[str, str]) -> Response:
    web = web_of(request)
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
            implausible: list[ImplausibleValue] | None = None,
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
                    implausible=implausible,
                ),
                status_code=status,
            )

        data, problems, implausible = _case_data_from_form(values)
        if data is None:
            return again(problems, expected, implausible=implausible)
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
    return redirect(f"/cases/{case_id}?msg={msg}")


@router.get("/cases/{case_id}/verdicts", response_class=HTMLResponse)
def verdicts_page(request: Request, case_id: CaseId) -> Response:
    web = web_of(request)
    with web.db() as s:
        page_user(request, s)
        case = service.get_case(s, case_id)
        section = operations.clinical_section(web, case)
        return web.render(request, "verdicts.html", {"case": case, "section": section})


@router.get("/cases/{case_id}/summary", response_class=HTMLResponse)
def patient_summary_page(request: Request, case_id: CaseId) -> Response:
    web = web_of(request)
    with web.db() as s:
        page_user(request, s)
        case = service.get_case(s, case_id)
        html = render_patient_summary(build_patient_summary(service.case_model(case)))
    return HTMLResponse(html)
