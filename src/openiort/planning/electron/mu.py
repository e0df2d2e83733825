"""Monitor units: the worksheet calculation and its independent second check, from one request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from openiort.devices.electron import ElectronDevice, load_electron_device, planning_value
from openiort.devices.monitor_chamber import air_density_factor
from openiort.planning.electron.errors import ElectronPlanningError


def chamber_correction(
    device: ElectronDevice, pressure_hpa: float, temperature_c: float | None = None
) -> float:
    """Factor by which the monitor units scale for today's air (1 at reference conditions).

    An open monitor chamber reads less at lower air density, so each MU delivers more dose:
    MU scale with P / P_ref and, where the device corrects temperature, with T_ref / T (kelvin).
    """
    if device.chamber_correction_mode in ("sealed", "daily_output_check"):
        # No air input: a sealed chamber needs none; with the daily output check the day's
        # output factor carries the air (applied at the console, openiort.session).
        if pressure_hpa != device.reference_pressure_hpa or temperature_c is not None:
            raise ElectronPlanningError(
                f"{device.name}: the monitor chamber takes no pressure or temperature "
                f"({device.chamber_correction_mode.replace('_', ' ')}); leave them out"
            )
        return 1.0
    lo, hi = device.pressure_limits_hpa
    if not np.isfinite(pressure_hpa) or not lo <= pressure_hpa <= hi:
        raise ElectronPlanningError(
            f"air pressure {pressure_hpa} hPa is outside the plausible range {lo:g}-{hi:g} hPa "
            "(give the pressure measured today in hPa)"
        )
    if device.temperature_correction:
        if temperature_c is None:
            raise ElectronPlanningError(
                f"{device.name}: its monitor chamber is open to air and corrected for temperature; "
                "give today's temperature (temperature_c)"
            )
        tlo, thi = device.temperature_limits_c
        if not np.isfinite(temperature_c) or not tlo <= temperature_c <= thi:
            raise ElectronPlanningError(
                f"temperature {temperature_c} degC is outside the plausible range {tlo:g}-{thi:g} "
                "degC"
            )
        if device.reference_temperature_c is None:
            raise ElectronPlanningError(
                f"{device.name}: device data lack the reference temperature"
            )
        return air_density_factor(
            pressure_hpa,
            device.reference_pressure_hpa,
            temperature_c,
            device.reference_temperature_c,
        )
    if temperature_c is not None:
        raise ElectronPlanningError(
            f"{device.name}: the device worksheet applies no temperature correction; "
            "leave temperature_c unset"
        )
    return air_density_factor(pressure_hpa, device.reference_pressure_hpa)


def check_dose_inputs(
    device: ElectronDevice, dose_cgy: float, isodose_pct: float, rescale: float
) -> None:
    """Dose, prescription isodose and rescale factor within the worksheet's limits."""
    if not np.isfinite(dose_cgy) or dose_cgy <= 0:
        raise ElectronPlanningError(f"dose must be a positive number of cGy, got {dose_cgy}")
    if dose_cgy > device.max_dose_cgy:
        raise ElectronPlanningError(
            f"dose {dose_cgy:g} cGy exceeds the worksheet limit of {device.max_dose_cgy:g} cGy "
            "(the worksheet takes the dose in cGy)"
        )
    if not np.isfinite(isodose_pct) or not 0 < isodose_pct <= 100:
        raise ElectronPlanningError(
            f"prescription isodose must be in (0, 100] %, got {isodose_pct}"
        )
    if not np.isfinite(rescale) or rescale <= 0:
        raise ElectronPlanningError(f"rescale factor must be positive, got {rescale}")


@dataclass(frozen=True)
class MuRequest:
    """One monitor-unit calculation's inputs, shared by the worksheet calculation and the check.

    Attributes
    ----------
    dose_cgy:
        Prescribed dose in cGy at the ``isodose_pct`` isodose.
    applicator_cm, bevel_deg, energy_mev:
        Beam setting; must be in the device data.
    pressure_hpa:
        Air pressure today (hPa).
    isodose_pct:
        Prescription isodose, percent of the clinical-axis maximum.
    rescale:
        Per-beam rescale factor from commissioning (1 unless stated otherwise).
    temperature_c:
        Air temperature today, required only by devices that correct for it.
    """

    dose_cgy: float
    applicator_cm: float
    bevel_deg: float
    energy_mev: float
    pressure_hpa: float
    isodose_pct: float = 90
    rescale: float = 1.0
    temperature_c: float | None = None


@dataclass(frozen=True)
class MuCalculation:
    """One calculation: the output factor and air correction it used, and its monitor units."""

    output_factor_cgy_per_mu: float
    chamber_correction: float
    monitor_units_exact: float

    @property
    def monitor_units(self) -> int:
        """Rounded to the nearest integer, half to even (as the source worksheet)."""
        return round(self.monitor_units_exact)


def calculate_mu(
    request: MuRequest,
    device: ElectronDevice | None = None,
    *,
    output_factor_cgy_per_mu: float | None = None,
) -> MuCalculation:
    """Monitor units of ``request``: ``MU = D / OF / (isodose/100) * k_air * rescale``.

    ``k_air`` is :func:`chamber_correction` (``P / P_ref``, times ``T_ref / T`` where the device
    corrects temperature); ``output_factor_cgy_per_mu`` replaces the measured output factor (for
    the second check). ``device`` defaults to the built-in LIAC HWL.

    Raises
    ------
    ElectronSettingError
        Setting not in the data.
    ElectronPlanningError
        Dose, isodose, pressure, temperature or rescale out of range.
    """
    dev = device or load_electron_device()
    r = request
    dev.check_settings(r.applicator_cm, r.bevel_deg, r.energy_mev)
    check_dose_inputs(dev, r.dose_cgy, r.isodose_pct, r.rescale)
    of = (
        output_factor_cgy_per_mu
        if output_factor_cgy_per_mu is not None
        else dev.output_factor(r.applicator_cm, r.bevel_deg, r.energy_mev)
    )
    k_air = chamber_correction(dev, r.pressure_hpa, r.temperature_c)
    mu = float(r.dose_cgy / of / (r.isodose_pct / 100.0) * k_air * r.rescale)
    return MuCalculation(
        output_factor_cgy_per_mu=of, chamber_correction=k_air, monitor_units_exact=mu
    )


def monitor_units_exact(
    request: MuRequest,
    device: ElectronDevice | None = None,
    *,
    output_factor_cgy_per_mu: float | None = None,
) -> float:
    """Monitor units before rounding (see :func:`calculate_mu`)."""
    return calculate_mu(
        request, device, output_factor_cgy_per_mu=output_factor_cgy_per_mu
    ).monitor_units_exact


def monitor_units(request: MuRequest, device: ElectronDevice | None = None) -> int:
    """Monitor units for a prescription, as the clinic's worksheet computes them.

    :func:`calculate_mu`, rounded to the nearest integer (half to even, as the source
    worksheet). Example (device README): ``MuRequest(1250, 5, 45, 12, 950)`` (cGy, cm, deg, MeV,
    hPa) -> 920.
    """
    return calculate_mu(request, device).monitor_units


@dataclass(frozen=True)
class SecondCheck:
    """Independent MU calculation from the Monte Carlo output factor."""

    monitor_units: int
    monitor_units_exact: float
    output_factor_mc_cgy_per_mu: float
    output_factor_measured_cgy_per_mu: float
    difference_pct: float
    action_level_pct: float
    method: str

    @property
    def within_action_level(self) -> bool:
        return abs(self.difference_pct) <= self.action_level_pct

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["within_action_level"] = self.within_action_level
        return d


def second_check(request: MuRequest, device: ElectronDevice | None = None) -> SecondCheck:
    """Second MU calculation of the same request with the output factor from the Monte Carlo data.

    The MC output factor is the ratio of MC dose per history at the clinical-axis maximum to that
    of the calibration applicator, times the calibration; it shares only the calibration and the
    pressure reading with the primary calculation.
    """
    dev = device or load_electron_device()
    r = request
    primary = calculate_mu(r, dev).monitor_units_exact
    # The machine's independent data: Monte Carlo output factors, or the department's table.
    of_mc = dev.independent_output_factor(r.applicator_cm, r.bevel_deg, r.energy_mev)
    mu2 = calculate_mu(r, dev, output_factor_cgy_per_mu=of_mc).monitor_units_exact
    return SecondCheck(
        monitor_units=round(mu2),
        monitor_units_exact=mu2,
        output_factor_mc_cgy_per_mu=of_mc,
        output_factor_measured_cgy_per_mu=dev.output_factor(
            r.applicator_cm, r.bevel_deg, r.energy_mev
        ),
        difference_pct=100.0 * (mu2 - primary) / primary,
        action_level_pct=float(planning_value("second_check_action_level_pct")),
        method=dev.second_check_method,
    )
