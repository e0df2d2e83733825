"""Lea-Catcheside dose-protraction factor for a constant dose rate with incomplete repair.

For a dose delivered at a constant rate over a time T, with sublethal damage repaired
mono-exponentially at rate mu = ln 2 / T_half, the dose-squared term of the LQ model is
multiplied by

    G(x) = 2 (x - 1 + exp(-x)) / x**2,   x = mu T

(Lea DE, Catcheside DG, J Genet 1942;44:216; in this form e.g. Dale RG, Br J Radiol
1985;58:515). G -> 1 for an acute delivery (x -> 0) and G -> 2 / x for a long one, which turns
the LQ BED into the continuous low-dose-rate form D (1 + 2 R / (mu alpha/beta)).
With several repair components i (weights w_i of the repairable damage, sum 1) the factor is
the weighted sum of the single-component factors (multi-exponential repair, as used by
Fowler et al., Int J Radiat Oncol Biol Phys 2004;59:242).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from openiort.radiobiology import _validate
from openiort.radiobiology._validate import FloatArray
from openiort.radiobiology.errors import RadiobiologyError

MIN_PER_H = 60.0  # unit conversion, minutes per hour

# Below this x the closed form loses digits to cancellation (~1e-16/x^2); the Taylor series
# 1 - x/3 + x^2/12 - x^3/60 + x^4/360 is then exact to ~x^5/2520 (< 5e-15 at x = 1e-2).
_SERIES_BELOW_X = 1e-2


def _g_single(x: FloatArray) -> FloatArray:
    out = np.empty_like(x)
    small = x < _SERIES_BELOW_X
    xs = x[small]
    out[small] = 1.0 - xs / 3.0 + xs**2 / 12.0 - xs**3 / 60.0 + xs**4 / 360.0
    xl = x[~small]
    out[~small] = 2.0 * (xl - 1.0 + np.exp(-xl)) / xl**2
    return out


def repair_components(
    repair_half_time_h: float | Sequence[float], weights: Sequence[float] | None = None
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Checked (half-times in h, weights) of a mono- or multi-exponential repair model."""
    if isinstance(repair_half_time_h, Sequence) and not isinstance(repair_half_time_h, str):
        halves = tuple(_validate.positive(t, "repair_half_time_h", "h") for t in repair_half_time_h)
    else:
        halves = (_validate.positive(repair_half_time_h, "repair_half_time_h", "h"),)
    if not halves:
        raise RadiobiologyError("repair_half_time_h must name at least one half-time")
    if weights is None:
        if len(halves) > 1:
            raise RadiobiologyError(
                "repair_weights are required with more than one repair half-time"
            )
        return halves, (1.0,)
    ws = tuple(_validate.non_negative(w, "repair_weights", "") for w in weights)
    if len(ws) != len(halves):
        raise RadiobiologyError(
            f"{len(ws)} repair_weights given for {len(halves)} repair half-times"
        )
    if not math.isclose(sum(ws), 1.0, abs_tol=1e-6):
        raise RadiobiologyError(f"repair_weights must sum to 1, got {sum(ws):g}")
    return halves, ws


def protraction_factor(
    duration_min: ArrayLike,
    repair_half_time_h: float | Sequence[float],
    weights: Sequence[float] | None = None,
) -> float | FloatArray:
    """Lea-Catcheside factor G for a constant-rate delivery lasting ``duration_min``.

    Parameters
    ----------
    duration_min:
        Beam-on time of one fraction in minutes (scalar or array, >= 0).
    repair_half_time_h:
        Repair half-time in hours; a sequence gives multi-exponential repair.
    weights:
        Fraction of the repairable damage in each component (sum 1); required when more
        than one half-time is given.

    Returns
    -------
    float or ndarray
        G in (0, 1]; 1 for an instantaneous delivery.
    """
    halves, ws = repair_components(repair_half_time_h, weights)
    scalar = np.ndim(duration_min) == 0
    t_min = _validate.dose_array(duration_min, "duration_min", "min")
    g = np.zeros_like(t_min, dtype=np.float64)
    for half, w in zip(halves, ws, strict=True):
        x = (math.log(2.0) / half) * (t_min / MIN_PER_H)
        g = g + w * _g_single(np.atleast_1d(x)).reshape(x.shape)
    return _validate.as_output(g, scalar)
