"""The delivery form: the conditions of the day, and console values as entered, checked
against the approved plan.

The conditions of the day (date and time in UTC, daily output factor, pressure and temperature
where the device takes them, fraction number) give the day's console values of the sealed
delivery, as ``iort console`` prints them (:func:`openiort.session.console_values`). They sit
inside the delivery form (``_console_today.html``): its "compute" button posts the form to
``/plans/{id}/console``, which shows each setting planned and today, each factor with its
reason and the warnings, and keeps the session computed in a hidden field; the delivery is then
checked against the day's values, and records them.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from openiort.records.delivery import DaySettings, format_time_s
from openiort.records.errors import DeliveryCheckError, LifecycleError, RecordsValueError
from openiort.records.models import Plan
from openiort.session import (
    ConsoleSetting,
    ConsoleValues,
    SessionError,
    TreatmentSession,
    make_session,
)
from openiort.web import operations
from openiort.web.auth import check_csrf, page_user, require_role
from openiort.web.pages_plans import plan_context
from openiort.web.routing import MAX_ID, PlanId, form_text, redirect
from openiort.web.state import WebApp, web_of

router = APIRouter(include_in_schema=False)

# The conditions-of-the-day fields of the form, and what the problem lines call them.
SESSION_FIELDS = {
    "session_output_factor": "daily output factor",
    "session_pressure_hpa": "pressure",
    "session_temperature_c": "temperature",
    "session_check_pressure_hpa": "pressure at the output check",
    "session_check_temperature_c": "temperature at the output check",
}
SESSION_AT = "session_at"
SESSION_FRACTION = "session_fraction"
# HDR: the serial of the department's source record to use, when the server has several.
SESSION_SOURCE = "session_source"
# The session whose console values were shown (its JSON): the delivery is checked against it.
SESSION_COMPUTED = "session_computed"
FORM_TIME = "%Y-%m-%dT%H:%M"  # what an <input type="datetime-local"> holds (in UTC here)


@dataclass(frozen=True)
class ConsoleRow:
    """One console setting as the page shows it."""

    name: str
    planned: str
    today: str


@dataclass(frozen=True)
class ConsoleDay:
    """The day's console values of a plan, ready for ``_console_today.html``."""

    day: DaySettings
    rows: list[ConsoleRow]
    dwells: list[ConsoleRow]
    due: str | None
    token: str

    @property
    def values(self) -> ConsoleValues:
        return self.day.values


def _setting_text(value: float, unit: str) -> str:
    if unit == "min":
        return f"{value:.3f} min · {format_time_s(value * 60.0)}"
    if unit == "s":
        return format_time_s(value)
    return f"{value:g} {unit}"


def _row(setting: ConsoleSetting) -> ConsoleRow:
    return ConsoleRow(
        setting.name,
        _setting_text(setting.planned, setting.unit),
        _setting_text(setting.today, setting.unit),
    )


def console_day(day: DaySettings) -> ConsoleDay:
    """What the page shows of the day's console values (HDR: the total first, dwells apart)."""
    settings = day.values.settings
    if day.values.technique == "hdr":
        rows, dwells = [_row(settings[-1])], [_row(x) for x in settings[:-1]]
    else:
        rows, dwells = [_row(x) for x in settings], []
    due = None
    if day.after_interruption:
        if day.time_s is not None:
            assert day.reference_time_s is not None
            due = (
                f"{format_time_s(day.time_s)} today "
                f"({format_time_s(day.reference_time_s)} at the reference conditions)"
            )
        else:
            due = (
                f"{day.monitor_units:g} MU today "
                f"({day.reference_monitor_units:g} MU at the reference conditions)"
            )
    return ConsoleDay(day, rows, dwells, due, day.values.session.model_dump_json())


def _form_number(values: dict[str, str], name: str, problems: list[str]) -> float | None:
    raw = values.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        problems.append(f"{SESSION_FIELDS[name]}: {raw!r} is not a number")
        return None
    return value


def form_session(values: dict[str, str], now: dt.datetime | None = None) -> TreatmentSession:
    """The treatment session of the form's conditions of the day.

    The date and time are in UTC (a time with its zone is taken as given); empty, they are now
    (to the minute, as the form shows them).

    Raises
    ------
    SessionError
        One problem per value that is not usable.
    """
    problems: list[str] = []
    raw_at = values.get(SESSION_AT, "").strip()
    at = (now or dt.datetime.now(dt.UTC)).replace(second=0, microsecond=0)
    if raw_at:
        try:
            at = dt.datetime.fromisoformat(raw_at)
        except ValueError:
            problems.append(f"date and time: {raw_at!r} is not a date and time (UTC)")
        else:
            at = at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)
    numbers = {name: _form_number(values, name, problems) for name in SESSION_FIELDS}
    raw_fraction = values.get(SESSION_FRACTION, "").strip() or "1"
    fraction = 1
    if raw_fraction.isdigit() and len(raw_fraction) < 6:
        fraction = int(raw_fraction)
    else:
        problems.append(f"fraction: {raw_fraction!r} is not a fraction number")
    if problems:
        raise SessionError(*problems, source="session")
    return make_session(
        at,
        output_factor=numbers["session_output_factor"],
        pressure_hpa=numbers["session_pressure_hpa"],
        temperature_c=numbers["session_temperature_c"],
        fraction=fraction,
        output_check_pressure_hpa=numbers["session_check_pressure_hpa"],
        output_check_temperature_c=numbers["session_check_temperature_c"],
    )


def _console_context(
    web: WebApp, plan: Plan, values: dict[str, str], session: TreatmentSession | None = None
) -> tuple[dict[str, Any], int]:
    """The include's context for the conditions entered, and the page's status code."""
    names = (SESSION_AT, SESSION_FRACTION, SESSION_SOURCE, *SESSION_FIELDS)
    inputs = {k: values.get(k, "") for k in names}
    context: dict[str, Any] = {"console_inputs": inputs, "console_errors": [], "console_day": None}
    try:
        session = session or form_session(values)
        source = operations.day_source(web, plan, values.get(SESSION_SOURCE, "").strip() or None)
        day = operations.day_console(plan, session, source)
    except SessionError as exc:
        context["console_errors"] = list(exc.problems)
        return context, 422
    except LifecycleError as exc:
        context["console_errors"] = [str(exc)]
        return context, 409
    inputs[SESSION_AT] = session.at_utc.strftime(FORM_TIME)
    context["console_day"] = console_day(day)
    return context, 200


def submitted_conditions(values: dict[str, str]) -> tuple[TreatmentSession | None, list[str]]:
    """The conditions of the day a delivery form carries: those whose console values were
    computed and shown (``None`` when none were), or the problems that refuse it."""
    token = values.get(SESSION_COMPUTED, "").strip()
    if not token:
        if any(values.get(name, "").strip() for name in SESSION_FIELDS):
            return None, [
                "conditions of the day: entered but not computed; compute the console values "
                "of the day first, or clear them to check against the plan's reference values"
            ]
        return None, []
    try:
        session = form_session(values)
    except SessionError as exc:
        return None, [f"conditions of the day: {p}" for p in exc.problems]
    if session.model_dump_json() != token:
        return None, [
            "conditions of the day: changed after the console values were computed; compute "
            "them again"
        ]
    return session, []


@router.post(
    "/plans/{plan_id}/console", response_class=HTMLResponse, dependencies=[Depends(check_csrf)]
)
async def console_submit(request: Request, plan_id: PlanId) -> Response:
    values = await form_text(request)
    return await run_in_threadpool(_console_submit, request, plan_id, values)


def _console_submit(request: Request, plan_id: PlanId, values: dict[str, str]) -> Response:
    web = web_of(request)
    with web.db() as s:
        user = page_user(request, s)  # any logged-in user may compute them; nothing is stored
        context = plan_context(request, s, user, plan_id)
        plan = context["plan"]
        if plan.status != "approved":
            raise LifecycleError(
                f"plan {plan.id} (version {plan.version_number}) is {plan.status}: the "
                "conditions of the day are entered for an approved plan still to be delivered"
            )
        console, status = _console_context(web, plan, values)
        context.update(console)
        context["delivery_values"] = values  # the console entries typed so far stay
        return web.render(request, "plan.html", context, status_code=status)


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
            numbers[name] = None
            problems.append(f"{name.replace('_', ' ')}: {raw[:40]!r} is not a number")
    check = values.get("output_check_id", "").strip()
    check_id: int | None = None
    if check:
        # A record id: digits, within the database's integer range (else 422, never 500).
        if check.isascii() and check.isdigit() and len(check) <= 10 and int(check) <= MAX_ID:
            check_id = int(check)
        else:
            problems.append(f"output check: {check[:20]!r} is not the id of an output check")
    entry: dict[str, Any] = {
        "applicator": values.get("applicator", "").strip(),
        "interrupted": values.get("interrupted") == "on",
        "note": values.get("note", "").strip()[:4000] or None,
        "output_check_id": check_id,
    }
    override = values.get("output_check_override", "").strip()
    if override:  # a physicist's reason to deliver without the day's output check (audited)
        entry["output_check_override"] = override[:500]
    if not entry["applicator"]:
        problems.append("applicator: enter the applicator set at the console")
    if technique == "hdr":
        _hdr_entries(values, entry, problems)
    if by_time:
        entry["time_min"] = numbers["time_min"]
        entry["given_time_min"] = numbers["given"]
    else:
        entry["monitor_units"] = numbers["monitor_units"]
        entry["energy_mev"] = numbers["energy_mev"]
        entry["bevel_deg"] = numbers["bevel_deg"]
        entry["given_monitor_units"] = numbers["given"]
    return entry, problems


BALLOON_FIELDS = {
    "balloon_diameter_mm": "diameter_mm",
    "balloon_volume_cc": "volume_cc",
    "balloon_skin_distance_mm": "skin_distance_mm",
}


def _hdr_entries(values: dict[str, str], entry: dict[str, Any], problems: list[str]) -> None:
    """The dwell times shown by the afterloader and the pre-fraction balloon check."""
    raw = values.get("dwell_times_s", "").replace(",", " ").split()
    if raw:
        try:
            entry["dwell_times_s"] = [_console_number(x, False) for x in raw]
        except ValueError:
            problems.append("dwell times: enter numbers in seconds, separated by spaces")
    check: dict[str, float] = {}
    for name, key in BALLOON_FIELDS.items():
        text = values.get(name, "").strip()
        if text:
            try:
                check[key] = _console_number(text, False)
            except ValueError:
                problems.append(f"{name.replace('_', ' ')}: {text!r} is not a number")
    if check:
        entry["balloon_check"] = check


@router.post(
    "/plans/{plan_id}/deliveries", response_class=HTMLResponse, dependencies=[Depends(check_csrf)]
)
async def delivery_submit(request: Request, plan_id: PlanId) -> Response:
    values = await form_text(request)
    return await run_in_threadpool(_delivery_submit, request, plan_id, values)


def _delivery_submit(request: Request, plan_id: PlanId, values: dict[str, str]) -> Response:
    web = web_of(request)
    with web.db() as s:
        user = page_user(request, s)
        require_role(user, "delivery.record")
        plan = operations.load_plan(web, s, user, plan_id)
        entry, problems = _delivery_entry(values, plan.technique)
        conditions, session_problems = submitted_conditions(values)
        problems += session_problems
        if not problems:
            entry["conditions"] = conditions
            try:
                serial = values.get(SESSION_SOURCE, "").strip() or None
                delivery = operations.record_delivery(web, s, user, plan_id, entry, serial)
                interrupted = delivery.interrupted
            except DeliveryCheckError as exc:
                s.rollback()
                problems = list(exc.mismatches)
            except SessionError as exc:
                s.rollback()
                problems = [f"conditions of the day: {p}" for p in exc.problems]
            except (RecordsValueError, LifecycleError) as exc:
                s.rollback()
                problems = [str(exc)]
        if problems:
            context = plan_context(request, s, user, plan_id)
            context["delivery_errors"] = problems
            context["delivery_values"] = values
            if conditions is not None:  # the day's values stay shown beside the entries
                context.update(_console_context(web, context["plan"], values, conditions)[0])
            else:
                context["console_inputs"] = values
            return web.render(request, "plan.html", context, status_code=422)
    return redirect(f"/plans/{plan_id}?msg={'interrupted' if interrupted else 'delivered'}")
