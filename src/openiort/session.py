"""The conditions of one treatment day, and the console values they give for a sealed delivery.

The sealed delivery holds the console settings at the device's reference conditions. On the day
of treatment the physicist enters what the day brings: the daily output factor from that day's
QA record, the air pressure and temperature where the monitor chamber is open to air, the date
and time (source decay), the fraction number of a course. :func:`console_values` derives the
values the console should show, with every factor applied and why; the plan never changes.

Which system applies what (nothing is corrected twice):

- x-rays: the time is divided by the day's output factor (measured / reference output). The
  device's own output calibration is the reference the plan was made at; enter the factor only
  when the console does not already apply the day's output.
- electrons: the monitor units scale with the monitor chamber's air correction in the machine's
  own mode (sealed: none; pressure: P / P_ref; pressure and temperature: P / P_ref x T_ref / T in
  kelvin) and are divided by the day's output factor. When the day's output factor comes from
  an output check made at that day's air, enter the factor and no pressure: the check already
  holds the air correction. A machine whose mode is ``daily_output_check`` always takes the
  day's output factor; the air is corrected only for its change since that check (P / P_check,
  T_check / T), never against the calibration's reference air.
- HDR: the dwell times are those the afterloader shows after its own decay correction: planned
  time x S_K(reference) / S_K(today). The afterloader applies the decay itself; the values here
  are for checking its console, not for entering a second correction.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from openiort.delivery import ElectronDelivery, HdrDelivery, XrayDelivery
from openiort.devices.monitor_chamber import air_density_factor
from openiort.errors import OpenIortInputError

if TYPE_CHECKING:
    from openiort.devices.hdr_source import HdrSourceRecord

# Plausible ranges of what is typed at the console; outside them a unit slip is likelier than
# the weather. Station pressure, not sea-level equivalent: the highest operating theatres stand
# near 4000 m, about 620 hPa.
PRESSURE_RANGE_HPA = (600.0, 1100.0)
TEMPERATURE_RANGE_C = (10.0, 40.0)  # an operating room (the example machine's data use the same)
OUTPUT_FACTOR_RANGE = (0.8, 1.2)  # a daily output this far off stops treatment anyway
MIN_SOURCE_DECAY = 1e-3  # about ten half-lives: a date this far from the calibration is a slip


class SessionError(OpenIortInputError):
    """Conditions of the day that cannot be used with this delivery."""


class TreatmentSession(BaseModel):
    """What one treatment day brings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at_utc: dt.datetime = Field(description="date and time of the treatment (UTC)")
    output_factor: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = Field(
        None, description="day's output / reference output, from that day's QA record"
    )
    pressure_hpa: Annotated[float, Field(allow_inf_nan=False)] | None = None
    temperature_c: Annotated[float, Field(allow_inf_nan=False)] | None = None
    output_check_pressure_hpa: Annotated[float, Field(allow_inf_nan=False)] | None = Field(
        None,
        description="air pressure when the day's output was measured (machines whose day's "
        "output comes from the daily output check)",
    )
    output_check_temperature_c: Annotated[float, Field(allow_inf_nan=False)] | None = None
    fraction: Annotated[int, Field(ge=1)] = 1

    @field_validator("at_utc")
    @classmethod
    def _aware(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            raise ValueError("give the time with its time zone (e.g. 2026-12-07T09:30+01:00)")
        return value.astimezone(dt.UTC)


class ConsoleFactor(BaseModel):
    """One factor applied to the planned values, and why."""

    model_config = ConfigDict(frozen=True)

    name: str
    value: float
    reason: str


class ConsoleSetting(BaseModel):
    """One console setting: planned (reference conditions) and for today."""

    model_config = ConfigDict(frozen=True)

    name: str
    unit: str
    planned: float
    today: float


class ConsoleValues(BaseModel):
    """The day's console values of a sealed delivery."""

    model_config = ConfigDict(frozen=True)

    technique: str
    session: TreatmentSession
    settings: list[ConsoleSetting]
    factors: list[ConsoleFactor]
    warnings: list[str]
    scale: float = Field(
        1.0,
        description="today's time or monitor units per planned (reference) time or monitor "
        "units, before the console's rounding: what the remainder of an interrupted session "
        "is multiplied by",
    )
    strength_today_u: float | None = Field(
        None, description="HDR: the source's air-kerma strength decayed to the session (U)"
    )


def _in_range(value: float, bounds: tuple[float, float], what: str, unit: str) -> float:
    lo, hi = bounds
    if not (math.isfinite(value) and lo <= value <= hi):
        raise SessionError(
            f"{what} {value:g} {unit} is outside the plausible range {lo:g}-{hi:g} {unit}",
            source="session",
        )
    return value


def _output_factor(session: TreatmentSession, warnings: list[str]) -> ConsoleFactor:
    if session.output_factor is None:
        warnings.append("no daily output factor entered: the reference output is assumed")
        return ConsoleFactor(name="daily output", value=1.0, reason="none entered (1 assumed)")
    value = _in_range(session.output_factor, OUTPUT_FACTOR_RANGE, "daily output factor", "")
    return ConsoleFactor(name="daily output", value=value, reason="day's QA record")


def _xray(delivery: XrayDelivery, session: TreatmentSession) -> ConsoleValues:
    warnings: list[str] = []
    output = _output_factor(session, warnings)
    if session.pressure_hpa is not None or session.temperature_c is not None:
        raise SessionError(
            "pressure and temperature are not console inputs for the 50 kV source: they belong "
            "to the daily output check, whose factor is entered instead",
            source="session",
        )
    time_min = delivery.treatment_time_min / output.value
    return ConsoleValues(
        technique="xray",
        session=session,
        settings=[
            ConsoleSetting(
                name="treatment time",
                unit="min",
                planned=delivery.treatment_time_min,
                today=time_min,
            )
        ],
        factors=[output],
        warnings=warnings,
        scale=1.0 / output.value,
    )


def air_correction(delivery: ElectronDelivery, session: TreatmentSession) -> ConsoleFactor:
    """The monitor chamber's air correction of the day, in the machine's own mode."""
    mode = delivery.chamber_correction_mode
    if mode != "daily_output_check" and (
        session.output_check_pressure_hpa is not None
        or session.output_check_temperature_c is not None
    ):
        raise SessionError(
            f"{delivery.device.name}: the conditions of the output check apply to machines "
            "whose day's output comes from the daily output check, not to this one "
            f"({mode.replace('_', ' ')})",
            source="session",
        )
    if mode == "daily_output_check":
        return _since_output_check(delivery, session)
    if mode == "sealed":
        if session.pressure_hpa is not None or session.temperature_c is not None:
            raise SessionError(
                f"{delivery.device.name}: the monitor chamber is sealed; it takes no pressure "
                "or temperature",
                source="session",
            )
        return ConsoleFactor(name="air (monitor chamber)", value=1.0, reason="sealed chamber")
    if session.pressure_hpa is None:
        if session.output_factor is not None:
            # The day's output check was made at the day's air: it holds the correction.
            return ConsoleFactor(
                name="air (monitor chamber)",
                value=1.0,
                reason="in the day's output factor (measured at the day's air)",
            )
        raise SessionError(
            f"{delivery.device.name}: the monitor chamber is open to air; give the day's "
            "pressure (--pressure-hpa) or the output factor of a check made today",
            source="session",
        )
    if session.output_factor is not None:
        raise SessionError(
            "give either the day's pressure or the output factor of a check made at the day's "
            "air, not both: the air would be corrected twice",
            source="session",
        )
    reference_p = delivery.reference_pressure_hpa
    if reference_p is None:
        raise SessionError(f"{delivery.device.name}: no reference pressure in the machine data")
    p = _in_range(session.pressure_hpa, PRESSURE_RANGE_HPA, "air pressure", "hPa")
    reason = f"P / P_ref = {p:g} / {reference_p:g} hPa"
    t: float | None = None
    if mode == "pressure_temperature":
        if session.temperature_c is None or delivery.reference_temperature_c is None:
            raise SessionError(
                f"{delivery.device.name}: the monitor chamber is corrected for temperature; "
                "give the day's temperature (--temperature-c)",
                source="session",
            )
        t = _in_range(session.temperature_c, TEMPERATURE_RANGE_C, "temperature", "degC")
        t_ref = delivery.reference_temperature_c
        reason += f" x T_ref / T = ({t_ref:g} + 273.15) / ({t:g} + 273.15)"
    elif session.temperature_c is not None:
        raise SessionError(
            f"{delivery.device.name}: the machine's worksheet corrects pressure only; "
            "leave out the temperature",
            source="session",
        )
    factor = air_density_factor(p, reference_p, t, delivery.reference_temperature_c)
    return ConsoleFactor(name="air (monitor chamber)", value=factor, reason=reason)


def _since_output_check(delivery: ElectronDelivery, session: TreatmentSession) -> ConsoleFactor:
    """The air correction of a machine whose day's output comes from the daily output check.

    The day's output factor, measured before treatment, already holds the air of that moment;
    only a change of air between the check and the treatment is corrected (P / P_check and,
    when both temperatures are given, T_check / T in kelvin). Never the reference air again.
    """
    name = delivery.device.name
    if session.output_factor is None:
        raise SessionError(
            f"{name}: the day's output comes from the daily output check; give its output factor "
            "(--output-factor)",
            source="session",
        )
    now_p, check_p = session.pressure_hpa, session.output_check_pressure_hpa
    now_t, check_t = session.temperature_c, session.output_check_temperature_c
    if now_p is None and check_p is None:
        if now_t is not None or check_t is not None:
            raise SessionError(
                f"{name}: a temperature needs the pressures of the check and of now",
                source="session",
            )
        return ConsoleFactor(
            name="air (monitor chamber)",
            value=1.0,
            reason="as at the day's output check (its factor holds the air)",
        )
    if now_p is None or check_p is None:
        raise SessionError(
            f"{name}: give both the pressure now (--pressure-hpa) and at the day's output check "
            "(--check-pressure-hpa), or neither",
            source="session",
        )
    p = _in_range(now_p, PRESSURE_RANGE_HPA, "air pressure", "hPa")
    p_check = _in_range(check_p, PRESSURE_RANGE_HPA, "air pressure at the output check", "hPa")
    reason = f"P / P_check = {p:g} / {p_check:g} hPa"
    if (now_t is None) != (check_t is None):
        raise SessionError(
            f"{name}: give the temperature now and at the output check, or neither",
            source="session",
        )
    if now_t is not None and check_t is not None:
        now_t = _in_range(now_t, TEMPERATURE_RANGE_C, "temperature", "degC")
        check_t = _in_range(check_t, TEMPERATURE_RANGE_C, "temperature at the output check", "degC")
        reason += f" x T_check / T = ({check_t:g} + 273.15) / ({now_t:g} + 273.15)"
    factor = air_density_factor(p, p_check, now_t, check_t)
    return ConsoleFactor(name="air since the output check", value=factor, reason=reason)


def _electron(delivery: ElectronDelivery, session: TreatmentSession) -> ConsoleValues:
    warnings: list[str] = []
    air = air_correction(delivery, session)
    output = _output_factor(session, warnings) if session.output_factor is not None else None
    reference_mu = delivery.monitor_units_exact / delivery.chamber_correction_factor
    exact = reference_mu * air.value / (output.value if output else 1.0)
    factors = [air] + ([output] if output else [])
    scale = exact / delivery.monitor_units_exact
    return ConsoleValues(
        technique="electron",
        session=session,
        settings=[
            ConsoleSetting(
                name="monitor units",
                unit="MU",
                planned=float(delivery.monitor_units),
                today=float(round(exact)),
            )
        ],
        factors=factors,
        warnings=warnings,
        scale=scale,
    )


class SourceNow(BaseModel):
    """The source in the afterloader on the day, from the department's current source record:
    after a source exchange, the fractions of a course are rescaled to it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    serial: str
    air_kerma_strength_u: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    reference_utc: dt.datetime


def source_now(record: HdrSourceRecord) -> SourceNow:
    """The department's current source record as the session's source (after an exchange)."""
    return SourceNow(
        serial=record.source_serial,
        air_kerma_strength_u=record.certificate_sk_u,
        reference_utc=record.certificate_reference_utc,
    )


def _exchange(
    delivery: HdrDelivery, session: TreatmentSession, half_life_d: float, source: SourceNow
) -> ConsoleFactor:
    """S_K of the new source today over S_K of the plan's source at its reference."""
    days = (session.at_utc - source.reference_utc.astimezone(dt.UTC)).total_seconds() / 86400.0
    if days < 0:
        raise SessionError(
            f"the treatment is before the certificate reference of source {source.serial}",
            source="session",
        )
    today = source.air_kerma_strength_u * math.exp(-math.log(2.0) * days / half_life_d)
    return ConsoleFactor(
        name="source exchange and decay",
        value=today / delivery.air_kerma_strength_u,
        reason=f"S_K today of source {source.serial} ({today:.1f} U, {days:.3f} d after its "
        f"certificate) / S_K of the plan ({delivery.air_kerma_strength_u:g} U, source "
        f"{delivery.device.serial or 'of the plan'})",
    )


def _hdr(
    delivery: HdrDelivery,
    session: TreatmentSession,
    half_life_d: float,
    source: SourceNow | None = None,
) -> ConsoleValues:
    warnings: list[str] = []
    if session.output_factor is not None or session.pressure_hpa is not None:
        raise SessionError(
            "an HDR session takes the date and time only (the source's decay); output and air "
            "belong to the well-chamber check of the source",
            source="session",
        )
    if source is not None and source.serial != delivery.device.serial:
        decay = _exchange(delivery, session, half_life_d, source)
        warnings.append(
            f"source exchanged since the plan (plan: {delivery.device.serial or 'example'}, "
            f"now: {source.serial}): the dwell times are rescaled to the new source"
        )
    elif delivery.strength_reference_utc is None:
        warnings.append(
            "the source has no calibration date (example source): decay not applied; load the "
            "department's source record"
        )
        decay = ConsoleFactor(name="source decay", value=1.0, reason="no calibration date")
    else:
        reference = dt.datetime.fromisoformat(delivery.strength_reference_utc)
        days = (session.at_utc - reference.astimezone(dt.UTC)).total_seconds() / 86400.0
        if days < 0:
            raise SessionError(
                "the treatment is before the source's calibration date", source="session"
            )
        remaining = math.exp(-math.log(2.0) * days / half_life_d)
        if remaining < MIN_SOURCE_DECAY:
            raise SessionError(
                f"the treatment is {days:.0f} d after the source's calibration date: no "
                "source in use decays this far; load the current source's record",
                source="session",
            )
        decay = ConsoleFactor(
            name="source decay",
            value=remaining,
            reason=f"S_K today / S_K reference after {days:.3f} d (half-life {half_life_d:g} d)",
        )
    settings = [
        ConsoleSetting(
            name=f"dwell {i + 1} (channel {d.channel}"
            + ("" if d.from_tip_mm is None else f", {d.from_tip_mm:.1f} mm from tip")
            + ")",
            unit="s",
            planned=d.time_s,
            today=d.time_s / decay.value,
        )
        for i, d in enumerate(delivery.dwells)
    ]
    settings.append(
        ConsoleSetting(
            name="total time",
            unit="s",
            planned=delivery.total_time_s,
            today=delivery.total_time_s / decay.value,
        )
    )
    return ConsoleValues(
        technique="hdr",
        session=session,
        settings=settings,
        factors=[decay],
        warnings=warnings,
        scale=1.0 / decay.value,
        strength_today_u=delivery.air_kerma_strength_u * decay.value,
    )


def console_values(
    delivery: XrayDelivery | ElectronDelivery | HdrDelivery,
    session: TreatmentSession,
    *,
    half_life_d: float | None = None,
    source: SourceNow | None = None,
) -> ConsoleValues:
    """The day's console values of ``delivery`` under ``session`` (HDR needs the half-life;
    ``source``: the afterloader's current source when it differs from the plan's)."""
    if isinstance(delivery, XrayDelivery):
        return _xray(delivery, session)
    if isinstance(delivery, ElectronDelivery):
        return _electron(delivery, session)
    if half_life_d is None:
        raise SessionError("the source's half-life is needed for an HDR session")
    return _hdr(delivery, session, half_life_d, source)


def make_session(
    at_utc: dt.datetime,
    *,
    output_factor: float | None = None,
    pressure_hpa: float | None = None,
    temperature_c: float | None = None,
    fraction: int = 1,
    output_check_pressure_hpa: float | None = None,
    output_check_temperature_c: float | None = None,
) -> TreatmentSession:
    """A :class:`TreatmentSession`; every value it refuses is one problem of a SessionError."""
    try:
        return TreatmentSession(
            at_utc=at_utc,
            output_factor=output_factor,
            pressure_hpa=pressure_hpa,
            temperature_c=temperature_c,
            fraction=fraction,
            output_check_pressure_hpa=output_check_pressure_hpa,
            output_check_temperature_c=output_check_temperature_c,
        )
    except ValidationError as exc:
        problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise SessionError(*problems, source="session") from None
    except OverflowError:  # a time at the calendar's ends, moved into UTC
        raise SessionError("at_utc: outside the calendar in UTC", source="session") from None


def session_console_values(
    delivery: XrayDelivery | ElectronDelivery | HdrDelivery,
    session: TreatmentSession,
    source: SourceNow | None = None,
) -> ConsoleValues:
    """:func:`console_values` with the half-life of the delivery's source (Ir-192 for HDR)."""
    half_life = None
    if isinstance(delivery, HdrDelivery):
        from openiort.devices.hdr import ir192_half_life_d

        half_life = ir192_half_life_d()
    return console_values(delivery, session, half_life_d=half_life, source=source)
