"""The delivery form: console values as entered, checked against the approved plan."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from openiort.records.errors import DeliveryCheckError, LifecycleError, RecordsValueError
from openiort.web import operations
from openiort.web.auth import check_csrf, page_user, require_role
from openiort.web.pages_plans import plan_context
from openiort.web.routing import PlanId, redirect
from openiort.web.state import web_of

router = APIRouter(include_in_schema=False)


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
    web = web_of(request)
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
            context = plan_context(request, s, user, plan_id)
            context["delivery_errors"] = problems
            context["delivery_values"] = values
            return web.render(request, "plan.html", context, status_code=422)
    return redirect(f"/plans/{plan_id}?msg={'interrupted' if interrupted else 'delivered'}")
