"""Treatment burden: hospital visits, calendar days and travel, IORT vs whole-breast schedules.

Schedules, travel assumptions and the published travel figures live in
``data/treatment_burden.yaml`` with their sources; the chance of needing whole-breast
radiotherapy after IORT comes from the matched trial evidence (:mod:`.outcomes`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any

from openiort.case import Case
from openiort.clinical.outcomes import PatientEvidence, match_evidence
from openiort.datafiles import read_data
from openiort.errors import OpenIortInputError

KM_PER_MILE = 1.609344  # international mile, exact by definition
WEEKDAYS_PER_WEEK = 5  # radiotherapy fractions are given on weekdays


class BurdenDataError(OpenIortInputError):
    """A malformed treatment-burden data file."""


@cache
def burden_data() -> dict[str, Any]:
    """The bundled ``data/treatment_burden.yaml``, checked for the keys the code reads."""
    data = read_data("openiort.clinical", "data/treatment_burden.yaml").yaml()
    try:
        keys = {s["key"] for s in data["whole_breast"]}
        for s in data["whole_breast"]:
            if not (
                isinstance(s["fractions"], int)
                and s["fractions"] > 0
                and s["source"]
                and s["patient_label"]
            ):
                raise BurdenDataError(f"treatment_burden.yaml: schedule {s['key']!r} is malformed")
        if data["default_whole_breast"] not in keys:
            raise BurdenDataError("treatment_burden.yaml: default_whole_breast is not a schedule")
        for technique in ("xray", "electron", "hdr", "hdr_course", "second_procedure"):
            data["iort"][technique]["extra_visits"]
        if int(data["iort"]["hdr_course"]["fractions_per_day"]) < 1:
            raise BurdenDataError("treatment_burden.yaml: hdr_course.fractions_per_day < 1")
        float(data["travel"]["co2_g_per_mile"])
        float(data["travel"]["hospital_time_per_trip_h"])
        int(data["planning_visits"]["value"])
    except (KeyError, TypeError) as exc:
        raise BurdenDataError(f"treatment_burden.yaml: missing or malformed entry {exc}") from None
    return data


def course_span_days(fractions: int) -> int:
    """Calendar days from the first to the last fraction of a weekday course starting Monday.

    >>> course_span_days(5), course_span_days(15), course_span_days(25)
    (5, 19, 33)
    """
    if fractions < 1:
        raise ValueError(f"a course needs at least one fraction, got {fractions}")
    full_weeks, extra_days = divmod(fractions - 1, WEEKDAYS_PER_WEEK)
    return full_weeks * 7 + extra_days + 1


@dataclass(frozen=True)
class Travel:
    """Travel for a number of hospital trips at a given one-way distance."""

    trips: int
    distance_km: float
    co2_kg: float
    hospital_time_h: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "trips": self.trips,
            "distance_km": round(self.distance_km, 1),
            "co2_kg": round(self.co2_kg, 1),
            "hospital_time_h": self.hospital_time_h,
        }


@dataclass(frozen=True)
class ScheduleBurden:
    """One whole-breast schedule."""

    key: str
    label: str
    patient_label: str
    fractions: int
    visits: int  # planning visit(s) plus one visit per fraction
    span_days: int
    travel: Travel | None
    source: str
    status: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "patient_label": self.patient_label,
            "fractions": self.fractions,
            "visits": self.visits,
            "span_days": self.span_days,
            "travel": self.travel.to_dict() if self.travel else None,
            "source": " ".join(self.source.split()),
            "status": self.status,
        }


@dataclass(frozen=True)
class Burden:
    """IORT compared with whole-breast schedules for one case."""

    technique: str
    iort_label: str
    iort_extra_visits: int
    added_operating_time_min: tuple[float, float] | None
    iort_source: str
    iort_status: str
    visits_source: str
    visits_status: str
    iort_travel: Travel | None
    p_ebrt_after_iort_pct: float | None
    p_ebrt_source: str
    p_ebrt_status: str
    schedules: tuple[ScheduleBurden, ...]
    comparator: str  # key of the schedule used for "if whole-breast radiotherapy is added"
    planning_visits: int
    planning_source: str
    published_travel: dict[str, Any]
    notes: tuple[str, ...]
    # A course of fractions after the operation (HDR): fractions, and the treatment days they
    # take (each a hospital visit, counted in iort_extra_visits); 1 and 0 for IORT.
    course_fractions: int = 1
    course_days: int = 0

    @property
    def comparator_schedule(self) -> ScheduleBurden:
        return next(s for s in self.schedules if s.key == self.comparator)

    @property
    def expected_iort_visits(self) -> float | None:
        """Mean visits with IORT, counting the chance of needing whole-breast radiotherapy."""
        if self.p_ebrt_after_iort_pct is None:
            return None
        return self.iort_extra_visits + self.p_ebrt_after_iort_pct / 100.0 * (
            self.comparator_schedule.visits
        )

    @property
    def iort(self) -> dict[str, Any]:
        """The IORT row as in :meth:`to_dict`, so templates read either form alike."""
        iort: dict[str, Any] = self.to_dict()["iort"]
        return iort

    def to_dict(self) -> dict[str, Any]:
        return {
            "technique": self.technique,
            "iort": {
                "label": self.iort_label,
                "extra_visits": self.iort_extra_visits,
                "added_operating_time_min": list(self.added_operating_time_min)
                if self.added_operating_time_min
                else None,
                "source": " ".join(self.iort_source.split()),
                "status": self.iort_status,
                "visits_source": self.visits_source,
                "travel": self.iort_travel.to_dict() if self.iort_travel else None,
                "course_fractions": self.course_fractions,
                "course_days": self.course_days,
            },
            "ebrt_after_iort_pct": self.p_ebrt_after_iort_pct,
            "ebrt_after_iort_source": self.p_ebrt_source,
            "ebrt_after_iort_status": self.p_ebrt_status,
            "expected_iort_visits": None
            if self.expected_iort_visits is None
            else round(self.expected_iort_visits, 1),
            "schedules": [s.to_dict() for s in self.schedules],
            "comparator": self.comparator,
            "planning_visits": self.planning_visits,
            "planning_source": self.planning_source,
            "published_travel": self.published_travel,
            "notes": list(self.notes),
        }


def _travel(trips: int, one_way_km: float | None, data: dict[str, Any]) -> Travel | None:
    if one_way_km is None:
        return None
    distance = 2.0 * one_way_km * trips
    co2_kg = distance / KM_PER_MILE * float(data["travel"]["co2_g_per_mile"]) / 1000.0
    hours = trips * float(data["travel"]["hospital_time_per_trip_h"])
    return Travel(trips, distance, co2_kg, hours)


def treatment_burden(
    case: Case,
    one_way_km: float | None = None,
    comparator: str | None = None,
    evidence: PatientEvidence | None = None,
) -> Burden:
    """Visits, days and travel with IORT and with each whole-breast schedule.

    Parameters
    ----------
    case
        The case: its technique and timing decide the IORT row and the chance of supplemental
        whole-breast radiotherapy.
    one_way_km
        Distance from home to the radiotherapy centre; ``None`` gives no personal travel
        figures (the published averages are always included).
    comparator
        Key of the whole-breast schedule used if radiotherapy is added after IORT
        (default: ``default_whole_breast`` in the data file).
    evidence
        The matched evidence (default: :func:`match_evidence` of the case).

    Raises
    ------
    ValueError
        For a negative distance or an unknown schedule key.
    """
    data = burden_data()
    if one_way_km is not None and one_way_km < 0:
        raise ValueError(f"one_way_km must not be negative, got {one_way_km}")
    keys = [s["key"] for s in data["whole_breast"]]
    chosen = comparator or data["default_whole_breast"]
    if chosen not in keys:
        raise ValueError(f"unknown whole-breast schedule {chosen!r} (known: {', '.join(keys)})")
    technique = case.intent.technique
    fractions = case.intent.fractions
    # A course of HDR fractions is given after the operation, one visit per treatment day.
    course = technique == "hdr" and fractions > 1
    row = data["iort"]["hdr_course" if course else technique]
    extra_visits = int(row["extra_visits"])
    course_days = math.ceil(fractions / int(row["fractions_per_day"])) if course else 0
    extra_visits += course_days
    notes: list[str] = []
    if case.intent.timing == "second_procedure":
        second = data["iort"]["second_procedure"]
        extra_visits += int(second["extra_visits"])
        notes.append(f"{second['label']}: {extra_visits} extra hospital visit.")
    planning = int(data["planning_visits"]["value"])
    schedules = tuple(
        ScheduleBurden(
            key=s["key"],
            label=s["label"],
            patient_label=s["patient_label"],
            fractions=s["fractions"],
            visits=planning + s["fractions"],
            span_days=course_span_days(s["fractions"]),
            travel=_travel(planning + s["fractions"], one_way_km, data),
            source=s["source"],
            status=s["status"],
        )
        for s in data["whole_breast"]
    )
    ev = evidence if evidence is not None else match_evidence(case)
    p_item = ev.best("supplemental_ebrt", trial=ev.trial) if ev.trial else None
    iort_arm = p_item.arm("iort") if p_item else None
    if p_item is None or iort_arm is None or iort_arm.estimate_pct is None:
        p_ebrt, p_source, p_status = None, "", ""
        notes.append(
            "The chance of needing whole-breast radiotherapy after this IORT technique was not "
            "found in the compiled evidence."
        )
    else:
        p_ebrt = iort_arm.estimate_pct
        p_source = f"{p_item.trial}, {p_item.publication} ({p_item.stratum})"
        p_status = iort_arm.status
    added = row.get("added_operating_time_min")
    return Burden(
        technique=technique,
        iort_label=row["label"],
        iort_extra_visits=extra_visits,
        added_operating_time_min=(float(added[0]), float(added[1])) if added else None,
        iort_source=row["source"],
        iort_status=row["status"],
        visits_source=" ".join(str(row["source"] if course else data["visits_source"]).split()),
        visits_status=str(row["status"] if course else data["visits_status"]),
        iort_travel=_travel(extra_visits, one_way_km, data) if extra_visits else None,
        p_ebrt_after_iort_pct=p_ebrt,
        p_ebrt_source=p_source,
        p_ebrt_status=p_status,
        schedules=schedules,
        comparator=chosen,
        planning_visits=planning,
        planning_source=data["planning_visits"]["source"],
        published_travel=dict(data["travel"]["published"]),
        notes=tuple(notes),
        course_fractions=fractions if course else 1,
        course_days=course_days,
    )
