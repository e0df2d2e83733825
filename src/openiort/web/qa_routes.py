"""The 50 kV source's daily checks from the web: a page (``/qa``) and the JSON API (``/api/qa``).

The output check in the probe adapter (chamber reading, air pressure and temperature, serials
of source and chamber) and the isotropy check with the photodiode array are stored by
:mod:`openiort.records.qa`; a delivery of an x-ray plan then takes its source's check of the
day (:mod:`openiort.records.daily_output`). Recording needs the ``qa.record`` permission
(physicists); reading the list, any logged-in user.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from openiort.records.common import require_role
from openiort.records.errors import RecordsValueError
from openiort.records.models import IsotropyCheck, SourceOutputCheck, User
from openiort.records.qa import (
    REFERENCE_PRESSURE_HPA,
    REFERENCE_TEMPERATURE_C,
    list_qa_checks,
    output_factor,
    record_xray_isotropy_check,
    record_xray_output_check,
)
from openiort.web.api_models import ERRORS
from openiort.web.auth import api_user, check_csrf, page_user
from openiort.web.routing import form_text, message, redirect
from openiort.web.state import web_of

api_router = APIRouter(prefix="/api/qa", tags=["api"])
page_router = APIRouter(include_in_schema=False)
ISOTROPY_DIRECTIONS = ("+x", "-x", "+y", "-y", "+z")  # the photodiode array's diodes
LIST_LIMIT = 50


class XrayOutputCheckIn(BaseModel):
    """The 50 kV output check in the probe adapter, as measured."""

    model_config = ConfigDict(extra="forbid")
    source_serial: str = Field(min_length=1, max_length=100)
    chamber_serial: str = Field(min_length=1, max_length=100)
    reading: float = Field(description="the chamber's reading as read, e.g. nC")
    reference_reading: float = Field(description="the baseline reading at reference air")
    unit: str = Field("nC", min_length=1, max_length=32)
    pressure_hpa: float
    temperature_c: float
    reference_pressure_hpa: float = REFERENCE_PRESSURE_HPA
    reference_temperature_c: float = REFERENCE_TEMPERATURE_C
    tolerance_pct: float = Field(description="the QA programme's action limit")
    performed_at: dt.datetime | None = Field(None, description="default now; with time zone")
    note: str | None = Field(None, max_length=4000)


class XrayIsotropyCheckIn(BaseModel):
    """The 50 kV isotropy check with the photodiode array: one reading per diode."""

    model_config = ConfigDict(extra="forbid")
    source_serial: str = Field(min_length=1, max_length=100)
    array_serial: str = Field(min_length=1, max_length=100)
    readings: dict[str, float] = Field(description='e.g. {"+x": 1.01, "-x": 0.99, ...}')
    unit: str = Field("relative", min_length=1, max_length=32)
    tolerance_pct: float
    performed_at: dt.datetime | None = None
    note: str | None = Field(None, max_length=4000)


class OutputCheckOut(BaseModel):
    check_id: int
    device: str
    technique: str
    performed_at: str
    performed_by: str | None
    measured_value: float
    expected_value: float
    unit: str
    output_factor: float
    deviation_pct: float
    tolerance_pct: float
    passed: bool
    details: dict[str, Any] | None
    note: str | None


class IsotropyCheckOut(BaseModel):
    check_id: int
    device: str
    performed_at: str
    performed_by: str | None
    readings: dict[str, float]
    unit: str
    max_deviation_pct: float
    tolerance_pct: float
    passed: bool
    details: dict[str, Any] | None
    note: str | None


class QaChecksOut(BaseModel):
    output_checks: list[OutputCheckOut]
    isotropy_checks: list[IsotropyCheckOut]


def output_summary(c: SourceOutputCheck) -> dict[str, Any]:
    return {
        "check_id": c.id,
        "device": c.device,
        "technique": c.technique,
        "performed_at": c.performed_at.isoformat(),
        "performed_by": c.performed_by.username if c.performed_by else None,
        "measured_value": c.measured_value,
        "expected_value": c.expected_value,
        "unit": c.unit,
        "output_factor": output_factor(c),
        "deviation_pct": c.deviation_pct,
        "tolerance_pct": c.tolerance_pct,
        "passed": c.passed,
        "details": c.details,
        "note": c.note,
    }


def isotropy_summary(c: IsotropyCheck) -> dict[str, Any]:
    return {
        "check_id": c.id,
        "device": c.device,
        "performed_at": c.performed_at.isoformat(),
        "performed_by": c.performed_by.username if c.performed_by else None,
        "readings": c.readings,
        "unit": c.unit,
        "max_deviation_pct": c.max_deviation_pct,
        "tolerance_pct": c.tolerance_pct,
        "passed": c.passed,
        "details": c.details,
        "note": c.note,
    }


def record_output(s: Session, user: User, fields: dict[str, Any]) -> SourceOutputCheck:
    require_role(user, "qa.record")
    return record_xray_output_check(s, user, **fields)


def record_isotropy(s: Session, user: User, fields: dict[str, Any]) -> IsotropyCheck:
    require_role(user, "qa.record")
    return record_xray_isotropy_check(s, user, **fields)


def checks(s: Session, device: str | None = None) -> dict[str, Any]:
    out, iso = list_qa_checks(s, device)
    return {
        "output_checks": [output_summary(c) for c in out[:LIST_LIMIT]],
        "isotropy_checks": [isotropy_summary(c) for c in iso[:LIST_LIMIT]],
    }


# ------------------------------------------------------------------------------------ API


@api_router.get("", response_model=QaChecksOut, summary="The latest QA checks", responses=ERRORS)
def list_checks(request: Request, device: str | None = None) -> dict[str, Any]:
    web = web_of(request)
    with web.db() as s:
        api_user(request, s)
        return checks(s, device)


@api_router.post(
    "/output",
    response_model=OutputCheckOut,
    status_code=201,
    summary="Record the 50 kV output check in the probe adapter (physicist)",
    description="The reading is corrected to reference air (k_TP) and compared with the "
    "reference reading; the output factor of the day goes into that day's deliveries of the "
    "source's plans. A failing check is recorded too, and stops the source for the day.",
    dependencies=[Depends(check_csrf)],
    responses=ERRORS,
)
def api_output(request: Request, body: XrayOutputCheckIn) -> dict[str, Any]:
    web = web_of(request)
    with web.db() as s:
        user = api_user(request, s)
        return output_summary(record_output(s, user, body.model_dump()))


@api_router.post(
    "/isotropy",
    response_model=IsotropyCheckOut,
    status_code=201,
    summary="Record the 50 kV isotropy check with the photodiode array (physicist)",
    dependencies=[Depends(check_csrf)],
    responses=ERRORS,
)
def api_isotropy(request: Request, body: XrayIsotropyCheckIn) -> dict[str, Any]:
    web = web_of(request)
    with web.db() as s:
        user = api_user(request, s)
        return isotropy_summary(record_isotropy(s, user, body.model_dump()))


# ---------------------------------------------------------------------------------- page


def _render(request: Request, s: Session, user: User, **context: Any) -> Response:
    web = web_of(request)
    return web.render(
        request,
        "qa.html",
        {
            "nav": "qa",
            "may_record": user.role == "physicist",
            "directions": ISOTROPY_DIRECTIONS,
            "reference_pressure_hpa": REFERENCE_PRESSURE_HPA,
            "reference_temperature_c": REFERENCE_TEMPERATURE_C,
            "message": message(request),
            "values": {},
            "problems": [],
            **checks(s),
            **context,
        },
        status_code=422 if context.get("problems") else 200,
    )


@page_router.get("/qa", response_class=HTMLResponse)
def qa_page(request: Request) -> Response:
    web = web_of(request)
    with web.db() as s:
        user = page_user(request, s)
        return _render(request, s, user)


def _number(values: dict[str, str], name: str, problems: list[str]) -> float | None:
    raw = values.get(name, "").strip().replace(",", ".")
    if not raw:
        problems.append(f"{name.replace('_', ' ')}: required")
        return None
    try:
        return float(raw)
    except ValueError:
        problems.append(f"{name.replace('_', ' ')}: {raw!r} is not a number")
        return None


def _submit(request: Request, values: dict[str, str], kind: str) -> Response:
    web = web_of(request)
    with web.db() as s:
        user = page_user(request, s)
        problems: list[str] = []
        common: dict[str, Any] = {
            "source_serial": values.get("source_serial", ""),
            "tolerance_pct": _number(values, "tolerance_pct", problems),
            "note": values.get("note", "").strip()[:4000] or None,
        }
        fields: dict[str, Any]
        if kind == "output":
            fields = {
                **common,
                "chamber_serial": values.get("chamber_serial", ""),
                "unit": values.get("unit", "").strip() or "nC",
                **{
                    n: _number(values, n, problems)
                    for n in (
                        "reading",
                        "reference_reading",
                        "pressure_hpa",
                        "temperature_c",
                        "reference_pressure_hpa",
                        "reference_temperature_c",
                    )
                },
            }
        else:
            readings = {d: _number(values, f"reading_{d}", problems) for d in ISOTROPY_DIRECTIONS}
            fields = {
                **common,
                "array_serial": values.get("array_serial", ""),
                "unit": "relative",
                "readings": readings,
            }
        if not problems:
            try:
                if kind == "output":
                    record_output(s, user, fields)
                else:
                    record_isotropy(s, user, fields)
            except RecordsValueError as exc:
                problems.append(str(exc))
        if problems:
            s.rollback()
            return _render(request, s, user, values=values, problems=problems, form=kind)
    return redirect("/qa?msg=qa-recorded")


@page_router.post("/qa/output", response_class=HTMLResponse, dependencies=[Depends(check_csrf)])
async def qa_output_submit(request: Request) -> Response:
    values = await form_text(request)
    return await run_in_threadpool(_submit, request, values, "output")


@page_router.post("/qa/isotropy", response_class=HTMLResponse, dependencies=[Depends(check_csrf)])
async def qa_isotropy_submit(request: Request) -> Response:
    values = await form_text(request)
    return await run_in_threadpool(_submit, request, values, "isotropy")
