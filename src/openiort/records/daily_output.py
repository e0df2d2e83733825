"""The daily output check a 50 kV delivery needs, and the session of the day it sets.

An x-ray plan made by this release names its source (the sealed delivery's device serial). A
delivery of it looks up that source's latest output check of the day
(:func:`openiort.records.qa.same_day_output_check`): the check must have passed, and its
output factor becomes the factor of the day's session (so the time checked is the time the
console shows after the device's own output correction). Without a check of the day the
delivery is refused, unless a physicist overrides with a reason, which the audit log and the
delivery's warnings keep. Plans stored by earlier releases name no source and are not covered.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from openiort.records.models import Plan, SourceOutputCheck, User
from openiort.records.qa import SAME_DAY, output_factor, same_day_output_check
from openiort.session import SessionError, TreatmentSession, make_session

#: How far an output factor typed in the session may differ from the day's check (the check's
#: factor is stored to full precision; a console form shows three or four decimals).
FACTOR_MATCH = 5e-4
MAX_REASON_CHARS = 500
OVERRIDE_ROLE = "physicist"


@dataclass(frozen=True)
class DailyOutput:
    """What the delivery takes from the day's output check."""

    source: str | None
    check: SourceOutputCheck | None
    override_reason: str | None
    problems: list[str]


def plan_source(plan: Plan) -> str | None:
    """The source an x-ray plan of this release names (serial, else name); None otherwise."""
    if plan.technique != "xray":
        return None
    data = plan.plan_json.get("delivery")
    if not isinstance(data, dict) or not isinstance(data.get("device"), dict):
        return None
    device = data["device"]
    name = device.get("serial") or device.get("name")
    return str(name) if name else None


def daily_output(
    session: Session, actor: User, plan: Plan, when: dt.datetime, override: str | None
) -> DailyOutput:
    """The day's output check for a delivery of ``plan`` at ``when``, or why there is none."""
    source = plan_source(plan)
    if source is None:
        return DailyOutput(None, None, None, [])
    check = same_day_output_check(session, source, "xray", when)
    if check is not None:
        return DailyOutput(source, check, None, [])
    reason = (override or "").strip()
    if not reason:
        hours = SAME_DAY.total_seconds() / 3600
        return DailyOutput(
            source,
            None,
            None,
            [
                f"no output check of source {source} in the {hours:g} h before the delivery: "
                "record the day's output check (QA page, POST /api/qa/output or `iort qa "
                "output`), or a physicist may override with a reason"
            ],
        )
    if actor.role != OVERRIDE_ROLE:
        return DailyOutput(
            source, None, None, ["only a physicist may deliver without the day's output check"]
        )
    if len(reason) > MAX_REASON_CHARS:
        return DailyOutput(
            source, None, None, [f"override reason: at most {MAX_REASON_CHARS} characters"]
        )
    return DailyOutput(source, None, reason, [])


def session_with_output(
    conditions: TreatmentSession | None, check: SourceOutputCheck, when: dt.datetime
) -> tuple[TreatmentSession, list[str]]:
    """The session of the day with the check's output factor; a differing typed factor is a
    problem (the factor is not entered twice, nor two different ones)."""
    factor = output_factor(check)
    if conditions is None:
        try:
            return make_session(when, output_factor=factor), []
        except SessionError as exc:
            return make_session(when), list(exc.problems)
    if conditions.output_factor is None:
        return conditions.model_copy(update={"output_factor": factor}), []
    if abs(conditions.output_factor - factor) > FACTOR_MATCH:
        return conditions, [
            f"daily output factor: entered {conditions.output_factor:.4f}, the day's output "
            f"check {check.id} gives {factor:.4f}: leave it empty to take the check's"
        ]
    return conditions, []


def console_conditions(
    session: Session, plan: Plan, conditions: TreatmentSession
) -> TreatmentSession:
    """The conditions of the day for the console values of ``plan``: without a typed output
    factor, that of its source's output check of the day, when there is one."""
    source = plan_source(plan)
    if source is None or conditions.output_factor is not None:
        return conditions
    check = same_day_output_check(session, source, "xray", conditions.at_utc)
    if check is None or not check.passed:
        return conditions
    return conditions.model_copy(update={"output_factor": output_factor(check)})
