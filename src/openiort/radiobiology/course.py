"""A course of acute fractions (HDR): BED and EQD2 with incomplete repair between fractions.

Fractions of a twice-daily course are a few hours apart, not enough for complete repair of
sublethal damage in late-responding tissue (repair half-times of hours, ``repair.csv``). The
incomplete-repair model (Thames HD. An 'incomplete-repair' model for survival after fractionated
and continuous irradiation. Int J Radiat Biol 1985;47:319-39) adds, for every pair of fractions
i < j given t_ij apart, an interaction term 2 d_i d_j theta_ij to the quadratic part, with
theta_ij = sum_k w_k exp(-ln 2 t_ij / T_k) over the tissue's repair components:

    BED = n d + (d^2 / (alpha/beta)) (n + 2 sum_{i<j} theta_ij)

Each fraction lasts minutes and is taken as acute. The schedule: ``per_day`` fractions a day,
``interval_h`` apart, the first of each day 24 h after the first of the day before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from openiort.radiobiology.errors import RadiobiologyError
from openiort.radiobiology.parameters import Tissue, get_tissue


@dataclass(frozen=True)
class CourseResult:
    tissue_id: str
    alpha_beta_gy: float
    fractions: int
    dose_per_fraction_gy: float
    interval_h: float | None
    repair_half_times_h: tuple[float, ...]
    bed_complete_repair_gy: float
    bed_gy: float
    eqd2_gy: float
    incomplete_repair_factor: float  # (n + 2 sum theta) / n: 1 with complete repair

    def to_dict(self) -> dict[str, object]:
        return {
            "tissue": self.tissue_id,
            "alpha_beta_gy": self.alpha_beta_gy,
            "fractions": self.fractions,
            "dose_per_fraction_gy": self.dose_per_fraction_gy,
            "total_dose_gy": round(self.fractions * self.dose_per_fraction_gy, 4),
            "interval_h": self.interval_h,
            "repair_half_times_h": list(self.repair_half_times_h),
            "bed_complete_repair_gy": round(self.bed_complete_repair_gy, 3),
            "bed_gy": round(self.bed_gy, 3),
            "eqd2_gy": round(self.eqd2_gy, 3),
            "incomplete_repair_factor": round(self.incomplete_repair_factor, 5),
        }


def fraction_times_h(fractions: int, interval_h: float | None, per_day: int = 2) -> list[float]:
    """Start time of each fraction (h from the first)."""
    if fractions == 1:
        return [0.0]
    if interval_h is None or not (interval_h > 0 and per_day * interval_h <= 24.0):
        per_day = 1
        interval_h = 24.0 if interval_h is None else max(interval_h, 24.0)
        return [i * interval_h for i in range(fractions)]
    return [(i // per_day) * 24.0 + (i % per_day) * interval_h for i in range(fractions)]


def course_bed(
    dose_per_fraction_gy: float,
    fractions: int,
    tissue: str | Tissue,
    interval_h: float | None,
    *,
    per_day: int = 2,
) -> CourseResult:
    """BED and EQD2 of ``fractions`` acute fractions of ``dose_per_fraction_gy`` (LQ)."""
    if not (isinstance(fractions, int) and fractions >= 1):
        raise RadiobiologyError(f"fractions must be a whole number >= 1, got {fractions!r}")
    d = float(dose_per_fraction_gy)
    if not (math.isfinite(d) and d > 0):
        raise RadiobiologyError(f"dose per fraction must be positive, got {d!r} Gy")
    t = get_tissue(tissue)
    ab = t.alpha_beta_gy
    times = fraction_times_h(fractions, interval_h, per_day)
    theta = 0.0
    for i in range(fractions):
        for j in range(i + 1, fractions):
            gap = times[j] - times[i]
            theta += sum(
                w * math.exp(-math.log(2.0) * gap / half)
                for half, w in zip(t.repair.half_times_h, t.repair.weights, strict=True)
            )
    factor = (fractions + 2.0 * theta) / fractions
    complete = fractions * d * (1.0 + d / ab)
    bed = fractions * d * (1.0 + factor * d / ab)
    return CourseResult(
        tissue_id=t.tissue_id,
        alpha_beta_gy=ab,
        fractions=fractions,
        dose_per_fraction_gy=d,
        interval_h=interval_h,
        repair_half_times_h=t.repair.half_times_h,
        bed_complete_repair_gy=complete,
        bed_gy=bed,
        eqd2_gy=bed / (1.0 + 2.0 / ab),
        incomplete_repair_factor=factor,
    )
