"""The air correction of an open monitor chamber: one formula for the planner and the console."""

from __future__ import annotations

KELVIN_OFFSET = 273.15  # degrees Celsius to kelvin (definition of the Celsius scale)


def air_density_factor(
    pressure_hpa: float,
    reference_pressure_hpa: float,
    temperature_c: float | None = None,
    reference_temperature_c: float | None = None,
) -> float:
    """Factor by which the monitor units scale for the air of the day (1 at reference).

    An open monitor chamber reads less at lower air density, so each MU delivers more dose:
    MU scale with P / P_ref and, when both temperatures are given, with T_ref / T (kelvin).
    """
    factor = pressure_hpa / reference_pressure_hpa
    if temperature_c is not None and reference_temperature_c is not None:
        factor *= (reference_temperature_c + KELVIN_OFFSET) / (temperature_c + KELVIN_OFFSET)
    return float(factor)
