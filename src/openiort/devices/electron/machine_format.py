"""The machine-data format of an electron IORT linac: the YAML file's model and its JSON Schema.

One YAML file names the machine and points to CSV tables beside it (documented in
``docs/electron-machine-data.md``; ``iort schema --machine`` prints the schema). The tables:

- ``output_factors_csv``: ``applicator_cm,bevel_deg,energy_mev,cgy_per_mu``, one row per beam:
  absorbed dose to water per MU on the clinical axis at ``output_factor_depth_mm`` (``null``: at
  the depth of maximum dose).
- ``pdd_csv``: ``applicator_cm,bevel_deg,energy_mev,depth_mm,pdd_pct`` (beam data
  ``pdd_profiles``): the clinical-axis depth dose, 100 at its maximum.
- ``profiles_csv``: ``applicator_cm,bevel_deg,energy_mev,depth_mm,axis,off_axis_mm,relative_pct``
  (beam data ``pdd_profiles``): off-axis profiles at two or more depths, 100 on the clinical axis
  at that depth; ``axis`` ``x`` (the direction a bevelled beam leans to) or ``y`` (optional: the
  ``x`` profile made symmetric where it is missing).
- ``r90_csv`` (optional): ``applicator_cm,bevel_deg,energy_mev,r90_mm``, the measured R90 where
  it is not read off the PDD (3D Monte Carlo beam data with separately measured R90).
- ``second_check.csv`` (``second_check.kind: output_factors_csv``): independent output factors,
  same columns as ``output_factors_csv``, from data that do not share the primary's path.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from openiort.delivery import ChamberCorrection

FORMAT = "openiort-electron-machine-1"
# A hash written bare in YAML may read as a number (all digits): keep it as text.
Hash = Annotated[str, BeforeValidator(lambda v: v if v is None else str(v))]
ChamberMode = ChamberCorrection  # sealed, pressure, pressure_temperature, daily_output_check


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sourced(_Model):
    """A figure with where it comes from."""

    value: Any = Field(description="the figure")
    source: str = Field(description="where it comes from (publication, worksheet, measurement)")


class BeamOnTime(_Model):
    value: Annotated[float, Field(gt=0)]
    status: str
    source: str


class Calibration(_Model):
    """The reference beam of the output calibration."""

    applicator_cm: int
    bevel_deg: int
    cgy_per_mu: Annotated[float, Field(gt=0)]
    description: str


class MonitorChamber(_Model):
    """How the monitor chamber's reading is corrected for the air of the day.

    ``sealed``: no correction. ``pressure``: MU x P / P_ref. ``pressure_temperature``: MU x
    P / P_ref x T_ref / T (kelvin). ``daily_output_check``: the day's output factor, measured
    before treatment, replaces the air correction; between that check and the treatment the
    MU are corrected relative to the air at the check (the chamber is open).
    """

    correction: ChamberMode
    reference_pressure_hpa: Sourced | float | None = Field(
        None, description="air pressure of the calibration (pressure modes)"
    )
    reference_temperature_c: Sourced | float | None = Field(
        None, description="air temperature of the calibration (pressure_temperature mode)"
    )
    pressure_limits_hpa: Sourced | list[float] = Field(
        default=[870.0, 1085.0], description="plausible pressures (hPa) the worksheet accepts"
    )
    temperature_limits_c: Sourced | list[float] = Field(
        default=[10.0, 40.0], description="plausible temperatures (degC)"
    )


class SecondCheck(_Model):
    """The independent MU calculation's data: not the primary's output-factor table."""

    kind: Literal["monte_carlo_output_factor", "output_factors_csv"]
    csv: str | None = Field(None, description="independent output factors (output_factors_csv)")
    description: str = Field(description="what the data are and why they are independent")


class MachineFile(_Model):
    """An electron IORT machine: identity, settings, beam data, output, chamber, discs."""

    format: Literal["openiort-electron-machine-1"] = Field(description="format and its version")
    status: Literal["example", "department"] = Field(
        description="example: published data built into openiort, never approvable; "
        "department: commissioned by the department (identity keys required)"
    )
    name: str
    manufacturer: str
    model: str
    serial: str | None = Field(None, description="the machine's serial number")
    version: str | None = Field(None, description="the department's version of these data")
    effective_date: dt.date | str | None = Field(None, description="from when plans use them")
    commissioned_by: str | None = None
    citations: list[str] = Field(default_factory=list)
    applicators_cm: list[int] = Field(min_length=1, description="applicator diameters (cm)")
    bevels_deg: list[int] = Field(min_length=1)
    energies_mev: list[int] = Field(min_length=1)
    beam_data_kind: Literal["dose_3d", "pdd_profiles"]
    beam_data_file: str | None = Field(None, description="dose_3d: compact .npz of 3D dose")
    beam_data_sha256: Hash | None = Field(None, description="dose_3d: SHA-256 of that file")
    source_sha256: Hash | None = Field(None, description="dose_3d: SHA-256 of the source set")
    pdd_csv: str | None = None
    profiles_csv: str | None = None
    output_factors_csv: str
    output_factor_depth_mm: Annotated[float, Field(gt=0)] | None = Field(
        None, description="depth of the output factors on the clinical axis; null: at zmax"
    )
    calibration: Calibration
    r90_csv: str | None = None
    second_check: SecondCheck
    monitor_chamber: MonitorChamber
    max_dose_cgy: Sourced | float
    typical_beam_on_time_min: BeamOnTime = Field(
        description="typical beam-on time of one fraction (min) with its status and source: "
        "the radiobiological protraction factor only, never the delivery"
    )
    discs_file: str = Field(
        description="shielding discs (YAML: materials, thicknesses, "
        "diameters, transmission and backscatter with sources)"
    )
    data_notes: list[str] = Field(default_factory=list)


def machine_json_schema() -> dict[str, Any]:
    """The JSON Schema of the machine file (``iort schema --machine``)."""
    schema = MachineFile.model_json_schema()
    schema["title"] = "openiort electron machine data"
    schema["$comment"] = (
        "YAML; the tables it names are CSV files beside it (docs/electron-machine-data.md)"
    )
    return schema
