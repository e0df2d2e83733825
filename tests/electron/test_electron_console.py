"""The day's monitor units in the machine's own chamber mode; the air is never corrected twice.

Deliveries are built here from the machines' data (not planned), so that the console arithmetic
is checked independently of the planner's choice of beam.
"""

from __future__ import annotations

import datetime as dt

import pytest

from openiort.delivery import ElectronDelivery, ElectronPlacement
from openiort.devices.electron import ElectronDevice, load_electron_device, load_machine_data
from openiort.planning.electron import MuRequest, calculate_mu
from openiort.session import SessionError, TreatmentSession, console_values

DAY = dt.datetime(2026, 12, 7, 9, 30, tzinfo=dt.UTC)
KELVIN = 273.15


def delivery_of(
    dev: ElectronDevice, a: int, b: int, e: int, mode: str | None = None
) -> ElectronDelivery:
    """21 Gy to the 90 % isodose at the machine's reference air, as the planner seals it."""
    mu = calculate_mu(MuRequest(2100, a, b, e, dev.reference_pressure_hpa), dev)
    mode = mode or dev.chamber_correction_mode
    pressure_modes = ("pressure", "pressure_temperature")
    return ElectronDelivery(
        device=dev.data_ref(),
        applicator_diameter_cm=a,
        bevel_deg=b,
        energy_mev=e,
        monitor_units=mu.monitor_units,
        monitor_units_exact=mu.monitor_units_exact,
        output_factor_cgy_per_mu=mu.output_factor_cgy_per_mu,
        prescription_gy=21.0,
        isodose_pct=90,
        dose_max_gy=21.0 / 0.9,
        chamber_correction_mode=mode,  # type: ignore[arg-type]
        reference_pressure_hpa=dev.reference_pressure_hpa if mode in pressure_modes else None,
        reference_temperature_c=20.0 if mode == "pressure_temperature" else None,
        placement=ElectronPlacement(entry_point_mm=(0, 0, 0), axis=(0, 1, 0)),
    )


def today(d: ElectronDelivery, **conditions: float) -> float:
    return console_values(d, TreatmentSession(at_utc=DAY, **conditions)).settings[0].today


def test_example_machine_pressure_only_worksheet() -> None:
    d = delivery_of(load_electron_device(), 6, 45, 12)
    assert d.monitor_units == 1608  # 2100 / 0.9 / 1.451 at 934.7 hPa
    assert today(d, pressure_hpa=934.7) == 1608
    assert today(d, pressure_hpa=1013.0) == 1743  # the worksheet's hand calculation
    with pytest.raises(SessionError, match="pressure only"):
        today(d, pressure_hpa=1013.0, temperature_c=22.0)
    with pytest.raises(SessionError, match="corrected twice"):
        today(d, pressure_hpa=1013.0, output_factor=1.0)
    with pytest.raises(SessionError, match="daily output check"):
        today(d, pressure_hpa=1013.0, output_check_pressure_hpa=1000.0)


def test_pressure_and_temperature_mode() -> None:
    d = delivery_of(load_electron_device(), 6, 45, 12, mode="pressure_temperature")
    expected = d.monitor_units_exact * 1013.0 / 934.7 * (20.0 + KELVIN) / (25.0 + KELVIN)
    assert today(d, pressure_hpa=1013.0, temperature_c=25.0) == round(expected)
    with pytest.raises(SessionError, match="give the day's temperature"):
        today(d, pressure_hpa=1013.0)


def test_sealed_chamber_takes_no_air() -> None:
    d = delivery_of(load_electron_device(), 6, 45, 12, mode="sealed")
    assert today(d) == d.monitor_units
    assert today(d, output_factor=1.02) == round(d.monitor_units_exact / 1.02)
    with pytest.raises(SessionError, match="sealed"):
        today(d, pressure_hpa=1013.0)


def test_daily_output_check_corrects_only_the_air_since_the_check() -> None:
    dev = load_machine_data("mobetron_1000")
    d = delivery_of(dev, 6, 0, 9)
    assert d.chamber_correction_mode == "daily_output_check"
    assert d.reference_pressure_hpa is None  # no reference air to correct against
    exact = d.monitor_units_exact
    # the day's output factor holds the air of the check: MU / F, nothing else
    assert today(d, output_factor=0.98) == round(exact / 0.98)
    # the air changed between the check and the treatment: P / P_check (never P / P_ref)
    assert today(d, output_factor=0.98, pressure_hpa=1005.0, output_check_pressure_hpa=1010.0) == (
        round(exact / 0.98 * 1005.0 / 1010.0)
    )
    both = today(
        d,
        output_factor=0.98,
        pressure_hpa=1005.0,
        output_check_pressure_hpa=1010.0,
        temperature_c=24.0,
        output_check_temperature_c=21.0,
    )
    assert both == round(exact / 0.98 * 1005.0 / 1010.0 * (21.0 + KELVIN) / (24.0 + KELVIN))
    with pytest.raises(SessionError, match="give its output factor"):
        today(d, pressure_hpa=1005.0)
    with pytest.raises(SessionError, match="or neither"):
        today(d, output_factor=0.98, pressure_hpa=1005.0)
