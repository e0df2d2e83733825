"""Quality-assurance records: the source's daily output and isotropy checks.

Tolerances are the department's QA programme's, passed in with each check and stored beside
it, so that a record always shows the limit it was judged against. A check passes when the
magnitude of its deviation does not exceed the tolerance.

The 50 kV source has its own two daily checks (:func:`record_xray_output_check`, the chamber
reading in the probe adapter corrected to reference air, and :func:`record_xray_isotropy_check`,
the photodiode array); their factor of the day is :func:`output_factor`, and a delivery looks
up the same-day check with :func:`same_day_output_check`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from openiort.devices.monitor_chamber import air_density_factor
from openiort.records import audit
from openiort.records.common import require_role
from openiort.records.errors import NotFoundError, RecordsValueError
from openiort.records.models import TECHNIQUES, IsotropyCheck, SourceOutputCheck, User, utcnow

MAX_TOLERANCE_PCT = 100.0


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordsValueError(f"{name}: must be a number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise RecordsValueError(f"{name}: must be a positive number, got {value!r}")
    return float(value)


def _tolerance(value: float) -> float:
    tol = _positive("tolerance_pct", value)
    if tol > MAX_TOLERANCE_PCT:
        raise RecordsValueError(f"tolerance_pct: at most {MAX_TOLERANCE_PCT:g} %, got {tol:g}")
    return tol


def _text(name: str, value: str, max_chars: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RecordsValueError(f"{name}: required")
    if len(value) > max_chars:
        raise RecordsValueError(f"{name}: at most {max_chars} characters")
    return value.strip()


def _when(performed_at: dt.datetime | None) -> dt.datetime:
    if performed_at is None:
        return utcnow()
    if performed_at.tzinfo is None:
        raise RecordsValueError("performed_at: must be timezone-aware")
    if performed_at > utcnow() + dt.timedelta(minutes=5):
        raise RecordsValueError("performed_at: lies in the future")
    return performed_at


def deviation_pct(measured: float, expected: float) -> float:
    """Percentage deviation of ``measured`` from ``expected``: ``100 (m / e - 1)``."""
    return 100.0 * (measured / expected - 1.0)


# Rounding slack so that a reading exactly at the limit (1.02 against 1.00 at 2 %) passes.
_LIMIT_SLACK_PCT = 1e-9


def within(deviation: float, tolerance_pct: float) -> bool:
    """Whether a deviation (%) is within a symmetric tolerance (%), limits included."""
    return abs(deviation) <= tolerance_pct + _LIMIT_SLACK_PCT


def record_output_check(
    session: Session,
    actor: User,
    *,
    device: str,
    technique: str,
    measured_value: float,
    expected_value: float,
    unit: str,
    tolerance_pct: float,
    performed_at: dt.datetime | None = None,
    energy_mev: float | None = None,
    applicator: str | None = None,
    note: str | None = None,
    details: Mapping[str, object] | None = None,
) -> SourceOutputCheck:
    """Record a daily output check of a source or beam.

    Parameters
    ----------
    device:
        The source or machine (serial number or department name).
    technique:
        ``xray``, ``electron`` or ``hdr``.
    measured_value, expected_value, unit:
        The reading (corrected as the QA programme prescribes) and its baseline, in ``unit``
        (for example ``Gy/min``, ``nC``, ``cGy/MU``).
    tolerance_pct:
        The programme's action limit on the deviation, in percent.
    performed_at:
        When it was measured (default now).
    energy_mev, applicator:
        The beam checked, where it matters (electrons).

    Returns
    -------
    SourceOutputCheck
        With ``deviation_pct`` and ``passed``; a failing check is recorded too.
    """
    require_role(actor, "qa.record")
    if technique not in TECHNIQUES:
        raise RecordsValueError(f"technique: one of {', '.join(TECHNIQUES)}, got {technique!r}")
    measured = _positive("measured_value", measured_value)
    expected = _positive("expected_value", expected_value)
    tol = _tolerance(tolerance_pct)
    dev = deviation_pct(measured, expected)
    check = SourceOutputCheck(
        device=_text("device", device, 100),
        technique=technique,
        performed_at=_when(performed_at),
        performed_by_id=actor.id,
        measured_value=measured,
        expected_value=expected,
        unit=_text("unit", unit, 32),
        deviation_pct=dev,
        tolerance_pct=tol,
        passed=within(dev, tol),
        energy_mev=None if energy_mev is None else _positive("energy_mev", energy_mev),
        applicator=None if applicator is None else _text("applicator", applicator, 40),
        note=note,
        details=None if details is None else dict(details),
    )
    session.add(check)
    session.flush()
    audit.record(
        session,
        actor,
        "create",
        "qa_output_check",
        check.id,
        {
            "device": check.device,
            "deviation_pct": round(dev, 3),
            "tolerance_pct": tol,
            "passed": check.passed,
        },
    )
    return check


def record_isotropy_check(
    session: Session,
    actor: User,
    *,
    device: str,
    readings: Mapping[str, float],
    unit: str,
    tolerance_pct: float,
    performed_at: dt.datetime | None = None,
    note: str | None = None,
    details: Mapping[str, object] | None = None,
) -> IsotropyCheck:
    """Record a source isotropy check: each direction's reading against their mean.

    Parameters
    ----------
    readings:
        Reading per direction (for example ``{"+x": 1.01, "-x": 0.99, "+y": 1.0, ...}``);
        at least two.
    tolerance_pct:
        The largest deviation from the mean any direction may show, in percent.

    Returns
    -------
    IsotropyCheck
        With ``mean_value``, ``max_deviation_pct`` (signed, the largest in magnitude) and
        ``passed``.
    """
    require_role(actor, "qa.record")
    if not isinstance(readings, Mapping) or len(readings) < 2:
        raise RecordsValueError("readings: at least two directions are needed")
    values = {
        _text("direction", str(k), 20): _positive(f"readings[{k}]", v) for k, v in readings.items()
    }
    mean = math.fsum(values.values()) / len(values)
    deviations = {k: deviation_pct(v, mean) for k, v in values.items()}
    worst = max(deviations.values(), key=abs)
    tol = _tolerance(tolerance_pct)
    check = IsotropyCheck(
        device=_text("device", device, 100),
        performed_at=_when(performed_at),
        performed_by_id=actor.id,
        readings=values,
        unit=_text("unit", unit, 32),
        mean_value=mean,
        max_deviation_pct=worst,
        tolerance_pct=tol,
        passed=within(worst, tol),
        note=note,
        details=None if details is None else dict(details),
    )
    session.add(check)
    session.flush()
    audit.record(
        session,
        actor,
        "create",
        "qa_isotropy_check",
        check.id,
        {
            "device": check.device,
            "max_deviation_pct": round(worst, 3),
            "tolerance_pct": tol,
            "passed": check.passed,
        },
    )
    return check


def get_output_check(session: Session, check_id: int) -> SourceOutputCheck:
    """The output check with this id; :class:`NotFoundError` if none."""
    check = session.get(SourceOutputCheck, check_id)
    if check is None:
        raise NotFoundError(f"output check {check_id} does not exist")
    return check


def latest_output_check(
    session: Session, device: str, technique: str | None = None
) -> SourceOutputCheck | None:
    """The most recent output check of ``device`` (optionally for one technique)."""
    stmt = select(SourceOutputCheck).where(SourceOutputCheck.device == device)
    if technique is not None:
        stmt = stmt.where(SourceOutputCheck.technique == technique)
    return session.scalars(
        stmt.order_by(SourceOutputCheck.performed_at.desc(), SourceOutputCheck.id.desc()).limit(1)
    ).first()


def list_qa_checks(
    session: Session, device: str | None = None
) -> tuple[list[SourceOutputCheck], list[IsotropyCheck]]:
    """Output and isotropy checks, newest first, optionally of one device."""
    out = select(SourceOutputCheck).order_by(SourceOutputCheck.performed_at.desc())
    iso = select(IsotropyCheck).order_by(IsotropyCheck.performed_at.desc())
    if device is not None:
        out = out.where(SourceOutputCheck.device == device)
        iso = iso.where(IsotropyCheck.device == device)
    return list(session.scalars(out)), list(session.scalars(iso))


# ------------------------------------------------------------------ the 50 kV source's checks

#: Reference air of the probe adapter's chamber reading (the department's baseline is stated
#: at these unless it says otherwise): 20 degC and 1013.25 hPa, the usual calibration
#: conditions of vented ionisation chambers (IAEA TRS-398 section 4.2).
REFERENCE_PRESSURE_HPA = 1013.25
REFERENCE_TEMPERATURE_C = 20.0
PRESSURE_RANGE_HPA = (600.0, 1100.0)
TEMPERATURE_RANGE_C = (10.0, 40.0)


def _in_range(name: str, value: float, bounds: tuple[float, float], unit: str) -> float:
    v = _finite(name, value)
    if not bounds[0] <= v <= bounds[1]:
        raise RecordsValueError(
            f"{name}: {v:g} {unit} is outside the plausible range {bounds[0]:g}-{bounds[1]:g} {unit}"
        )
    return v


def _finite(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RecordsValueError(f"{name}: must be a number, got {value!r}")
    return float(value)


def air_correction_k_tp(
    pressure_hpa: float,
    temperature_c: float,
    reference_pressure_hpa: float = REFERENCE_PRESSURE_HPA,
    reference_temperature_c: float = REFERENCE_TEMPERATURE_C,
) -> float:
    """k_TP = (P_ref / P) x (T / T_ref) in kelvin: a vented chamber's reading at reference air."""
    return 1.0 / air_density_factor(
        pressure_hpa, reference_pressure_hpa, temperature_c, reference_temperature_c
    )


def record_xray_output_check(
    session: Session,
    actor: User,
    *,
    source_serial: str,
    chamber_serial: str,
    reading: float,
    reference_reading: float,
    unit: str,
    pressure_hpa: float,
    temperature_c: float,
    tolerance_pct: float,
    reference_pressure_hpa: float = REFERENCE_PRESSURE_HPA,
    reference_temperature_c: float = REFERENCE_TEMPERATURE_C,
    performed_at: dt.datetime | None = None,
    note: str | None = None,
) -> SourceOutputCheck:
    """Record the 50 kV source's daily output check in the probe adapter.

    The chamber's ``reading`` (for example nC in the fixed time of the check) is corrected to
    reference air with k_TP and compared with ``reference_reading``, the baseline of the same
    chamber in the adapter at the source's calibration (at reference air). The output factor
    of the day is corrected reading / reference reading (:func:`output_factor`); a delivery
    that day divides its time by it (:mod:`openiort.session`).
    """
    p = _in_range("pressure_hpa", pressure_hpa, PRESSURE_RANGE_HPA, "hPa")
    t = _in_range("temperature_c", temperature_c, TEMPERATURE_RANGE_C, "degC")
    p_ref = _in_range("reference_pressure_hpa", reference_pressure_hpa, PRESSURE_RANGE_HPA, "hPa")
    t_ref = _in_range(
        "reference_temperature_c", reference_temperature_c, TEMPERATURE_RANGE_C, "degC"
    )
    raw = _positive("reading", reading)
    k_tp = air_correction_k_tp(p, t, p_ref, t_ref)
    source = _text("source_serial", source_serial, 100)
    chamber = _text("chamber_serial", chamber_serial, 100)
    return record_output_check(
        session,
        actor,
        device=source,
        technique="xray",
        measured_value=raw * k_tp,
        expected_value=reference_reading,
        unit=unit,
        tolerance_pct=tolerance_pct,
        performed_at=performed_at,
        note=note,
        details={
            "kind": "xray_probe_adapter",
            "chamber_serial": chamber,
            "reading": raw,
            "pressure_hpa": p,
            "temperature_c": t,
            "reference_pressure_hpa": p_ref,
            "reference_temperature_c": t_ref,
            "k_tp": k_tp,
            "output_factor": raw * k_tp / _positive("reference_reading", reference_reading),
        },
    )


def record_xray_isotropy_check(
    session: Session,
    actor: User,
    *,
    source_serial: str,
    array_serial: str,
    readings: Mapping[str, float],
    unit: str,
    tolerance_pct: float,
    performed_at: dt.datetime | None = None,
    note: str | None = None,
) -> IsotropyCheck:
    """Record the 50 kV source's isotropy check with the photodiode array (one reading per
    diode direction, each against their mean)."""
    return record_isotropy_check(
        session,
        actor,
        device=source_serial,
        readings=readings,
        unit=unit,
        tolerance_pct=tolerance_pct,
        performed_at=performed_at,
        note=note,
        details={
            "kind": "xray_photodiode_array",
            "array_serial": _text("array_serial", array_serial, 100),
        },
    )


def output_factor(check: SourceOutputCheck) -> float:
    """The day's output relative to the reference: corrected reading / reference reading."""
    return check.measured_value / check.expected_value


#: A daily output check covers the deliveries of the 24 h after it ("the same day").
SAME_DAY = dt.timedelta(hours=24)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def same_day_output_check(
    session: Session, device: str, technique: str, when: dt.datetime
) -> SourceOutputCheck | None:
    """The latest output check of ``device`` in the :data:`SAME_DAY` before ``when``, passed or
    not (a failed check after a passing one stops the source)."""
    stmt = (
        select(SourceOutputCheck)
        .where(SourceOutputCheck.device == device, SourceOutputCheck.technique == technique)
        .order_by(SourceOutputCheck.performed_at.desc(), SourceOutputCheck.id.desc())
    )
    for check in session.scalars(stmt.limit(20)):
        age = _aware(when) - _aware(check.performed_at)
        if dt.timedelta(0) <= age <= SAME_DAY:
            return check
    return None
