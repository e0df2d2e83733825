"""Delivery records: console settings checked against the approved plan, interruptions, and
in-vivo dosimetry readings.

Before a delivery is recorded, the values entered at the console (treatment time for x-rays
and HDR, monitor units and energy for electrons, the applicator for all) are compared with the
approved, seal-checked plan; any mismatch refuses the record with a message naming each
setting. An interrupted delivery records what was given; the plan then expects the remainder
(time or monitor units, and the share of the prescription it carries) in a further session,
and is marked delivered once nothing remains.

When the conditions of the day are given (a :class:`openiort.session.TreatmentSession`: daily
output factor, air pressure and temperature, date and time), the entries are checked against
the day's console values (:func:`day_settings`) instead of the reference values, and the
delivery records the session, the factors applied and the corrected time or monitor units it
was checked against. The remaining time and monitor units stay at the reference conditions.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from openiort.delivery import ElectronDelivery, HdrDelivery, XrayDelivery, parse_delivery
from openiort.records import audit
from openiort.records.common import get_row, require_role
from openiort.records.errors import (
    ConflictError,
    DeliveryCheckError,
    LifecycleError,
    NotFoundError,
    RecordsValueError,
)
from openiort.records.models import Delivery, InVivoReading, Plan, SourceOutputCheck, User, utcnow
from openiort.records.plan_data import (
    SECONDS_PER_MINUTE,
    PlannedDelivery,
    format_cm,
    planned_delivery,
    technique_label,
)
from openiort.records.qa import deviation_pct, get_output_check, within
from openiort.records.sealed_plans import load_plan
from openiort.session import ConsoleValues, TreatmentSession, session_console_values

# Consoles set treatment time to the second and monitor units to the unit: an entry matches
# the plan when it rounds to the same console value, i.e. lies within half a step of it.
CONSOLE_TIME_STEP_S = 1.0
CONSOLE_MU_STEP = 1.0
# A daily output check covers deliveries for one day after it.
DAILY_CHECK_VALIDITY = dt.timedelta(hours=24)
# Settings that must match exactly (energy, applicator size, bevel) are compared to this.
_SETTING_EPS = 1e-6
# Console values computed for a time this far from the delivery get a warning on the record.
SESSION_DATE_TOLERANCE = dt.timedelta(hours=12)


@dataclass(frozen=True)
class Remaining:
    """What is left of a plan after the deliveries recorded so far."""

    fraction_delivered: float
    time_s: float | None
    monitor_units: float | None
    dose_gy: float
    complete: bool


def format_time_s(time_s: float) -> str:
    """``mm:ss.s`` as consoles show time, with the seconds: ``10:12.0 (612.0 s)``."""
    minutes, seconds = divmod(time_s, SECONDS_PER_MINUTE)
    return f"{int(minutes)}:{seconds:04.1f} ({time_s:.1f} s)"


@dataclass(frozen=True)
class DaySettings:
    """What the console must be set to under the conditions of one treatment day.

    ``values`` are the day's console values of the whole plan (every factor with its reason);
    ``time_s`` or ``monitor_units`` is the setting due now: the whole plan's today, or after an
    interrupted session the remainder times ``values.scale``.
    """

    values: ConsoleValues
    time_s: float | None
    monitor_units: float | None
    reference_time_s: float | None
    reference_monitor_units: float | None
    after_interruption: bool

    @property
    def scale(self) -> float:
        return self.values.scale


def typed_delivery(plan: Plan) -> XrayDelivery | ElectronDelivery | HdrDelivery:
    """The plan's sealed delivery at the reference conditions.

    Raises
    ------
    RecordsValueError
        If the plan was stored before deliveries were typed (no ``delivery`` block).
    """
    data = plan.plan_json.get("delivery")
    if data is None:
        raise RecordsValueError(
            f"plan {plan.id} was stored by an earlier release of openiort, without a typed "
            "delivery: the conditions of the day cannot be applied to it; its console settings "
            "are those computed at planning"
        )
    try:
        return parse_delivery(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"][1:])
        raise RecordsValueError(f"plan JSON: delivery.{where}: {first['msg']}") from None


def day_settings(plan: Plan, session: TreatmentSession) -> DaySettings:
    """The console values of ``plan`` under the conditions of ``session``, and the setting due.

    Raises
    ------
    openiort.session.SessionError
        If the conditions cannot be used with the plan's delivery (one problem per line).
    RecordsValueError
        If the plan has no typed delivery (see :func:`typed_delivery`).
    """
    values = session_console_values(typed_delivery(plan), session)
    planned = planned_delivery(plan.plan_json)
    left = _remaining(planned, plan.deliveries)
    main = values.settings[-1] if values.technique == "hdr" else values.settings[0]
    if planned.time_s is not None:
        assert left.time_s is not None
        if plan.deliveries:
            time_s = left.time_s * values.scale
        else:
            time_s = main.today * (SECONDS_PER_MINUTE if main.unit == "min" else 1.0)
        return DaySettings(values, time_s, None, left.time_s, None, bool(plan.deliveries))
    assert left.monitor_units is not None
    # The console sets whole monitor units (the day's values are rounded the same way).
    mu = float(round(left.monitor_units * values.scale)) if plan.deliveries else main.today
    return DaySettings(values, None, mu, None, left.monitor_units, bool(plan.deliveries))


def remaining(plan: Plan) -> Remaining:
    """The time, monitor units and prescribed dose not yet delivered for ``plan``."""
    planned = planned_delivery(plan.plan_json)
    return _remaining(planned, plan.deliveries)


def _at_reference(value: float | None, delivery: Delivery) -> float:
    """A time or MU given in a session, at the plan's reference conditions."""
    return (value or 0.0) / (delivery.session_scale or 1.0)


def _remaining(planned: PlannedDelivery, deliveries: list[Delivery]) -> Remaining:
    fraction = math.fsum(d.delivered_fraction for d in deliveries)
    time_s = mu = None
    # A session that was not interrupted gave the whole remainder as set (it was checked).
    whole = any(not d.interrupted for d in deliveries)
    if planned.time_s is not None:
        given = math.fsum(_at_reference(d.given_time_s, d) for d in deliveries)
        time_s = max(planned.time_s - given, 0.0)
        complete = whole or time_s <= CONSOLE_TIME_STEP_S / 2
    else:
        assert planned.monitor_units is not None
        given = math.fsum(_at_reference(d.given_monitor_units, d) for d in deliveries)
        mu = max(planned.monitor_units - given, 0.0)
        complete = whole or mu <= CONSOLE_MU_STEP / 2
    if complete:
        fraction = 1.0
        time_s = 0.0 if time_s is not None else None
        mu = 0.0 if mu is not None else None
    dose = planned.prescription_dose_gy * max(1.0 - fraction, 0.0)
    return Remaining(fraction, time_s, mu, dose, complete)


def _number(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RecordsValueError(f"{name}: must be a number, got {value!r}")
    if value < 0:
        raise RecordsValueError(f"{name}: must not be negative, got {value!r}")
    return float(value)


def _applicator_mismatch(planned: PlannedDelivery, applicator: float | str) -> str | None:
    if planned.applicator_diameter_cm is None:
        entered = str(applicator).strip()
        if entered.casefold() != planned.applicator.casefold():
            return f"applicator: entered {entered!r}, plan requires {planned.applicator!r}"
        return None
    try:
        text = str(applicator).strip().removesuffix("cm").strip()
        diameter = float(applicator) if isinstance(applicator, int | float) else float(text)
    except ValueError:
        return f"applicator: entered {applicator!r}, plan requires {planned.applicator}"
    if abs(diameter - planned.applicator_diameter_cm) > _SETTING_EPS:
        return f"applicator: entered {format_cm(diameter)}, plan requires {planned.applicator}"
    return None


def check_console(
    plan: Plan,
    *,
    applicator: float | str,
    time_min: float | None = None,
    monitor_units: float | None = None,
    energy_mev: float | None = None,
    bevel_deg: float | None = None,
    day: DaySettings | None = None,
) -> list[str]:
    """Mismatches between console entries and what ``plan`` requires next.

    Parameters
    ----------
    plan:
        An approved plan (its earlier deliveries, if interrupted, reduce what is required).
    applicator:
        Diameter in cm (a number, or text such as ``"4.5"`` or ``"4.5 cm"``) for x-ray and
        electron plans; the applicator's name for HDR plans.
    time_min:
        Treatment time set, in minutes (x-ray and HDR plans).
    monitor_units, energy_mev, bevel_deg:
        Electron plans; the bevel is compared when entered.
    day:
        The conditions of the day (:func:`day_settings`): the time or monitor units are then
        checked against the day's values instead of the reference values.

    Returns
    -------
    list of str
        One line per mismatch, naming the setting, the entry and the plan's value; empty when
        everything matches.
    """
    planned = planned_delivery(plan.plan_json)
    left = _remaining(planned, plan.deliveries)
    after_interruption = " (the remainder after the interrupted session)" if plan.deliveries else ""
    required_time_s, required_mu = left.time_s, left.monitor_units
    if day is not None:
        required_time_s, required_mu = day.time_s, day.monitor_units
        reference = (
            format_time_s(left.time_s) if left.time_s is not None else f"{left.monitor_units:g} MU"
        )
        after_interruption = (
            f" today ({reference} at the reference conditions x {day.scale:.5f} for the "
            "conditions of the day)" + after_interruption
        )
    problems: list[str] = []
    bad_applicator = _applicator_mismatch(planned, applicator)
    if bad_applicator:
        problems.append(bad_applicator)
    time_s = None if time_min is None else _number("time_min", time_min)
    mu = _number("monitor_units", monitor_units)
    energy = _number("energy_mev", energy_mev)
    bevel = _number("bevel_deg", bevel_deg)
    if planned.time_s is not None:
        assert required_time_s is not None
        if mu is not None:
            problems.append(
                f"monitor units: {technique_label(planned.technique)} plans are delivered by time, "
                "not monitor units"
            )
        if time_s is None:
            problems.append(
                f"treatment time: not entered; plan requires {format_time_s(required_time_s)}"
                + after_interruption
            )
        else:
            time_s *= SECONDS_PER_MINUTE
            if abs(time_s - required_time_s) > CONSOLE_TIME_STEP_S / 2:
                problems.append(
                    f"treatment time: entered {format_time_s(time_s)}, plan requires "
                    f"{format_time_s(required_time_s)}" + after_interruption
                )
        if energy is not None:
            problems.append(
                f"energy: {technique_label(planned.technique)} plans have no energy setting"
            )
    else:
        assert required_mu is not None
        if time_s is not None:
            problems.append(
                "treatment time: electron plans are delivered by monitor units, not time"
            )
        if mu is None:
            problems.append(
                f"monitor units: not entered; plan requires {required_mu:g} MU" + after_interruption
            )
        elif abs(mu - required_mu) > CONSOLE_MU_STEP / 2:
            problems.append(
                f"monitor units: entered {mu:g} MU, plan requires {required_mu:g} MU"
                + after_interruption
            )
        assert planned.energy_mev is not None
        if energy is None:
            problems.append(f"energy: not entered; plan requires {planned.energy_mev:g} MeV")
        elif abs(energy - planned.energy_mev) > _SETTING_EPS:
            problems.append(
                f"energy: entered {energy:g} MeV, plan requires {planned.energy_mev:g} MeV"
            )
        if (
            bevel is not None
            and planned.bevel_deg is not None
            and abs(bevel - planned.bevel_deg) > _SETTING_EPS
        ):
            problems.append(
                f"bevel: entered {bevel:g} degrees, plan requires {planned.bevel_deg:g} degrees"
            )
    return problems


def _output_check_problem(
    check: SourceOutputCheck, plan: Plan, delivered_at: dt.datetime
) -> str | None:
    if check.technique != plan.technique:
        return (
            f"output check {check.id} is of the {technique_label(check.technique)} source, "
            f"but the plan is {technique_label(plan.technique)}"
        )
    if not check.passed:
        return (
            f"output check {check.id} failed (deviation {check.deviation_pct:+.2f} % beyond "
            f"±{check.tolerance_pct:g} %): the source may not be used until it passes"
        )
    age = delivered_at - check.performed_at
    if age < dt.timedelta(0):
        return f"output check {check.id} was performed after the delivery time"
    if age > DAILY_CHECK_VALIDITY:
        return (
            f"output check {check.id} is {age.total_seconds() / 3600:.1f} h old; a daily check "
            f"covers {DAILY_CHECK_VALIDITY.total_seconds() / 3600:g} h"
        )
    return None


def record_delivery(
    session: Session,
    actor: User,
    plan_id: int,
    *,
    applicator: float | str,
    time_min: float | None = None,
    monitor_units: float | None = None,
    energy_mev: float | None = None,
    bevel_deg: float | None = None,
    interrupted: bool = False,
    given_time_min: float | None = None,
    given_monitor_units: float | None = None,
    output_check_id: int | None = None,
    note: str | None = None,
    delivered_at: dt.datetime | None = None,
    key: bytes | None = None,
    conditions: TreatmentSession | None = None,
) -> Delivery:
    """Record a delivery of an approved plan after checking the console entries against it.

    Parameters
    ----------
    plan_id:
        The approved plan delivered; its seal is checked first.
    applicator, time_min, monitor_units, energy_mev, bevel_deg:
        Values entered at the console (see :func:`check_console`).
    interrupted:
        The beam stopped before the set time or monitor units were given.
    given_time_min, given_monitor_units:
        What was actually given when ``interrupted`` (required then).
    output_check_id:
        The day's source output check; it must have passed, be of the plan's technique and
        be less than 24 h old. Without one the delivery is recorded with a warning.
    delivered_at:
        When the beam was on (default now).
    key:
        Seal key (default the server's).
    conditions:
        The conditions of the day, the treatment session (date, daily output factor,
        pressure, temperature, fraction). When given, the time or monitor units entered are
        checked against the day's console values (:func:`day_settings`), and the delivery
        records the session, the factors applied and the value it was checked against;
        without it, against the plan's reference values.

    Returns
    -------
    Delivery
        With the delivered fraction and what remains; the plan becomes ``delivered`` when
        nothing remains.

    Raises
    ------
    DeliveryCheckError
        If a console entry or the output check does not match; nothing is recorded except a
        ``delivery_refused`` audit entry.
    openiort.session.SessionError
        If the conditions of the day cannot be used with the plan's delivery.
    RecordsValueError
        If conditions are given for a plan stored without a typed delivery.
    LifecycleError
        If the plan is not approved, or a newer version of it has been approved.
    TamperedPlanError
        If the plan fails its seal check.
    """
    require_role(actor, "delivery.record")
    get_row(session, Plan, plan_id, "plan", lock=True)
    plan = load_plan(session, plan_id, actor=actor, key=key)
    if plan.status != "approved":
        why = "it has already been delivered" if plan.status == "delivered" else "approve it first"
        raise LifecycleError(
            f"plan {plan.id} (version {plan.version_number}) is {plan.status}: only an approved "
            f"plan can be delivered; {why}"
        )
    newer = session.scalars(
        select(Plan).where(
            Plan.case_id == plan.case_id,
            Plan.version_number > plan.version_number,
            Plan.status.in_(("approved", "delivered")),
        )
    ).first()
    if newer is not None:
        raise LifecycleError(
            f"plan {plan.id} (version {plan.version_number}) is superseded by approved version "
            f"{newer.version_number} (plan {newer.id}); deliver that one"
        )
    if remaining(plan).complete:
        raise LifecycleError(
            f"plan {plan.id} (version {plan.version_number}) has already been delivered in full "
            f"({len(plan.deliveries)} recorded session(s)); its status is inconsistent: "
            "report this to the physicist in charge"
        )
    when = delivered_at or utcnow()
    if when.tzinfo is None:
        raise RecordsValueError("delivered_at: must be timezone-aware")
    planned = planned_delivery(plan.plan_json)
    previous = list(plan.deliveries)
    left = _remaining(planned, previous)
    day = day_settings(plan, conditions) if conditions is not None else None

    problems = check_console(
        plan,
        applicator=applicator,
        time_min=time_min,
        monitor_units=monitor_units,
        energy_mev=energy_mev,
        bevel_deg=bevel_deg,
        day=day,
    )
    check: SourceOutputCheck | None = None
    if output_check_id is not None:
        check = get_output_check(session, output_check_id)
        problem = _output_check_problem(check, plan, when)
        if problem:
            problems.append(problem)
    if problems:
        audit.record_independently(
            session, actor, "delivery_refused", "plan", plan.id, {"mismatches": problems}
        )
        raise DeliveryCheckError(plan.id, problems)

    by_time = planned.time_s is not None
    unit = "time" if by_time else "monitor units"
    # check_console has made sure the setting for this technique was entered.
    set_value = float(time_min) * SECONDS_PER_MINUTE if by_time else float(monitor_units)  # type: ignore[arg-type]
    step = CONSOLE_TIME_STEP_S if by_time else CONSOLE_MU_STEP
    given_entry = given_time_min if by_time else given_monitor_units
    wrong_kind = given_monitor_units if by_time else given_time_min
    if wrong_kind is not None:
        raise RecordsValueError(
            f"given: this plan is delivered by {unit}; enter "
            f"{'given_time_min' if by_time else 'given_monitor_units'}"
        )
    given_value = _number("given", given_entry)
    if given_value is not None and by_time:
        given_value *= SECONDS_PER_MINUTE
    if interrupted:
        if given_value is None:
            raise RecordsValueError(
                f"interrupted delivery: enter the {unit} actually given "
                f"({'given_time_min' if by_time else 'given_monitor_units'})"
            )
        if given_value >= set_value - step / 2:
            raise RecordsValueError(
                f"interrupted delivery: the {unit} given must be less than the {unit} set; "
                "if the whole setting was given the delivery was not interrupted"
            )
    else:
        if given_value is not None and abs(given_value - set_value) > step / 2:
            raise RecordsValueError(
                f"the {unit} given differs from the {unit} set: if the beam stopped early, "
                "record the delivery as interrupted"
            )
        given_value = set_value

    total = planned.time_s if by_time else planned.monitor_units
    assert total is not None
    scale = day.scale if day is not None else 1.0
    fraction = given_value / scale / total
    if not interrupted:
        # The whole remainder was set and given: the plan is complete.
        fraction = max(1.0 - left.fraction_delivered, 0.0)
    delivery = Delivery(
        sequence=len(previous) + 1,
        delivered_at=when,
        delivered_by_id=actor.id,
        applicator=planned.applicator,
        energy_mev=planned.energy_mev,
        bevel_deg=_number("bevel_deg", bevel_deg),
        set_time_s=set_value if by_time else None,
        given_time_s=given_value if by_time else None,
        set_monitor_units=None if by_time else set_value,
        given_monitor_units=None if by_time else given_value,
        interrupted=interrupted,
        delivered_fraction=fraction,
        cumulative_fraction=0.0,
        remaining_dose_gy=0.0,
        output_check_id=check.id if check is not None else None,
        warnings={},
        note=note,
        treatment_session=_session_record(day) if day is not None else None,
        session_scale=day.scale if day is not None else None,
        checked_time_s=(day.time_s if day is not None else left.time_s) if by_time else None,
        checked_monitor_units=None
        if by_time
        else (day.monitor_units if day is not None else left.monitor_units),
    )
    after = _remaining(planned, [*previous, delivery])
    delivery.cumulative_fraction = after.fraction_delivered
    delivery.remaining_dose_gy = after.dose_gy
    delivery.remaining_time_s = after.time_s
    delivery.remaining_monitor_units = after.monitor_units
    delivery.warnings = _warnings(plan, planned, check, after)
    if day is not None and abs(when - day.values.session.at_utc) > SESSION_DATE_TOLERANCE:
        delivery.warnings["session_date"] = (
            "the console values were computed for "
            f"{day.values.session.at_utc.strftime('%Y-%m-%d %H:%M')} UTC, "
            f"{abs(when - day.values.session.at_utc).total_seconds() / 3600:.1f} h from the "
            "delivery: check that the conditions entered are this day's"
        )
    # Attached last: a pending Delivery must not be flushed half-filled by an autoflush.
    delivery.plan = plan
    session.add(delivery)
    if after.complete:
        plan.status = "delivered"
        plan.delivered_at = when
    try:
        session.flush()
    except (IntegrityError, StaleDataError):
        # Another console recorded a session of this plan at the same moment.
        raise ConflictError(
            "plan",
            plan.id,
            plan.row_version,
            None,
            None,
            None,
            message=(
                f"another delivery of plan {plan.id} was recorded at the same time; this one "
                "was not saved: reload the plan to see what remains"
            ),
        ) from None
    audit.record(
        session,
        actor,
        "deliver_interrupted" if interrupted else "deliver",
        "plan",
        plan.id,
        {
            "delivery_id": delivery.id,
            "sequence": delivery.sequence,
            "delivered_fraction": round(fraction, 6),
            "cumulative_fraction": round(after.fraction_delivered, 6),
            "remaining_dose_gy": round(after.dose_gy, 4),
            "status": plan.status,
            "output_check_id": delivery.output_check_id,
            **({} if day is None else {"session_scale": round(day.scale, 6)}),
        },
    )
    return delivery


def _session_record(day: DaySettings) -> dict[str, Any]:
    """What a delivery keeps of the conditions of the day: the session and every factor."""
    values = day.values.model_dump(mode="json")
    return {
        **values["session"],
        "technique": values["technique"],
        "factors": values["factors"],
        "warnings": values["warnings"],
        "scale": values["scale"],
    }


def _warnings(
    plan: Plan,
    planned: PlannedDelivery,
    check: SourceOutputCheck | None,
    after: Remaining,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if check is None:
        out["output_check"] = "no daily output check was linked to this delivery"
    if plan.case_version is not None and plan.case.version != plan.case_version:
        out["case_changed"] = (
            f"the case was edited (version {plan.case_version} -> {plan.case.version}) after "
            "this plan was computed; confirm that the plan still applies"
        )
    if planned.technique == "hdr" and not after.complete:
        out["remaining_dose"] = (
            "for HDR the remaining dose is the prescription times the remaining share of the "
            "total dwell time; it holds at the prescription points only when the afterloader "
            "resumes the same dwell sequence"
        )
    return out


def list_deliveries(session: Session, plan_id: int) -> list[Delivery]:
    """The plan's deliveries, in order."""
    return list(
        session.scalars(
            select(Delivery).where(Delivery.plan_id == plan_id).order_by(Delivery.sequence)
        )
    )


def record_invivo_reading(
    session: Session,
    actor: User,
    delivery_id: int,
    *,
    detector: str,
    position: str,
    measured_dose_gy: float,
    expected_dose_gy: float,
    tolerance_pct: float,
    note: str | None = None,
) -> InVivoReading:
    """Attach an in-vivo dosimetry reading to a delivery.

    Parameters
    ----------
    detector:
        Detector kind and id (for example ``"MOSFET 3"``, ``"TLD batch 12"``, ``"film"``).
    position:
        Where it sat (for example ``"skin, 10 mm from the applicator"``); no patient names.
    measured_dose_gy, expected_dose_gy:
        The reading and the dose the plan predicts at that position.
    tolerance_pct:
        The department's action limit for this detector and position, in percent.
    """
    require_role(actor, "delivery.record")
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        raise NotFoundError(f"delivery {delivery_id} does not exist")
    for name, text, limit in (("detector", detector, 60), ("position", position, 100)):
        if not isinstance(text, str) or not text.strip():
            raise RecordsValueError(f"{name}: required")
        if len(text) > limit:
            raise RecordsValueError(f"{name}: at most {limit} characters")
    measured = _number("measured_dose_gy", measured_dose_gy)
    expected = _number("expected_dose_gy", expected_dose_gy)
    tol = _number("tolerance_pct", tolerance_pct)
    assert measured is not None and expected is not None and tol is not None
    if expected <= 0:
        raise RecordsValueError("expected_dose_gy: must be positive")
    if not 0 < tol <= 100:
        raise RecordsValueError("tolerance_pct: must be in (0, 100]")
    dev = deviation_pct(measured, expected)
    reading = InVivoReading(
        delivery_id=delivery.id,
        detector=detector.strip(),
        position=position.strip(),
        measured_dose_gy=measured,
        expected_dose_gy=expected,
        deviation_pct=dev,
        tolerance_pct=tol,
        passed=within(dev, tol),
        recorded_by_id=actor.id,
        note=note,
    )
    session.add(reading)
    session.flush()
    audit.record(
        session,
        actor,
        "create",
        "invivo_reading",
        reading.id,
        {
            "delivery_id": delivery.id,
            "deviation_pct": round(dev, 3),
            "tolerance_pct": tol,
            "passed": reading.passed,
        },
    )
    return reading
