"""Guide tables: inverse-CDF look-ups in O(1) instead of a full binary search.

A guide table over a non-decreasing cumulative table ``cum`` splits ``[0, total]`` into equal
steps and stores, for each step boundary, the last index whose cumulative value lies at or
below it. A look-up starts from the two entries that bracket the deviate and bisects only
between them (Chen & Asau 1974; the "guide table" of Walker-type samplers). The answer is the
very index a full bisection gives: the bracket is checked before use, so rounding in the step
arithmetic can only fall back to a wider search, never change the result.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def guide_table(cum: FloatArray, total: float, n_steps: int) -> IntArray:
    """``guide[g]``: the last index ``k <= cum.size - 2`` with ``cum[k] <= g * total / n_steps``
    (0 if none), for ``g = 0 .. n_steps``."""
    if n_steps < 1 or cum.ndim != 1 or cum.size < 2:
        raise ValueError("a guide table needs a cumulative table of >= 2 entries and >= 1 step")
    bounds = np.arange(n_steps + 1) * (total / n_steps)
    guide = np.searchsorted(cum[:-1], bounds, side="right") - 1
    return np.clip(guide, 0, cum.size - 2).astype(np.int64)


@njit(cache=True, inline="always")
def guided_search(
    cum: np.ndarray, y: float, guide: np.ndarray, steps_per_unit: float, end: int
) -> int:
    """The last ``k < end`` with ``cum[k] <= y``, for ``cum[0] <= y < cum[end]`` (or ``end`` the
    last index of ``cum``); ``steps_per_unit`` is ``n_steps / total`` of the guide table."""
    g = int(y * steps_per_unit)
    last = guide.shape[0] - 2
    g = min(max(g, 0), last)
    lo = guide[g]
    hi = min(guide[g + 1] + 1, end)
    if lo >= hi or cum[lo] > y:
        lo = 0
    if hi < end and cum[hi] <= y:
        hi = end
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        if cum[mid] <= y:
            lo = mid
        else:
            hi = mid
    return lo
