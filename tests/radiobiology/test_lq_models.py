"""LQ, LQ-L and USC: identities, reduction below the transition dose, continuity, references."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from openiort.radiobiology import (
    LqModel,
    ModelChoice,
    RadiobiologyError,
    Rbe,
    Repopulation,
    Timing,
    USCParameters,
    bed,
    eqd2,
)
from openiort.radiobiology.lq import reference_bed_per_gy

# Park C et al. Int J Radiat Oncol Biol Phys 2008;70:847 (NSCLC H460), via
# shared/reference/radiobiology/radbio_parameters.csv
H460 = USCParameters(alpha_per_gy=0.33, d0_gy=1.25, dq_gy=1.8)
H460_AB = H460.alpha_beta_gy
USC_H460 = LqModel(H460_AB, "usc", usc=H460)


def lq(ab: float) -> LqModel:
    return LqModel(ab)


def lql(ab: float, dt: float) -> LqModel:
    return LqModel(ab, "lq-l", transition_dose_gy=dt)


# Independently computed single-fraction table of the project reference
# (shared/reference/radiobiology/radbio_single_fraction_high_dose_models.csv), given to 2
# decimals: single dose, alpha/beta, BED_LQ, EQD2_LQ, then (BED, EQD2) for LQ-L with
# d_T = 4, 6, 8, 10 Gy.
SINGLE_FRACTION_TABLE = [
    (10.00, 3.5, 38.57, 24.55, 28.29, 18.00, 34.00, 21.64, 37.43, 23.82, 38.57, 24.55),
    (10.00, 4, 35.00, 23.33, 26.00, 17.33, 31.00, 20.67, 34.00, 22.67, 35.00, 23.33),
    (12.00, 3.5, 53.14, 33.82, 34.86, 22.18, 42.86, 27.27, 48.57, 30.91, 52.00, 33.09),
    (12.00, 4, 48.00, 32.00, 32.00, 21.33, 39.00, 26.00, 44.00, 29.33, 47.00, 31.33),
    (20.00, 3.5, 134.29, 85.45, 61.14, 38.91, 78.29, 49.82, 93.14, 59.27, 105.71, 67.27),
    (20.00, 4, 120.00, 80.00, 56.00, 37.33, 71.00, 47.33, 84.00, 56.00, 95.00, 63.33),
    (21.00, 3.5, 147.00, 93.55, 64.43, 41.00, 82.71, 52.64, 98.71, 62.82, 112.43, 71.55),
    (21.00, 4, 131.25, 87.50, 59.00, 39.33, 75.00, 50.00, 89.00, 59.33, 101.00, 67.33),
    (23.33, 3.5, 178.89, 113.84, 72.10, 45.88, 93.05, 59.21, 111.71, 71.09, 128.10, 81.52),
    (23.33, 4, 159.44, 106.30, 66.00, 44.00, 84.33, 56.22, 100.67, 67.11, 115.00, 76.67),
]
TABLE_ROUNDING_GY = 0.0051  # the table is rounded to 0.01 Gy
# the 23.33 Gy rows are 70/3 Gy shown rounded (their BEDs match 70/3, not 23.33)
TABLE_DOSES_GY = {23.33: 70.0 / 3.0}


@pytest.mark.parametrize("ab", [1.5, 2.88, 3.1, 4.0, 10.0])
@pytest.mark.parametrize("n", [1, 5, 15, 25, 33])
def test_eqd2_of_2gy_fractions_is_the_dose(ab: float, n: int) -> None:
    # definition of EQD2: exact up to floating point
    assert eqd2(2.0 * n, lq(ab), Timing(n)) == pytest.approx(2.0 * n, rel=1e-12)


@pytest.mark.parametrize(
    ("n", "d", "ab"), [(1, 20.0, 3.5), (5, 5.2, 2.88), (15, 2.6667, 4.0), (25, 2.0, 10.0)]
)
def test_bed_of_n_fractions_of_d(n: int, d: float, ab: float) -> None:
    # BED = n d (1 + d / (alpha/beta)) (Fowler 1989), hand formula
    assert bed(n * d, lq(ab), Timing(n)) == pytest.approx(n * d * (1 + d / ab), rel=1e-12)


def test_hand_calculations() -> None:
    # 20 Gy x 1, alpha/beta 3.5: BED = 20 + 400/3.5 = 134.2857; EQD2 = 134.2857/(1+2/3.5) = 85.4545
    assert bed(20, lq(3.5)) == pytest.approx(134.2857, abs=1e-4)
    assert eqd2(20, lq(3.5)) == pytest.approx(85.4545, abs=1e-4)
    # START-B 40 Gy/15, alpha/beta 3: BED = 40 (1 + 2.6667/3) = 75.556; EQD2 = 45.333
    assert eqd2(40, lq(3.0), Timing(15)) == pytest.approx(45.3333, abs=1e-4)


def test_vectorised_over_a_dose_array() -> None:
    dose = np.array([[0.0, 2.0], [10.0, 20.0]])
    out = eqd2(dose, lq(10.0))
    assert isinstance(out, np.ndarray) and out.shape == dose.shape
    expected = dose * (dose + 10.0) / 12.0  # EQD2 = D (d + ab)/(2 + ab), n = 1
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    assert isinstance(eqd2(20.0, lq(10.0)), float)


@pytest.mark.parametrize("row", SINGLE_FRACTION_TABLE)
def test_single_fraction_reference_table(row: tuple[float, ...]) -> None:
    dose, ab, bed_lq, eqd2_lq = row[:4]
    dose = TABLE_DOSES_GY.get(dose, dose)
    assert bed(dose, lq(ab)) == pytest.approx(bed_lq, abs=TABLE_ROUNDING_GY)
    assert eqd2(dose, lq(ab)) == pytest.approx(eqd2_lq, abs=TABLE_ROUNDING_GY)
    for k, dt in enumerate((4.0, 6.0, 8.0, 10.0)):
        b, e = row[4 + 2 * k], row[5 + 2 * k]
        assert bed(dose, lql(ab, dt)) == pytest.approx(b, abs=TABLE_ROUNDING_GY)
        assert eqd2(dose, lql(ab, dt)) == pytest.approx(e, abs=TABLE_ROUNDING_GY)


def test_lql_equals_lq_below_transition_and_is_continuous_at_it() -> None:
    dt = 6.0
    d = np.linspace(0.0, dt, 61)
    np.testing.assert_allclose(bed(d, lql(3.1, dt)), bed(d, lq(3.1)), rtol=1e-12)
    eps = 1e-7
    below = bed(dt - eps, lql(3.1, dt))
    above = bed(dt + eps, lql(3.1, dt))
    assert above - below == pytest.approx(2 * eps * (1 + 2 * dt / 3.1), rel=1e-3)  # C1 join
    # above d_T it is linear with the LQ slope at d_T: 1 + 2 d_T/ab per Gy
    slope = (bed(20.0, lql(3.1, dt)) - bed(10.0, lql(3.1, dt))) / 10.0
    assert slope == pytest.approx(1 + 2 * dt / 3.1, rel=1e-12)


def test_usc_parameters_reproduce_park_2008() -> None:
    p = H460
    # Published D_T = 6.2 Gy, beta = 0.038 /Gy^2 (Park 2008); D0 and Dq are given to 2
    # significant digits, so D_T = 2 Dq/(1 - alpha D0) carries +/-0.17 Gy from Dq's rounding
    # (dD_T/dDq = 3.4) and beta +/-0.001.
    assert p.transition_dose_gy == pytest.approx(6.2, abs=0.17)
    assert p.beta_per_gy2 == pytest.approx(0.038, abs=0.001)


def test_usc_reduces_to_lq_and_follows_the_terminal_line() -> None:
    p = H460
    d = np.linspace(0.0, p.transition_dose_gy, 50)
    np.testing.assert_allclose(bed(d, USC_H460), bed(d, lq(H460_AB)), rtol=1e-12)
    # continuity at D_T
    eps = 1e-7
    dt = p.transition_dose_gy
    jump = bed(dt + eps, USC_H460) - bed(dt - eps, USC_H460)
    assert abs(float(jump)) < 1e-5
    # hand calculation above D_T (Park 2008): BED = (d/D0 - Dq/D0)/alpha
    # 20 Gy: (16 - 1.44)/0.33 = 44.1212 Gy
    assert bed(20.0, USC_H460) == pytest.approx(44.1212, abs=1e-4)


def test_eqd2_reference_is_lq_when_transition_above_2_gy() -> None:
    assert reference_bed_per_gy(3.0, 6.0) == pytest.approx(1 + 2 / 3.0, rel=1e-12)
    # d_T below 2 Gy: the 2 Gy reference fraction is itself on the linear part
    # BED per Gy = (2 + (2*1*2 - 1)/3)/2 = (2 + 1)/2 = 1.5
    assert reference_bed_per_gy(3.0, 1.0) == pytest.approx(1.5, rel=1e-12)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: bed(-1.0, lq(3.0)), "must not be negative"),
        (lambda: bed([2.0, -0.1], lq(3.0)), "must not be negative"),
        (lambda: bed(float("nan"), lq(3.0)), "NaN"),
        (lambda: Timing(0), "n_fractions must be >= 1"),
        (lambda: Timing(-3), "n_fractions"),
        (lambda: Timing(2.5), "whole number"),  # type: ignore[arg-type]
        (lambda: Timing(True), "whole number"),
        (lambda: Timing(1, -1.0), "delivery_time_min must be >= 0"),
        (lambda: Timing(1, 0.0, -2.0), "overall_time_days must be >= 0"),
        (lambda: LqModel(0.0), "alpha_beta_gy must be > 0"),
        (lambda: LqModel(-2.0), "alpha_beta_gy must be > 0"),
        (lambda: LqModel(3.0, "lq-l"), "needs transition_dose_gy"),
        (lambda: lql(3.0, -1.0), "transition_dose_gy must be > 0"),
        (lambda: LqModel(3.0, "lqq"), "unknown model"),  # type: ignore[arg-type]
        (lambda: LqModel(3.0, transition_dose_gy=6.0), "not lq"),
        (lambda: LqModel(3.0, "usc"), "needs usc"),
        (lambda: LqModel(3.0, "usc", usc=H460), "imply alpha/beta"),
        (lambda: LqModel(H460_AB, "usc", 6.0, H460), "derives its transition dose"),
        (lambda: LqModel(3.0, "lq-l", 6.0, H460), "usc applies to model 'usc'"),
        (lambda: USCParameters(1.0, 1.5, 1.0), "alpha \\* D0"),
        (lambda: LqModel(3.0, repair_half_time_h=0.0), "repair_half_time_h must be > 0"),
        (lambda: LqModel(3.0, repair_weights=(1.0,)), "repair_weights need"),
        (lambda: ModelChoice("lq-l"), "needs transition_dose_gy"),
        (lambda: ModelChoice("usc", 6.0), "derives its transition dose"),
        (lambda: ModelChoice(usc="h460"), "not lq"),
        (lambda: bed(20.0, lq(3.0), Timing(1, 30.0)), "needs repair_half_time_h"),
        (lambda: Rbe(0.0), "rbe"),
        (lambda: Rbe("x"), "rbe must be a number"),
        (lambda: bed(20.0, lq(3.0), repopulation=Repopulation(0.08, 14.4)), "overall_time_days"),
        (lambda: Repopulation(0.0, 14.4), "alpha_per_gy"),
        (lambda: Rbe(rbe_max=1.2), "rbe_max and rbe_min together"),
    ],
)
def test_bad_parameters_give_clear_errors(make: Callable[[], object], match: str) -> None:
    with pytest.raises(RadiobiologyError, match=match):
        make()
    assert issubclass(RadiobiologyError, ValueError)


def test_parameter_objects_normalise_their_numbers() -> None:
    model = LqModel(3, "lq-l", 6, repair_half_time_h=[0.3, 4.0], repair_weights=[0.5, 0.5])
    assert model.alpha_beta_gy == 3.0 and isinstance(model.alpha_beta_gy, float)
    assert model.transition_dose_gy == 6.0 and isinstance(model.transition_dose_gy, float)
    assert model.repair_half_time_h == (0.3, 4.0) and model.repair_weights == (0.5, 0.5)
    assert LqModel(3.0, repair_half_time_h=0.3).repair_weights == (1.0,)
    assert USC_H460.curve_alpha_beta_gy == H460_AB
    assert USC_H460.curve_transition_dose_gy == H460.transition_dose_gy
    timing = Timing(25.0, 2, 32)  # type: ignore[arg-type]
    assert (timing.n_fractions, timing.delivery_time_min, timing.overall_time_days) == (
        25,
        2.0,
        32.0,
    )
    assert isinstance(timing.n_fractions, int) and isinstance(timing.delivery_time_min, float)
    assert ModelChoice("usc").for_tissue_kind("late") == ModelChoice()
    assert ModelChoice("usc").for_tissue_kind("tumour") == ModelChoice("usc")
