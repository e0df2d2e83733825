"""The JSON API's request and response bodies, and the error answers each operation lists."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from openiort.case import Case as CaseModel
from openiort.records.roles import Role
from openiort.session import ConsoleValues
from openiort.web.routing import CaseId, PlanId, Version


class ErrorOut(BaseModel):
    detail: str
    problems: list[str] = []
    reference: str | None = None


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "not logged in"},
    403: {"model": ErrorOut, "description": "role not allowed, or CSRF token missing"},
    404: {"model": ErrorOut, "description": "no such record"},
    422: {"model": ErrorOut, "description": "invalid input"},
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {
        "model": ErrorOut,
        "description": "conflict, lifecycle step not possible, or seal failure",
    }
}
PDF_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/pdf": {}}, "description": "the plan report"}
}
ZIP_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/zip": {}}, "description": "DICOM RT objects and plan.json"}
}


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=2000)


class SessionOut(BaseModel):
    username: str
    role: Role
    csrf_token: str
    may: list[str]


ACCEPT_IMPLAUSIBLE = Field(
    default=False,
    description="Confirm values that look like a unit slip (a skin distance under 1 mm: "
    "centimetres typed as millimetres?), as the form's confirmation box and `iort plan "
    "--accept-implausible` do. Without it such a case is refused with 422, each problem naming "
    "the field and its value. A cavity under 10 mm is refused whatever this says.",
)


class CaseIn(BaseModel):
    """A new case; the patient (``case.patient.id``) is registered on first sight."""

    model_config = ConfigDict(extra="forbid")
    case: CaseModel
    patient_name: str | None = Field(default=None, max_length=200)
    patient_birth_date: dt.date | None = None
    accept_implausible: bool = ACCEPT_IMPLAUSIBLE


class CaseUpdateIn(BaseModel):
    """The whole new case, and the version it was edited from (optimistic locking)."""

    model_config = ConfigDict(extra="forbid")
    case: CaseModel
    version: Version
    accept_implausible: bool = ACCEPT_IMPLAUSIBLE


class CaseSummaryOut(BaseModel):
    case_id: CaseId
    patient_record_id: int
    patient_id: str
    version: int
    technique: str | None
    created_at: str | None
    updated_at: str | None
    updated_by: str | None
    latest_plan_id: PlanId | None
    latest_plan_status: str | None


class CaseOut(CaseSummaryOut):
    case: dict[str, Any]


class PlanRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Version | None = Field(
        default=None, description="plan only if the case is still at this version"
    )


class JobOut(BaseModel):
    job_id: str
    case_id: CaseId
    case_version: int
    state: Literal["queued", "running", "done", "failed"]
    queue_position: int | None
    waited_s: float
    computing_s: float
    plan_id: PlanId | None
    message: str
    problems: list[str]


class ConsoleOut(BaseModel):
    applicator: str
    time_s: float | None
    monitor_units: float | None
    energy_mev: float | None
    bevel_deg: float | None
    prescription_dose_gy: float


class ReviewOut(BaseModel):
    reviewer: str
    role: str
    decision: str
    comment: str | None
    at: str | None


class PlanSummaryOut(BaseModel):
    plan_id: PlanId
    case_id: CaseId
    version_number: int
    case_version: int | None
    status: Literal["draft", "reviewed", "approved", "delivered"]
    technique: str
    created_at: str | None
    created_by: str | None
    approved_by: str | None
    approved_at: str | None
    canonical_sha256: str | None
    console: ConsoleOut
    reviews: list[ReviewOut]


class PlanOut(PlanSummaryOut):
    plan: dict[str, Any] = Field(description="the plan JSON with its status, approval and seal")


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    accept: bool = True
    comment: str | None = Field(default=None, max_length=4000)


class ApproveIn(BaseModel):
    """Approval is an electronic signature: the approver's password again."""

    model_config = ConfigDict(extra="forbid")
    password: str = Field(min_length=1, max_length=2000)
    comment: str | None = Field(default=None, max_length=4000)


class ConsoleIn(BaseModel):
    """The conditions of one treatment day (as ``iort console`` takes them).

    Which apply depends on the plan: the daily output factor for x-rays and electrons, the air
    pressure (and temperature) for electron machines whose monitor chamber is open to air, the
    date and time alone for HDR (the source's decay). A value the plan's device does not take
    is refused with 422, one problem per line.
    """

    model_config = ConfigDict(extra="forbid")
    at_utc: dt.datetime | None = Field(
        default=None,
        description="date and time of the treatment with its time zone (default: now)",
    )
    output_factor: float | None = Field(
        default=None, description="day's output / reference output, from that day's QA record"
    )
    pressure_hpa: float | None = Field(
        default=None, description="air pressure today, hPa (electron monitor chamber open to air)"
    )
    temperature_c: float | None = Field(
        default=None, description="temperature today, degrees C (chamber corrected for it)"
    )
    output_check_pressure_hpa: float | None = Field(
        default=None,
        description="air pressure at the day's output check, hPa (electron machines whose "
        "day's output comes from the daily output check)",
    )
    output_check_temperature_c: float | None = Field(
        default=None, description="temperature at the day's output check, degrees C"
    )
    fraction: int = Field(default=1, description="fraction number")
    source_serial: str | None = Field(
        default=None,
        max_length=64,
        description="HDR: the serial of the department's source record to use, when the server "
        "has several (default: its current record); a source other than the plan's (an "
        "exchange since the plan) rescales the dwell times to it",
    )


class ConsoleDueOut(BaseModel):
    setting: Literal["treatment time", "monitor units"]
    unit: Literal["s", "MU"]
    reference: float = Field(description="due at the plan's reference conditions")
    today: float = Field(description="due under the conditions of the day")
    after_interruption: bool = Field(description="the remainder after an interrupted session")


class PlanConsoleOut(ConsoleValues):
    """The day's console values (as ``iort console --json``): each setting planned and today,
    each factor with its reason, the warnings; and the setting due now."""

    plan_id: PlanId
    plan_status: Literal["approved", "delivered"]
    device: str = Field(description="the device data the plan was computed with")
    example_device_data: bool
    due: ConsoleDueOut


class BalloonCheckIn(BaseModel):
    """The balloon measured before an HDR fraction (diameter or volume, and skin distance)."""

    model_config = ConfigDict(extra="forbid")
    diameter_mm: float | None = None
    volume_cc: float | None = None
    skin_distance_mm: float | None = None


class DeliveryIn(BaseModel):
    """Values as set at the console; checked against the approved plan before recording."""

    model_config = ConfigDict(extra="forbid")
    applicator: str = Field(min_length=1, max_length=40, description="cm, or the HDR name")
    time_min: float | None = Field(default=None, description="x-ray and HDR plans")
    monitor_units: float | None = Field(default=None, description="electron plans")
    energy_mev: float | None = Field(default=None, description="electron plans")
    bevel_deg: float | None = None
    interrupted: bool = False
    given_time_min: float | None = None
    given_monitor_units: float | None = None
    output_check_id: Version | None = None
    output_check_override: str | None = Field(
        default=None,
        min_length=1,
        max_length=500,
        description="x-ray: a physicist's reason to deliver without the day's output check "
        "of the plan's source (audited); without it such a delivery is refused",
    )
    note: str | None = Field(default=None, max_length=4000)
    dwell_times_s: list[float] | None = Field(
        default=None,
        description="HDR: the dwell times the afterloader shows, one per dwell of the plan in "
        "its order, each checked against the day's value",
    )
    balloon_check: BalloonCheckIn | None = Field(
        default=None, description="HDR balloon course: the check before the fraction"
    )
    conditions: ConsoleIn | None = Field(
        default=None,
        description="the conditions of the day: the time or monitor units are then checked "
        "against the day's console values (POST /api/plans/{plan_id}/console), not the "
        "reference values, and the delivery records them",
    )


class DeliveryOut(BaseModel):
    delivery_id: int
    sequence: int
    delivered_at: str | None
    delivered_by: str | None
    applicator: str
    energy_mev: float | None
    bevel_deg: float | None
    set_time_s: float | None
    given_time_s: float | None
    set_monitor_units: float | None
    given_monitor_units: float | None
    interrupted: bool
    delivered_fraction: float
    cumulative_fraction: float
    remaining_dose_gy: float
    remaining_time_s: float | None
    remaining_monitor_units: float | None
    output_check_id: int | None
    warnings: dict[str, Any]
    note: str | None
    treatment_session: dict[str, Any] | None = Field(
        default=None, description="the conditions of the day and the factors applied"
    )
    session_scale: float | None = Field(
        default=None, description="the day's setting per reference setting"
    )
    checked_time_s: float | None = Field(
        default=None, description="the time the console entry was checked against"
    )
    checked_monitor_units: float | None = Field(
        default=None, description="the monitor units the console entry was checked against"
    )


class VerifyOut(BaseModel):
    plan_id: PlanId
    status: str
    sealed: bool
    seal_ok: bool
