"""plan.json as a typed document with a published JSON Schema (`iort schema --plan`).

:meth:`openiort.plan.PlanResult.to_json_dict` validates what it writes against
:class:`PlanDocument`, so a key renamed in one place fails at the source, not in a reader.
The blocks every plan has are typed here; each technique's own figures (the x-ray second check,
the electron beam characteristics, the HDR dwell table summary, ...) are further top-level keys
documented with the technique, and the report sections (``clinical``, ``radiobiology``,
``mc_comparison``) keep their own shapes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from openiort.delivery import Delivery

Number = float


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Software(_Block):
    name: Literal["openiort"]
    version: str


class Prescription(_Block):
    dose_gy: Number = Field(gt=0, description="per fraction")
    dose_definition: str | None = Field(
        description="x-ray: TARGIT or V4.0 (AAPM TG-292); null for other techniques"
    )
    point: str = Field(description="where the prescription applies")


class GridBlock(_Block):
    origin_mm: tuple[Number, Number, Number] = Field(description="x, y, z of voxel [0,0,0] (LPS)")
    spacing_mm: tuple[Number, Number, Number]
    shape_zyx: tuple[int, int, int]


class DoseBlock(_Block):
    unit: Literal["Gy"]
    medium: str = Field(description="water_in_water, medium_in_medium or water_in_medium")
    medium_label: str
    per_session: bool
    normalisation: str
    grid: GridBlock
    notes: list[str]


class Provenance(_Block):
    engine: str
    engine_version: str
    device_data: str
    device_data_sha256: str
    inputs_sha256: str
    calibration: str


class Constraint(_Block):
    structure: str
    metric: str
    limit_value: Number
    limit_unit: str
    value: Number
    passed: bool
    source: str
    verification: str


class Uncertainty(_Block):
    statement: str
    components: list[dict[str, str]]


class PlanDocument(BaseModel):
    """plan.json: every number the report shows, and the delivery that approval seals."""

    model_config = ConfigDict(extra="allow")

    notice: str = Field(description="research software, not a medical device")
    software: Software
    case_id: str
    technique: Literal["xray", "electron", "hdr"]
    status: Literal["draft", "reviewed", "approved", "delivered"]
    created_utc: str
    device: dict[str, Any] = Field(description="the device data used, as the technique states it")
    prescription: Prescription
    delivery: Delivery
    dose_at_depth_gy: dict[str, Number] = Field(
        description="keyed by the depth in whole mm from the applicator surface, in the "
        "prescription's dose definition"
    )
    dose_at_depth_water_gy: dict[str, Number]
    dose: DoseBlock
    metrics: dict[str, dict[str, Number]] = Field(description="per structure (Gy, cc, %)")
    constraints: list[Constraint]
    warnings: list[str]
    provenance: Provenance
    uncertainty: Uncertainty
    phantom: dict[str, Any] = Field(description="what the phantom or CT was built from")


def plan_json_schema() -> dict[str, Any]:
    """The JSON Schema of plan.json."""
    return PlanDocument.model_json_schema()


def validated_plan_json(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` checked against :class:`PlanDocument` (raises pydantic's ValidationError)."""
    PlanDocument.model_validate(data)
    return data
