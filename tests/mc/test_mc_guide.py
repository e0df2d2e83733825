"""Guide-table look-ups give exactly the index a full bisection gives."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from openiort.dose.mc.guide import guide_table, guided_search


@njit(cache=True)
def _bisect(cum, y, end):
    lo = 0
    hi = end
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        if cum[mid] <= y:
            lo = mid
        else:
            hi = mid
    return lo


@njit(cache=True)
def _compare(cum, ys, guide, steps_per_unit, ends):
    mismatches = 0
    for k in range(ys.size):
        if guided_search(cum, ys[k], guide, steps_per_unit, ends[k]) != _bisect(
            cum, ys[k], ends[k]
        ):
            mismatches += 1
    return mismatches


def _cumulative(rng: np.random.Generator, n: int) -> np.ndarray:
    p = rng.random(n) ** 4  # very uneven bins
    p[rng.random(n) < 0.2] = 0.0  # empty bins: runs of equal cumulative values
    p[0] = max(p[0], 1e-3)
    return np.concatenate(([0.0], np.cumsum(p)))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("steps_per_bin", [0.1, 1.0, 3.0])
def test_guided_search_equals_bisection(seed: int, steps_per_bin: float) -> None:
    rng = np.random.default_rng(seed)
    cum = _cumulative(rng, 300)
    total = float(cum[-1])
    steps = max(1, int(steps_per_bin * (cum.size - 1)))
    guide = guide_table(cum, total, steps)
    # deviates anywhere in [0, total), on the table's own values (ties) and next to them
    ys = np.concatenate(
        (
            rng.random(20_000) * total,
            cum[:-1],
            np.nextafter(cum[1:-1], 0.0),
            np.arange(steps) * (total / steps),
        )
    )
    ends = np.full(ys.size, cum.size - 1)
    assert _compare(cum, ys, guide, steps / total, ends) == 0
    # a search limited to a prefix of the table (as in coherent scattering below x_max)
    end = cum.size // 3
    prefix = ys[ys < cum[end]]
    assert _compare(cum, prefix, guide, steps / total, np.full(prefix.size, end)) == 0


def test_guide_table_rejects_degenerate_input() -> None:
    with pytest.raises(ValueError, match="guide table"):
        guide_table(np.array([0.0]), 1.0, 4)
    with pytest.raises(ValueError, match="guide table"):
        guide_table(np.array([0.0, 1.0]), 1.0, 0)
