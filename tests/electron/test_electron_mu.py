"""Monitor units for the electron device: the clinic's worked example and bad inputs."""

from __future__ import annotations

import pytest

from openiort.devices.electron import (
    ElectronSettingError,
    load_electron_device,
    with_monitor_chamber,
)
from openiort.planning.electron import (
    ElectronPlanningError,
    MuRequest,
    calculate_mu,
    chamber_correction,
    monitor_units,
    monitor_units_exact,
    second_check,
)


def test_worked_example_from_the_data_readme() -> None:
    # MU formula of tests/reference_data/electron_liac_hwl/README.md (copy from the reference
    # pack), worked example of the kali_mc worksheet test:
    # 1250 cGy, 5 cm, 45 deg, 12 MeV, 950 hPa -> 920 MU (OF 1.534 cGy/MU). Exact integer.
    assert monitor_units(MuRequest(1250, 5, 45, 12, 950)) == 920
    assert monitor_units_exact(MuRequest(1250, 5, 45, 12, 950)) == pytest.approx(
        1250 / 1.534 / 0.9 * 950 / 934.70, rel=1e-12
    )


def test_reference_pressure_and_scaling() -> None:
    dev = load_electron_device()
    assert dev.reference_pressure_hpa == pytest.approx(934.70)
    # at the calibration pressure the correction is 1: 2100 cGy / 1.0 / 0.9 = 2333.3 -> 2333
    assert monitor_units(MuRequest(2100, 10, 0, 6, 934.70)) == 2333
    # MU proportional to pressure (open monitor chamber), to 1/isodose and to rescale
    low, high = (monitor_units_exact(MuRequest(2100, 6, 15, 8, p)) for p in (900.0, 1000.0))
    assert high / low == pytest.approx(1000.0 / 900.0, rel=1e-12)
    assert monitor_units_exact(
        MuRequest(2100, 6, 15, 8, 950, isodose_pct=80)
    ) / monitor_units_exact(MuRequest(2100, 6, 15, 8, 950)) == pytest.approx(90 / 80, rel=1e-12)
    assert monitor_units_exact(MuRequest(2100, 6, 15, 8, 950, rescale=1.05)) / monitor_units_exact(
        MuRequest(2100, 6, 15, 8, 950)
    ) == pytest.approx(1.05, rel=1e-12)


def test_one_request_gives_factors_and_monitor_units() -> None:
    calc = calculate_mu(MuRequest(1250, 5, 45, 12, 950))
    assert calc.output_factor_cgy_per_mu == pytest.approx(1.534)
    assert calc.chamber_correction == pytest.approx(950 / 934.70, rel=1e-12)
    assert calc.monitor_units == 920
    assert calc.monitor_units_exact == pytest.approx(
        1250 / 1.534 / 0.9 * calc.chamber_correction, rel=1e-12
    )


def test_second_check_uses_the_monte_carlo_output_factor() -> None:
    check = second_check(MuRequest(1250, 5, 45, 12, 950))
    assert check.output_factor_measured_cgy_per_mu == pytest.approx(1.534)
    # MC and measured output factors agree within the 3 % action level for every beam
    assert check.within_action_level
    assert check.difference_pct == pytest.approx(
        100 * (1.534 / check.output_factor_mc_cgy_per_mu - 1), rel=1e-9
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"energy_mev": 7}, ElectronSettingError, "energy 7 MeV is not in the LIAC HWL data"),
        ({"applicator_cm": 11}, ElectronSettingError, "applicator 11 cm"),
        ({"bevel_deg": 22.5}, ElectronSettingError, "bevel 22.5 deg"),
        ({"pressure_hpa": 500}, ElectronPlanningError, "air pressure 500 hPa is outside"),
        ({"pressure_hpa": float("nan")}, ElectronPlanningError, "air pressure"),
        ({"dose_cgy": 0}, ElectronPlanningError, "positive number of cGy"),
        ({"dose_cgy": 21}, None, None),
        ({"dose_cgy": 21000}, ElectronPlanningError, "exceeds the worksheet limit"),
        ({"isodose_pct": 0}, ElectronPlanningError, "isodose"),
        ({"isodose_pct": 120}, ElectronPlanningError, "isodose"),
        ({"rescale": 0}, ElectronPlanningError, "rescale"),
    ],
)
def test_bad_inputs_give_clear_errors(kwargs: dict, error: type | None, match: str | None) -> None:
    args = {
        "dose_cgy": 2100,
        "applicator_cm": 5,
        "bevel_deg": 0,
        "energy_mev": 10,
        "pressure_hpa": 950,
    }
    args.update(kwargs)
    if error is None:
        assert monitor_units(MuRequest(**args)) > 0
        return
    assert issubclass(error, ValueError)
    with pytest.raises(error, match=match):
        monitor_units(MuRequest(**args))


def test_temperature_only_where_the_device_corrects_it() -> None:
    dev = load_electron_device()
    with pytest.raises(ElectronPlanningError, match="no temperature correction"):
        monitor_units(MuRequest(2100, 5, 0, 10, 950, temperature_c=22.0))
    open_chamber = with_monitor_chamber(
        dev, temperature_correction=True, reference_temperature_c=20.0
    )
    with pytest.raises(ElectronPlanningError, match="give today's temperature"):
        chamber_correction(open_chamber, 950.0)
    # k = P/P_ref * T_ref/T (kelvin): air at 30 degC is less dense than at 20 degC -> fewer MU
    k = chamber_correction(open_chamber, 950.0, 30.0)
    assert k == pytest.approx(950.0 / 934.70 * 293.15 / 303.15, rel=1e-12)
    mu = monitor_units_exact(MuRequest(2100, 5, 0, 10, 950, temperature_c=30.0), open_chamber)
    assert mu == pytest.approx(2100 / 1.419 / 0.9 * k, rel=1e-12)
    with pytest.raises(ElectronPlanningError, match="temperature 80"):
        chamber_correction(open_chamber, 950.0, 80.0)
