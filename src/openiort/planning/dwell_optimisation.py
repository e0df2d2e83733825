"""HDR dwell-time optimisation: the times that give the prescription at the points (NNLS or LP,
with an optional smoothness penalty), then scaled to the prescription and rounded to the timer.

Works on the dose-rate matrix alone (points x dwell positions); :mod:`openiort.planning.hdr`
places the applicator, picks the points and computes the matrix.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy import optimize

from openiort.errors import OpenIortInputError

FloatArray = NDArray[np.float64]
Method = Literal["nnls", "lp"]


class HdrPlanError(OpenIortInputError):
    """An HDR plan that cannot be made from these inputs (the message names the problem)."""


def optimise_dwell_times(
    rate_gy_per_s: FloatArray,
    prescription_gy: float,
    neighbour_pairs: list[tuple[int, int]],
    smoothness: float = 0.0,
    method: Method = "nnls",
) -> FloatArray:
    """Non-negative dwell times (s) giving ``prescription_gy`` at the points.

    Parameters
    ----------
    rate_gy_per_s
        Dose per second of dwell time at each point from each dwell position, (points, dwells).
    prescription_gy
        Dose wanted at every point.
    neighbour_pairs
        Pairs of neighbouring dwell positions whose times the smoothness term ties together.
    smoothness
        Weight (>= 0, dimensionless) of the smoothness term against the dose term. The
        objective per point is ``mean((D/Rx - 1)^2) + smoothness * mean(((t_i - t_j)/t0)^2)``
        (``nnls``), or the same with absolute values (``lp``); ``t0`` is the uniform time that
        would give the prescription on average. 0 gives the closest fit; 0.1-1 evens the
        dwell times at some cost in uniformity at the points.
    method
        ``"nnls"``: non-negative least squares (scipy ``nnls``); ``"lp"``: least absolute
        deviation by linear programming (HiGHS).
    """
    a = np.asarray(rate_gy_per_s, dtype=np.float64) / prescription_gy
    m, n = a.shape
    if m == 0 or n == 0:
        raise HdrPlanError("dwell-time optimisation needs at least one point and one dwell")
    if not (math.isfinite(smoothness) and smoothness >= 0):
        raise HdrPlanError(f"smoothness must be >= 0, got {smoothness}")
    mean_row = float(a.sum(axis=1).mean())
    if mean_row <= 0:
        raise HdrPlanError("the dwell positions deliver no dose to the prescription points")
    t0 = 1.0 / mean_row
    pairs = [(i, j) for i, j in neighbour_pairs if 0 <= i < n and 0 <= j < n]
    diff = np.zeros((len(pairs), n))
    for k, (i, j) in enumerate(pairs):
        diff[k, i], diff[k, j] = 1.0, -1.0
    use_smooth = smoothness > 0 and len(pairs) > 0

    if method == "nnls":
        matrix, rhs = a, np.ones(m)
        if use_smooth:
            weight = math.sqrt(smoothness * m / len(pairs)) / t0
            matrix = np.vstack([a, weight * diff])
            rhs = np.concatenate([rhs, np.zeros(len(pairs))])
        try:
            times, _ = optimize.nnls(matrix, rhs, maxiter=50 * n)
        except RuntimeError as exc:
            raise HdrPlanError(f"NNLS dwell-time optimisation did not converge: {exc}") from exc
    elif method == "lp":
        p = len(pairs) if use_smooth else 0
        # variables: t (n), over (m), under (m), |diff| (p)
        cost = np.concatenate(
            [np.zeros(n), np.full(2 * m, 1.0 / m), np.full(p, smoothness / (max(p, 1) * t0))]
        )
        a_eq = np.hstack([a, -np.eye(m), np.eye(m), np.zeros((m, p))])
        a_ub = None
        b_ub = None
        if p:
            a_ub = np.vstack(
                [
                    np.hstack([diff, np.zeros((p, 2 * m)), -np.eye(p)]),
                    np.hstack([-diff, np.zeros((p, 2 * m)), -np.eye(p)]),
                ]
            )
            b_ub = np.zeros(2 * p)
        res = optimize.linprog(
            cost,
            A_ub=a_ub,
            b_ub=b_ub,
            A_eq=a_eq,
            b_eq=np.ones(m),
            bounds=(0, None),
            method="highs",
        )
        if not res.success:
            raise HdrPlanError(f"LP dwell-time optimisation failed: {res.message}")
        times = np.asarray(res.x[:n])
    else:
        raise HdrPlanError(f"unknown optimisation method {method!r}; use 'nnls' or 'lp'")
    if not np.any(times > 0):
        raise HdrPlanError("optimisation gave zero dwell times everywhere")
    return np.maximum(np.asarray(times, dtype=np.float64), 0.0)


def deliverable_dwell_times(
    times_s: FloatArray, rate_gy_per_s: FloatArray, prescription_gy: float, step_s: float
) -> FloatArray:
    """Optimised times scaled so that the mean dose over the points is ``prescription_gy``,
    then rounded to the afterloader's timer step ``step_s`` (s)."""
    scaled = times_s * (prescription_gy / float((rate_gy_per_s @ times_s).mean()))
    rounded: FloatArray = np.round(scaled / step_s) * step_s
    if not np.any(rounded > 0):
        raise HdrPlanError(
            f"all dwell times round to zero at the timer step of {step_s:g} s: the source is too "
            "strong for this prescription"
        )
    return rounded
