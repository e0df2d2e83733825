"""Lea-Catcheside protraction factor: short and long limits, hand values, bi-exponential."""

from __future__ import annotations

import math

import numpy as np
import pytest

from openiort.radiobiology import LqModel, RadiobiologyError, Timing, bed, protraction_factor


def test_instantaneous_delivery_is_one() -> None:
    assert protraction_factor(0.0, 0.3) == 1.0


@pytest.mark.parametrize("half_time_h", [0.08, 0.3, 1.5, 4.0])
def test_short_deliveries_tend_to_one(half_time_h: float) -> None:
    # G = 1 - x/3 + O(x^2) with x = mu T (series of the closed form)
    for t_min in (1e-4, 1e-2, 0.5):
        x = math.log(2) / half_time_h * t_min / 60
        g = protraction_factor(t_min, half_time_h)
        assert g == pytest.approx(1 - x / 3 + x**2 / 12, abs=x**3 / 50 + 1e-15)
        assert g <= 1.0


@pytest.mark.parametrize("half_time_h", [0.3, 4.0])
def test_long_deliveries_tend_to_the_low_dose_rate_limit(half_time_h: float) -> None:
    # G -> 2/(mu T) for mu T >> 1 (continuous low-dose-rate limit); relative error ~ 1/(mu T)
    mu = math.log(2) / half_time_h
    for t_h in (100 * half_time_h, 1000 * half_time_h):
        g = protraction_factor(t_h * 60, half_time_h)
        x = mu * t_h
        assert g == pytest.approx(2 / x, rel=1.5 / x)
    # and BED tends to the LDR formula D (1 + 2 R / (mu alpha/beta)), R = D / T
    dose, ab, t_h = 60.0, 3.0, 1000 * half_time_h
    ldr = dose * (1 + 2 * (dose / t_h) / (mu * ab))
    got = bed(dose, LqModel(ab, repair_half_time_h=half_time_h), Timing(1, t_h * 60))
    assert got == pytest.approx(ldr, rel=2e-3)


def test_hand_calculation_40_min_half_time_18_min() -> None:
    # mu = ln2/0.3 h = 2.31049 /h; T = 40 min = 0.66667 h; x = 1.54033
    # G = 2 (x - 1 + e^-x)/x^2 = 2 (1.54033 - 1 + 0.21432)/2.37261 = 0.63612
    assert protraction_factor(40.0, 0.3) == pytest.approx(0.63612, abs=5e-5)
    # 2 min, 4 h: x = 0.0057762; G = 1 - x/3 + x^2/12 = 0.998077
    assert protraction_factor(2.0, 4.0) == pytest.approx(0.998077, abs=1e-6)


def test_monotone_decreasing_and_vectorised() -> None:
    t = np.linspace(0, 120, 241)
    g = protraction_factor(t, 0.5)
    assert isinstance(g, np.ndarray) and g.shape == t.shape
    assert np.all(np.diff(g) < 0) and g[0] == 1.0 and g[-1] > 0


def test_series_and_closed_form_join_smoothly() -> None:
    # the switch at x = 1e-2 must not show: compare neighbours across it
    half = 1.0
    t_switch = 1e-2 / (math.log(2) / half) * 60
    g = np.asarray(protraction_factor(np.array([t_switch * 0.999999, t_switch * 1.000001]), half))
    dx = 2e-6 * 1e-2
    # the step across the switch is the slope dG/dx = -1/3 + x/6 times dx, nothing more;
    # cancellation in the closed form at x = 1e-2 is ~ 1e-16 / x^2 = 1e-12
    assert g[1] - g[0] == pytest.approx((-1 / 3 + 1e-2 / 6) * dx, abs=1e-11)


def test_bi_exponential_is_the_weighted_sum() -> None:
    g1, g2 = protraction_factor(30, 0.3), protraction_factor(30, 4.0)
    assert protraction_factor(30, [0.3, 4.0], [0.5, 0.5]) == pytest.approx(
        0.5 * g1 + 0.5 * g2, rel=1e-12
    )
    assert protraction_factor(30, [0.3, 4.0], [1.0, 0.0]) == pytest.approx(g1, rel=1e-12)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((-1.0, 0.3), "duration_min must not be negative"),
        ((10.0, 0.0), "repair_half_time_h must be > 0"),
        ((10.0, -1.0), "repair_half_time_h must be > 0"),
        ((10.0, [0.3, 4.0]), "repair_weights are required"),
        ((10.0, [0.3, 4.0], [0.5]), "2 repair half-times"),
        ((10.0, [0.3, 4.0], [0.5, 0.6]), "sum to 1"),
    ],
)
def test_bad_input(args: tuple, match: str) -> None:
    with pytest.raises(RadiobiologyError, match=match):
        protraction_factor(*args)
