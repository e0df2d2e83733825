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
from openiort.records.daily_output import daily_output, session_with_output
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
from openiort.records.plans import require_current_case
from openiort.records.qa import deviation_pct, get_output_check, within
from openiort.records.sealed_plans import load_plan
from openiort.session import ConsoleValues, SourceNow, TreatmentSession, session_console_values

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
    # A course (HDR): fractions planned, fractions given in full, and time_s is what is left
    # of the fraction due now; fraction_delivered and dose_gy are of the whole course.
    fractions: int = 1
    fractions_done: int = 0


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


def day_settings(
    plan: Plan, session: TreatmentSession, source: SourceNow | None = None
) -> DaySettings:
    """The console values of ``plan`` under the conditions of ``session``, and the setting due.

    ``source`` (HDR): the department's current source record; when it is another source than
    the plan's (an exchange since the plan), the day's times are rescaled to it.

    Raises
    ------
    openiort.session.SessionError
        If the conditions cannot be used with the plan's delivery (one problem per line).
    RecordsValueError
        If the plan has no typed delivery (see :func:`typed_delivery`).
    """
    values = session_console_values(typed_delivery(plan), session, source)
    planned = planned_delivery(plan.plan_json)
    left = _remaining(planned, plan.deliveries)
    main = values.settings[-1] if values.technique == "hdr" else values.settings[0]
    if planned.time_s is not None:
        assert left.time_s is not None
        if plan.deliveries:
            time_s = left.time_s * values.scale
        else:
            time_s = main.today * (SECONDS_PER_MINUTE if main.unit == "min" else 1.0)
        return DaySettings(values, time_s, None, left.time_s, None, _last_interrupted(plan))
    assert left.monitor_units is not None
    # The console sets whole monitor units (the day's values are rounded the same way).
    mu = float(round(left.monitor_units * values.scale)) if plan.deliveries else main.today
    return DaySettings(values, None, mu, None, left.monitor_units, bool(plan.deliveries))


def _last_interrupted(plan: Plan) -> bool:
    """Whether the session due now continues an interrupted one."""
    if not plan.deliveries:
        return False
    return bool(max(plan.deliveries, key=lambda d: d.sequence).interrupted)


def remaining(plan: Plan) -> Remaining:
    """The time, monitor units and prescribed dose not yet delivered for ``plan``."""
    planned = planned_delivery(plan.plan_json)
    return _remaining(planned, plan.deliveries)


def _at_reference(value: float | None, delivery: Delivery) -> float:
    """A time or MU given in a session, at the plan's reference conditions."""
    return (value or 0.0) / (delivery.session_scale or 1.0)


def _course_remaining(planned: PlannedDelivery, deliveries: list[Delivery]) -> Remaining:
    """What is left of a course: each session not interrupted completes the fraction due; the
    sessions of an interrupted fraction add up to it."""
    assert planned.time_s is not None
    per, n = planned.time_s, planned.fractions
    done, partial = 0, 0.0
    for d in sorted(deliveries, key=lambda d: d.sequence):
        if d.interrupted:
            partial += _at_reference(d.given_time_s, d)
            if partial >= per - CONSOLE_TIME_STEP_S / 2:
                done, partial = done + 1, 0.0
        else:
            done, partial = done + 1, 0.0
    complete = done >= n
    fraction = 1.0 if complete else (done * per + partial) / (n * per)
    time_s = 0.0 if complete else per - partial
    dose = planned.prescription_dose_gy * n * max(1.0 - fraction, 0.0)
    return Remaining(fraction, time_s, None, dose, complete, n, min(done, n))


def course_interval_problem(
    planned: PlannedDelivery, deliveries: list[Delivery], when: dt.datetime
) -> str | None:
    """Why a new fraction may not start at ``when``: the course's minimum interval since the
    previous fraction began has not passed (None when it may, or when the fraction due is the
    continuation of an interrupted one). Each fraction's time is that of its conditions of the
    day (its session), which a course's deliveries always carry."""
    if planned.fractions <= 1 or planned.min_interval_h is None or not deliveries:
        return None
    ordered = sorted(deliveries, key=lambda d: d.sequence)
    if ordered[-1].interrupted and _course_remaining(planned, ordered).time_s != planned.time_s:
        return None  # the remainder of an interrupted fraction
    started = _fraction_starts(ordered)[-1]
    gap_h = (when - started).total_seconds() / 3600.0
    if gap_h < planned.min_interval_h:
        return (
            f"fraction interval: {gap_h:.2f} h since the previous fraction began "
            f"({started:%Y-%m-%d %H:%M} UTC); the course requires at least "
            f"{planned.min_interval_h:g} h"
        )
    return None


def _fraction_starts(ordered: list[Delivery]) -> list[dt.datetime]:
    """When each fraction began (its first session)."""
    starts: list[dt.datetime] = []
    new = True
    for d in ordered:
        if new:
            starts.append(_treated_at(d))
        new = not d.interrupted
    return starts


def _treated_at(delivery: Delivery) -> dt.datetime:
    """When a session was given: the time of its conditions of the day (the treatment time the
    console values were computed for), else when it was recorded."""
    at = (delivery.treatment_session or {}).get("at_utc")
    if isinstance(at, str):
        try:
            return dt.datetime.fromisoformat(at).astimezone(dt.UTC)
        except ValueError:
            pass
    return delivery.delivered_at


def _remaining(planned: PlannedDelivery, deliveries: list[Delivery]) -> Remaining:
    if planned.fractions > 1:
        return _course_remaining(planned, deliveries)
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
    dwell_times_s: list[float] | None = None,
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
    dwell_times_s:
        HDR: the dwell times the afterloader shows, one per dwell of the plan in its order
        (zero-time dwells included), each compared with the day's value (or the reference
        value without ``day``) to the afterloader's timer step.

    Returns
    -------
    list of str
        One line per mismatch, naming the setting, the entry and the plan's value; empty when
        everything matches.
    """
    planned = planned_delivery(plan.plan_json)
    left = _remaining(planned, plan.deliveries)
    interrupted_before = _last_interrupted(plan)
    after_interruption = (
        " (the remainder after the interrupted session)" if interrupted_before else ""
    )
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
    if dwell_times_s is not None:
        problems += _dwell_problems(plan, dwell_times_s, day)
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


# An afterloader sets dwell times to 0.1 s (hdr_applicators.yaml dwell_time_resolution_s): an
# entry matches when it lies within half a step of the value due.
DWELL_TIME_TOLERANCE_S = 0.05 + 1e-9


def _dwell_problems(plan: Plan, entered: list[float], day: DaySettings | None) -> list[str]:
    delivery = typed_delivery(plan)
    if not isinstance(delivery, HdrDelivery):
        return ["dwell times: only HDR plans have dwell times"]
    if day is not None:
        due = [x.today for x in day.values.settings if x.name.startswith("dwell ")]
        what = "today"
    else:
        due = [d.time_s for d in delivery.dwells]
        what = "at the reference strength"
    if len(entered) != len(due):
        return [f"dwell times: {len(entered)} entered, the plan has {len(due)} dwells"]
    problems = []
    for i, (value, want) in enumerate(zip(entered, due, strict=True)):
        number = _number(f"dwell {i + 1} time", value)
        d = delivery.dwells[i]
        if number is not None and abs(number - want) > DWELL_TIME_TOLERANCE_S:
            problems.append(
                f"dwell {i + 1} (channel {d.channel}, {d.from_tip_mm or 0:.1f} mm from the tip): "
                f"entered {number:.1f} s, plan requires {want:.1f} s {what}"
            )
    return problems


def _balloon_check_problems(
    plan: Plan, check: dict[str, Any] | None
) -> tuple[list[str], dict[str, Any] | None, list[str]]:
    """Problems and warnings of the pre-fraction balloon check (diameter or volume, skin
    distance) against the plan and the protocol; the check as recorded."""
    from openiort.devices.hdr_source import hdr_protocol

    geometry = plan.plan_json.get("applicator_geometry") or {}
    if geometry.get("type") != "balloon":
        return [], check, []
    if check is None:
        return (
            [
                "balloon check: enter the balloon's diameter (or volume) and its distance "
                "to the skin measured before this fraction"
            ],
            None,
            [],
        )
    quality = hdr_protocol()["balloon_quality"]
    problems: list[str] = []
    warnings: list[str] = []
    skin = _number("balloon check skin_distance_mm", check.get("skin_distance_mm"))
    diameter = _number("balloon check diameter_mm", check.get("diameter_mm"))
    volume = _number("balloon check volume_cc", check.get("volume_cc"))
    if diameter is None and volume is not None:
        diameter = 10.0 * (6.0 * volume / math.pi) ** (1.0 / 3.0)
    if skin is None or diameter is None:
        problems.append("balloon check: the diameter (or volume) and the skin distance are needed")
    else:
        planned = float(geometry.get("diameter_mm", diameter))
        tolerance = float(quality["balloon_check_diameter_tolerance_mm"])
        if abs(diameter - planned) > tolerance:
            problems.append(
                f"balloon check: diameter {diameter:.1f} mm differs from the planned "
                f"{planned:.1f} mm by more than {tolerance:g} mm: re-image and re-plan"
            )
        if skin < float(quality["skin_distance_min_mm"]):
            problems.append(
                f"balloon check: balloon-to-skin distance {skin:.1f} mm is under the protocol "
                f"minimum {quality['skin_distance_min_mm']:g} mm"
            )
        elif skin < float(quality["skin_distance_warn_mm"]):
            warnings.append(
                f"balloon-to-skin distance {skin:.1f} mm is under "
                f"{quality['skin_distance_warn_mm']:g} mm: check the skin dose"
            )
    recorded = {"diameter_mm": diameter, "volume_cc": volume, "skin_distance_mm": skin}
    return problems, recorded, warnings


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
    output_check_override: str | None = None,
    note: str | None = None,
    delivered_at: dt.datetime | None = None,
    key: bytes | None = None,
    conditions: TreatmentSession | None = None,
    dwell_times_s: list[float] | None = None,
    balloon_check: dict[str, Any] | None = None,
    source: SourceNow | None = None,
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
        be less than 24 h old. Without one, an x-ray plan of this release takes its source's
        latest check of the day, whose output factor goes into the session of the day, and is
        refused when there is none (:mod:`openiort.records.daily_output`).
    output_check_override:
        A physicist's reason to deliver an x-ray plan without the day's output check
        (audited, and kept in the delivery's warnings).
    delivered_at:
        When the beam was on (default now).
    key:
        Seal key (default the server's).
    conditions:
        The conditions of the day, the treatment session (date, daily output factor,
        pressure, temperature, fraction). When given, the time or monitor units entered are
        checked against the day's console values (:func:`day_settings`), and the delivery
        records the session, the factors applied and the value it was checked against;
        without it, against the plan's reference values. Required for each fraction of an
        HDR course, whose fraction number it must give.
    dwell_times_s:
        HDR: the dwell times shown by the afterloader (see :func:`check_console`).
    balloon_check:
        HDR balloon course: the check before the fraction, ``diameter_mm`` (or ``volume_cc``)
        and ``skin_distance_mm``; refused beyond the protocol's limits.
    source:
        HDR: the department's current source record (:func:`openiort.session.source_now`).
        When it is another source than the plan's (a source exchange since the plan), the
        day's dwell times are the plan's x S_K(plan reference) / S_K(this source today), and
        conditions of the day are required. The delivery records the source it used (serial,
        certificate strength and reference) in its session.

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
    require_current_case(session, plan)
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
    daily = (
        daily_output(session, actor, plan, when, output_check_override)
        if output_check_id is None
        else None
    )
    daily_problems = list(daily.problems) if daily is not None else []
    if daily is not None and daily.check is not None:
        conditions, mismatch = session_with_output(conditions, daily.check, when)
        daily_problems += mismatch
    day = day_settings(plan, conditions, source) if conditions is not None else None

    problems = check_console(
        plan,
        applicator=applicator,
        time_min=time_min,
        monitor_units=monitor_units,
        energy_mev=energy_mev,
        bevel_deg=bevel_deg,
        day=day,
        dwell_times_s=dwell_times_s,
    )
    course_record: dict[str, Any] = {}
    balloon_warnings: list[str] = []
    used, exchange_problem = _source_used(plan, source, conditions)
    if exchange_problem:
        problems.append(exchange_problem)
    if used is not None:
        course_record["source"] = used
    if planned.fractions > 1:
        due = left.fractions_done + 1
        if conditions is None:
            problems.append(
                f"fraction {due} of {planned.fractions}: enter the conditions of the day (its "
                "date and time, the fraction number): each fraction is recorded with its session"
            )
        elif conditions.fraction != due:
            problems.append(
                f"fraction: entered {conditions.fraction}, the course is at fraction {due} of "
                f"{planned.fractions}"
            )
        starts_at = conditions.at_utc if conditions is not None else when
        interval = course_interval_problem(planned, previous, starts_at)
        if interval:
            problems.append(interval)
        course_record |= {"fraction": due, "fractions": planned.fractions}
    if planned.fractions > 1 or "delivery" in plan.plan_json:
        # Every session of a balloon plan, a single fraction included, is given after the
        # balloon is checked (diameter or volume, skin distance) against the plan and the
        # protocol. Plans stored before deliveries were typed (earlier releases) predate it.
        balloon, recorded, balloon_warnings = _balloon_check_problems(plan, balloon_check)
        problems += balloon
        if recorded is not None:
            course_record["balloon_check"] = recorded
    check: SourceOutputCheck | None = None
    if output_check_id is not None:
        check = get_output_check(session, output_check_id)
        problem = _output_check_problem(check, plan, when)
        if problem:
            problems.append(problem)
    elif daily is not None and daily.check is not None:
        check = daily.check
        problem = _output_check_problem(check, plan, when)
        if problem:
            problems.append(problem)
    problems += daily_problems
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
    total *= planned.fractions
    scale = day.scale if day is not None else 1.0
    fraction = given_value / scale / total
    if not interrupted:
        # The whole remainder was set and given: the plan (or this fraction) is complete.
        if planned.fractions == 1:
            fraction = max(1.0 - left.fraction_delivered, 0.0)
        else:
            assert left.time_s is not None
            fraction = left.time_s / total
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
        # Without conditions of the day a session keeps only its balloon check (and source).
        treatment_session=(
            {**_session_record(day), **course_record}
            if day is not None
            else (course_record if "balloon_check" in course_record else None)
        ),
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
    if daily is not None and daily.override_reason is not None:
        delivery.warnings["output_check"] = (
            f"delivered without the day's output check of source {daily.source}: overridden by "
            f"{actor.username}: {daily.override_reason}"
        )
    if balloon_warnings:
        delivery.warnings["balloon_check"] = "; ".join(balloon_warnings)
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
    # Read before the flush: after a failed flush the session can load nothing.
    plan_id, row_version = plan.id, plan.row_version
    try:
        session.flush()
    except (IntegrityError, StaleDataError):
        # Another console recorded a session of this plan at the same moment.
        raise ConflictError(
            "plan",
            plan_id,
            row_version,
            None,
            None,
            None,
            message=(
                f"another delivery of plan {plan_id} was recorded at the same time; this one "
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
        at=when,  # the beam-on time; the entry also keeps when it was recorded
    )
    if daily is not None and daily.override_reason is not None:
        audit.record(
            session,
            actor,
            "output_check_override",
            "plan",
            plan.id,
            {
                "delivery_id": delivery.id,
                "source": daily.source,
                "reason": daily.override_reason,
            },
        )
    return delivery


def _source_used(
    plan: Plan, source: SourceNow | None, conditions: TreatmentSession | None
) -> tuple[dict[str, Any] | None, str | None]:
    """The source an HDR session's times are for (the plan's, or after an exchange the
    department's current one: serial, certificate S_K and reference), and why a session
    cannot use it (an exchanged source without the conditions of the day)."""
    if plan.technique != "hdr" or "delivery" not in plan.plan_json:
        return None, None
    delivery = typed_delivery(plan)
    if not isinstance(delivery, HdrDelivery):
        return None, None
    if source is not None and source.serial != delivery.device.serial:
        if conditions is None:
            return None, (
                f"source: the afterloader's source is now {source.serial}, not the plan's "
                f"{delivery.device.serial or 'example source'}: enter the conditions of the "
                "day (date and time) so that the dwell times are rescaled to it"
            )
        return {
            "serial": source.serial,
            "air_kerma_strength_u": source.air_kerma_strength_u,
            "reference_utc": source.reference_utc.astimezone(dt.UTC).isoformat(),
            "exchanged_since_plan": True,
        }, None
    return {
        "serial": delivery.device.serial,
        "air_kerma_strength_u": delivery.air_kerma_strength_u,
        "reference_utc": delivery.strength_reference_utc,
        "exchanged_since_plan": False,
    }, None


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
