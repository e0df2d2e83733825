"""Schedule and parameter libraries: provenance of every row, provisional flags, TARGIT."""

from __future__ import annotations

import pytest

from openiort.radiobiology import (
    ModelChoice,
    RadiobiologyError,
    Repopulation,
    evaluate_schedule,
    get_schedule,
    schedule_library,
    targit_to_water,
    tissue_library,
)
from openiort.radiobiology.parameters import (
    DATA_FILES,
    data_rows,
    default_tissue,
    get_tissue,
    is_provisional,
    repair_library,
)
from openiort.radiobiology.schedules import custom_schedule


@pytest.mark.parametrize("name", DATA_FILES)
def test_every_data_row_has_a_source_and_a_status(name: str) -> None:
    rows = data_rows(name)
    assert rows, name
    for row in rows:
        assert row.get("source", "").strip(), (name, row)
        assert row.get("status", "").strip(), (name, row)


def test_status_classification() -> None:
    assert not is_provisional("VERIFIED_abstract")
    assert not is_provisional("VERIFIED (TG-292 Table IV)")
    for s in (
        "UNVERIFIED_recall",
        "PARTLY_VERIFIED",
        "SECONDARY",
        "CONVENTION_recall",
        "VERIFIED_abstract (half-times); ASSUMED (weights)",
    ):
        assert is_provisional(s), s


def test_defaults_and_values_copied_from_the_reference() -> None:
    # shared/reference/radiobiology/radbio_parameters.csv
    tumour, late = default_tissue("tumour"), default_tissue("late")
    assert (tumour.alpha_beta_gy, tumour.ci95_gy) == (2.88, (0.75, 5.01))  # Qi 2011
    assert tumour.status == "VERIFIED_abstract"
    assert late.alpha_beta_gy == 3.1 and is_provisional(late.status)  # Haviland 2013, recalled
    assert tissue_library()["breast_tumour_start10y"].alpha_beta_gy == 3.5
    assert tumour.repopulation is not None
    assert tumour.repopulation.parameters == Repopulation(0.08, 14.4, 0.0)
    # Fowler et al. 2004 abstract: medians 0.3 h (0.08-1.2) and 4 h (2.4->6)
    assert repair_library()["fowler2004_fast"].half_times_h == (0.3,)
    assert repair_library()["fowler2004_slow"].range_h == (2.4, 6.0)
    assert get_tissue("TUMOR") is tumour and get_tissue("late") is late


def test_library_schedules() -> None:
    lib = schedule_library()
    for sid in ("conventional-50-25", "START-B", "FAST-Forward", "boost-16-8", "ELIOT", "TARGIT"):
        assert sid in lib
    assert (lib["START-B"].total_dose_gy, lib["START-B"].n_fractions) == (40.0, 15)
    assert (lib["FAST-Forward"].total_dose_gy, lib["FAST-Forward"].n_fractions) == (26.0, 5)
    assert lib["TARGIT"].dose_definition == "TARGIT"
    assert get_schedule("start-b") is lib["START-B"]


def test_schedule_eqd2_hand_values() -> None:
    # START-B, alpha/beta 2.88: 40 (2.6667 + 2.88)/(2 + 2.88) = 45.464 Gy
    assert evaluate_schedule("START-B", "tumour").eqd2_gy == pytest.approx(45.464, abs=1e-3)
    # 50 Gy/25 + 16 Gy/8 (all 2 Gy fractions): EQD2 = 66 Gy for any alpha/beta
    regimen = evaluate_schedule("EORTC-boost", "late")
    assert regimen.eqd2_gy == pytest.approx(66.0, rel=1e-12)
    assert regimen.eqd2_gy == pytest.approx(sum(c.eqd2_gy for c in regimen.components))
    # ELIOT 21 Gy in 2 min, tumour: G(2 min, 0.3 h) = 0.97481 (x = 0.077016);
    # EQD2 = 21 (1 + 0.97481 * 21/2.88)/(1 + 2/2.88) = 100.49 Gy
    eliot = evaluate_schedule("ELIOT", "tumour")
    assert eliot.protraction_factor == pytest.approx(0.97481, abs=1e-5)
    assert eliot.eqd2_gy == pytest.approx(100.49, abs=0.01)


def test_targit_needs_a_dose_to_water() -> None:
    with pytest.raises(RadiobiologyError, match="TARGIT definition, not a dose to water"):
        evaluate_schedule("TARGIT", "tumour")
    with pytest.raises(RadiobiologyError, match="beam-on time"):
        evaluate_schedule("TARGIT", "tumour", dose_water_gy=24.0)
    res = evaluate_schedule("TARGIT", "tumour", dose_water_gy=24.0, delivery_time_min=30.0)
    assert res.total_dose_water_gy == 24.0


@pytest.mark.parametrize(
    ("diameter_cm", "pct_diff", "time_min"),
    # TG-292 Table IV: (V4.0 - TARGIT)/V4.0 at the surface, reported as integer %; beam-on
    # time 20 Gy / TARGIT rate as derived in shared/reference/xray_50kv/
    # intrabeam_treatment_times.csv (2 decimals)
    [(1.5, 30, 3.59), (3.0, 19, 20.15), (4.0, 16, 42.17), (5.0, 14, 73.80)],
)
def test_targit_conversion_matches_tg292(
    diameter_cm: float, pct_diff: int, time_min: float
) -> None:
    conv = targit_to_water(diameter_cm)
    assert 100 * (1 - 1 / conv.ratio_v40_over_targit) == pytest.approx(pct_diff, abs=0.5)
    assert conv.delivery_time_min == pytest.approx(time_min, abs=0.005)
    res = evaluate_schedule("TARGIT", "tumour", applicator_diameter_cm=diameter_cm)
    assert res.total_dose_water_gy == pytest.approx(20.0 * conv.ratio_v40_over_targit)
    assert any("one example source" in w for w in res.warnings)


def test_provisional_numbers_are_surfaced() -> None:
    late = evaluate_schedule("START-B", "late")
    assert any("UNVERIFIED_recall" in w and "3.1" in w for w in late.warnings)
    usc = evaluate_schedule("FAST-Forward", "tumour", model=ModelChoice("usc"))
    assert any("NOT breast" in w for w in usc.warnings)
    boost = evaluate_schedule("boost-16-8", "tumour")
    assert any("8 fractions" in w for w in boost.warnings)
    with pytest.raises(RadiobiologyError, match="late-responding"):
        evaluate_schedule("START-B", "late", model=ModelChoice("usc"))


def test_bad_schedule_input() -> None:
    with pytest.raises(RadiobiologyError, match="unknown schedule"):
        get_schedule("START-Z")
    with pytest.raises(RadiobiologyError, match="unknown tissue"):
        evaluate_schedule("START-B", "liver")
    with pytest.raises(RadiobiologyError, match="n_fractions must be >= 1"):
        custom_schedule(20.0, 0)
    with pytest.raises(RadiobiologyError, match=r"no TARGIT/V4\.0 surface data"):
        targit_to_water(3.2)
