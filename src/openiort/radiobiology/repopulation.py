"""Tumour repopulation during the overall treatment time, as a BED loss.

    BED loss = ln 2 * max(0, T - T_k) / (alpha * T_d)

with T the overall time (first to last fraction, days), T_k the kick-off time and T_d the
potential doubling time (e.g. Fowler JF, Br J Radiol 1989;62:679). Breast values (alpha,
T_d) come from data/repopulation.csv with their source.
"""

from __future__ import annotations

import math

from openiort.radiobiology import _validate

DAYS_PER_WEEK = 7  # calendar
WEEKDAYS = 5  # one fraction per weekday in the usual EBRT convention


def repopulation_bed_loss_gy(
    overall_time_days: float,
    alpha_per_gy: float,
    doubling_time_days: float,
    kickoff_time_days: float = 0.0,
) -> float:
    """BED lost to repopulation over ``overall_time_days`` (Gy, >= 0).

    Parameters
    ----------
    overall_time_days:
        First to last fraction, days (0 for a single fraction).
    alpha_per_gy:
        LQ alpha of the tumour (1/Gy).
    doubling_time_days:
        Potential (effective) doubling time of the clonogens, days.
    kickoff_time_days:
        Time after the start of treatment at which repopulation begins, days.
    """
    t = _validate.non_negative(overall_time_days, "overall_time_days", "d")
    alpha = _validate.positive(alpha_per_gy, "alpha_per_gy (repopulation)", "1/Gy")
    td = _validate.positive(doubling_time_days, "doubling_time_days", "d")
    tk = _validate.non_negative(kickoff_time_days, "kickoff_time_days", "d")
    return math.log(2.0) * max(0.0, t - tk) / (alpha * td)


def weekday_overall_time_days(n_fractions: int) -> int:
    """First-to-last-fraction time of ``n_fractions`` given one per weekday from a Monday.

    A scheduling convention (25 fractions -> 32 days), not a biological parameter; pass the
    real overall time where it is known.
    """
    n = _validate.n_fractions(n_fractions)
    weeks, extra = divmod(n - 1, WEEKDAYS)
    return DAYS_PER_WEEK * weeks + extra
