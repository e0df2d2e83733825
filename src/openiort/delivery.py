"""What the console needs, one frozen model per technique, at the device's reference conditions.

A delivery is what approval seals. The conditions of one treatment day (pressure, temperature,
source decay, the daily output) are not in it: they are a :class:`openiort.session.TreatmentSession`
from which the day's console values are derived without touching the sealed plan.

Every delivery names the device data it was computed with (:class:`DeviceDataRef`): example
data built into openiort, or data commissioned by the department. A plan computed with example
data says so wherever it is shown and cannot be approved for treatment.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Technique = Literal["xray", "electron", "hdr"]
DataStatus = Literal["example", "department"]
# How the electron monitor chamber's reading is corrected for the air of the day; with
# "daily_output_check" the day's measured output carries it (openiort.session).
ChamberCorrection = Literal["sealed", "pressure", "pressure_temperature", "daily_output_check"]
Vector3 = tuple[float, float, float]

Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Finite = Annotated[float, Field(allow_inf_nan=False)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeviceDataRef(_Frozen):
    """The device data behind a plan: which, whose, which version, and their hash."""

    name: str = Field(description="device or data-set name, e.g. 'LIAC HWL'")
    status: DataStatus = Field(
        description="example: built in for demonstration, never approvable; department: "
        "commissioned by the department"
    )
    version: str | None = None
    effective_date: str | None = Field(None, description="ISO date the data took effect")
    commissioned_by: str | None = None
    serial: str | None = Field(None, description="device or source serial number")
    sha256: str = Field(description="SHA-256 of the data files the plan was computed with")

    @property
    def is_example(self) -> bool:
        return self.status == "example"


class XrayDelivery(_Frozen):
    """50 kV miniature x-ray source with a spherical applicator."""

    technique: Literal["xray"] = "xray"
    device: DeviceDataRef
    applicator_diameter_cm: Positive
    treatment_time_min: Positive = Field(
        description="time at the source's reference output (daily output factor 1)"
    )
    prescription_gy: Positive
    dose_definition: Literal["TARGIT", "V4.0"]


class ElectronPlacement(_Frozen):
    """Where the applicator stands on the phantom or patient, and what lies in the beam."""

    entry_point_mm: Vector3 = Field(description="clinical axis on the gland surface (LPS mm)")
    axis: Vector3 = Field(description="unit vector into the tissue along the beam")
    bevel_direction: Vector3 | None = None
    bolus_mm: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0
    density_scaling: bool = True
    disc_type: str | None = None
    disc_depth_mm: Positive | None = None
    disc_diameter_mm: Positive | None = None
    disc_centre_xy_mm: tuple[Finite, Finite] = (0.0, 0.0)


class ElectronDelivery(_Frozen):
    """Mobile electron linac: applicator, bevel, energy and monitor units."""

    technique: Literal["electron"] = "electron"
    device: DeviceDataRef
    applicator_diameter_cm: Positive
    bevel_deg: Annotated[float, Field(ge=0, lt=90)]
    energy_mev: Positive
    monitor_units: Annotated[int, Field(gt=0)] = Field(
        description="MU at the monitor chamber's reference conditions"
    )
    monitor_units_exact: Positive
    output_factor_cgy_per_mu: Positive
    prescription_gy: Positive
    isodose_pct: Annotated[float, Field(gt=0, le=100)]
    dose_max_gy: Positive = Field(description="dose at the clinical-axis maximum in water")
    chamber_correction_mode: ChamberCorrection
    chamber_correction_factor: Positive = Field(
        1.0, description="air correction already in monitor_units (1 at reference conditions)"
    )
    reference_pressure_hpa: Positive | None = None
    reference_temperature_c: Finite | None = None
    placement: ElectronPlacement


class HdrDwell(_Frozen):
    """One dwell: channel, position, direction (cable to tip) and time at the reference strength."""

    channel: Annotated[int, Field(ge=0)]
    position_mm: Vector3
    direction: Vector3
    time_s: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    from_tip_mm: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = Field(
        None, description="position along the channel from its tip, as the afterloader counts"
    )


class HdrDelivery(_Frozen):
    """Ir-192 stepping source: dwell times at the source's reference air-kerma strength."""

    technique: Literal["hdr"] = "hdr"
    device: DeviceDataRef
    source_id: str
    applicator: str
    air_kerma_strength_u: Positive = Field(description="S_K at the reference date (U)")
    strength_reference_utc: str | None = Field(
        None, description="date and time of S_K (the certificate's); None for the example source"
    )
    prescription_gy: Positive = Field(description="dose per fraction (Gy)")
    dwells: tuple[HdrDwell, ...] = Field(min_length=1)
    fractions: Annotated[int, Field(ge=1)] = 1
    min_interval_h: Positive | None = Field(
        None, description="least time between two fractions of the course (h)"
    )
    afterloader_name: str | None = None
    source_model_name: str | None = Field(None, description="the source model's real name")
    channel_length_mm: Positive | None = Field(
        None, description="afterloader channel length to the channel tip (mm)"
    )
    applicator_model: str | None = Field(
        None, description="the applicator model of hdr_protocol.yaml (e.g. multi_lumen_balloon_4)"
    )
    applicator_length_mm: Positive | None = None
    tip_offset_mm: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = Field(
        None, description="channel tip to the most distal possible dwell position (mm)"
    )
    dose_reference_point_mm: Vector3 | None = Field(
        None, description="a prescription point (LPS mm): the dose there is the prescription"
    )

    @property
    def total_time_s(self) -> float:
        return sum(d.time_s for d in self.dwells)


Delivery = Annotated[
    XrayDelivery | ElectronDelivery | HdrDelivery, Field(discriminator="technique")
]


class _DeliveryOf(_Frozen):
    delivery: Delivery


def parse_delivery(data: object) -> XrayDelivery | ElectronDelivery | HdrDelivery:
    """A delivery from its JSON form (plan.json's ``delivery`` block), technique by technique."""
    return _DeliveryOf.model_validate({"delivery": data}).delivery
