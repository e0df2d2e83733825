"""The monitor-unit hand calculation of an electron plan, line by line, and its second check.

A physicist recomputes the MU from these lines alone: dose, isodose, output factor (with the
bevel's share of it and the air gap), the monitor chamber's air factor in the machine's own mode,
the rescale factor, the rounded MU; then the independent check from its own data (the Monte
Carlo output factor of the example LIAC HWL, or a department's independent table), which shares
only the prescription and the air factor with the primary.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from openiort.devices.electron.device import ElectronDevice

SEA_LEVEL_HPA = 1013.25  # standard atmosphere: the example line of the console's pressure scaling


class WorksheetLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    quantity: str
    value: str
    note: str = ""


class MuWorksheet(BaseModel):
    """The hand calculation (primary) and the independent check, as lines of text."""

    model_config = ConfigDict(frozen=True)

    machine: str
    example_machine: bool
    formula: str
    lines: list[WorksheetLine]
    second_check: list[WorksheetLine]
    console_note: str

    def to_dict(self) -> dict[str, object]:
        return self.model_dump(mode="json")


def _air_text(device: ElectronDevice, pressure_hpa: float, temperature_c: float | None) -> str:
    mode = device.chamber_correction_mode
    if mode == "sealed":
        return "sealed monitor chamber: no air correction"
    if mode == "daily_output_check":
        return "the day's output check carries the air (applied at the console)"
    text = f"P / P_ref = {pressure_hpa:g} / {device.reference_pressure_hpa:g} hPa"
    if mode == "pressure_temperature" and temperature_c is not None:
        text += (
            f" x (T_ref + 273.15) / (T + 273.15) = ({device.reference_temperature_c:g} + 273.15)"
            f" / ({temperature_c:g} + 273.15)"
        )
    return text


def mu_worksheet(
    device: ElectronDevice,
    *,
    prescription_gy: float,
    isodose_pct: float,
    applicator_cm: int,
    bevel_deg: int,
    energy_mev: int,
    pressure_hpa: float,
    temperature_c: float | None,
    chamber_correction: float,
    rescale: float,
    monitor_units: int,
    monitor_units_exact: float,
    check_output_factor: float,
    check_monitor_units: int,
    check_difference_pct: float,
    check_action_level_pct: float,
) -> MuWorksheet:
    """The lines of the plan's MU calculation (figures as the plan holds them)."""
    dose_cgy = prescription_gy * 100.0
    at_max = dose_cgy / (isodose_pct / 100.0)
    of = device.output_factor(applicator_cm, bevel_deg, energy_mev)
    flat_bevel = min(device.bevels_deg)
    of_flat = device.output_factor(applicator_cm, flat_bevel, energy_mev)
    reference_mu = at_max / of * rescale
    setting = f"{applicator_cm} cm, {bevel_deg} deg, {energy_mev} MeV"
    lines = [
        WorksheetLine(quantity="dose D", value=f"{dose_cgy:g} cGy", note="prescription"),
        WorksheetLine(quantity="isodose", value=f"{isodose_pct:g} %", note="prescription isodose"),
        WorksheetLine(
            quantity="dose at the maximum D / (isodose / 100)",
            value=f"{at_max:.1f} cGy",
            note="clinical axis, depth of maximum dose",
        ),
        WorksheetLine(
            quantity=f"output factor OF ({setting})",
            value=f"{of:.4g} cGy/MU",
            note=f"measured table of {device.name}, at the dose maximum; it includes the two "
            "factors below",
        ),
        WorksheetLine(
            quantity=f"  bevel factor OF / OF({applicator_cm} cm, {flat_bevel} deg)",
            value=f"{of / of_flat:.4f}",
            note=f"flat applicator {of_flat:.4g} cGy/MU",
        ),
        WorksheetLine(
            quantity="  air-gap factor",
            value="1.0000",
            note="applicator in contact with the gland (no stand-off)",
        ),
        WorksheetLine(
            quantity="MU at the chamber's reference air D / (isodose / 100) / OF x rescale",
            value=f"{reference_mu:.2f} MU",
            note=f"rescale {rescale:g}",
        ),
        WorksheetLine(
            quantity="air factor k_air",
            value=f"{chamber_correction:.5f}",
            note=_air_text(device, pressure_hpa, temperature_c),
        ),
        WorksheetLine(
            quantity="MU = reference MU x k_air, rounded",
            value=f"{monitor_units} MU",
            note=f"unrounded {monitor_units_exact:.2f}",
        ),
    ]
    if device.chamber_correction_mode in ("pressure", "pressure_temperature"):
        sea = reference_mu * SEA_LEVEL_HPA / device.reference_pressure_hpa
        lines.append(
            WorksheetLine(
                quantity=f"  the same at {SEA_LEVEL_HPA:g} hPa (sea level)",
                value=f"{round(sea)} MU",
                note=f"reference MU x {SEA_LEVEL_HPA:g} / {device.reference_pressure_hpa:g}",
            )
        )
    check_mu_exact = at_max / check_output_factor * rescale * chamber_correction
    check = [
        WorksheetLine(
            quantity="independent output factor",
            value=f"{check_output_factor:.4g} cGy/MU",
            note=device.second_check_method,
        ),
        WorksheetLine(
            quantity="check MU = D / (isodose / 100) / OF_check x rescale x k_air",
            value=f"{check_monitor_units} MU",
            note=f"unrounded {check_mu_exact:.2f}",
        ),
        WorksheetLine(
            quantity="difference from the primary",
            value=f"{check_difference_pct:+.2f} %",
            note=f"action level {check_action_level_pct:g} %",
        ),
    ]
    mode = device.chamber_correction_mode
    console = {
        "sealed": "The console MU are the plan's MU (sealed chamber); a daily output factor, "
        "where one is applied, divides them.",
        "pressure": "At the console: MU today = reference MU x P_today / "
        f"{device.reference_pressure_hpa:g} hPa (iort console PLAN --pressure-hpa P).",
        "pressure_temperature": "At the console: MU today = reference MU x P_today / "
        f"{device.reference_pressure_hpa:g} hPa x ({device.reference_temperature_c} + 273.15) / "
        "(T_today + 273.15) (iort console PLAN --pressure-hpa P --temperature-c T).",
        "daily_output_check": "At the console: MU today = reference MU / the day's output factor, "
        "corrected for the air between the output check and the treatment "
        "(iort console PLAN --output-factor F [--pressure-hpa P --check-pressure-hpa P_check]).",
    }[mode]
    return MuWorksheet(
        machine=device.label,
        example_machine=device.is_example,
        formula="MU = D / (isodose / 100) / OF x rescale x k_air",
        lines=lines,
        second_check=check,
        console_note=console,
    )
