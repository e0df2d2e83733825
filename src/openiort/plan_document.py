"""plan.json as a typed document with a published JSON Schema (`iort schema --plan`).

One model per technique (:class:`XrayPlanDocument`, :class:`ElectronPlanDocument`,
:class:`HdrPlanDocument`), told apart by ``technique``: the blocks every plan has
(:class:`PlanDocumentBase`), the technique's typed delivery, and the technique's plan figures
(:mod:`openiort.plan_figures`) as top-level keys: each document is a subclass of its
technique's figures model, so a reader takes the figures from the document itself. Only the
report sections (``clinical``, ``radiobiology``, ``engine_comparison``) keep their own shapes; any
other top-level key is refused.

:meth:`openiort.plan.PlanResult.to_json_dict` validates what it writes, so a key renamed in one
place fails at the source, not in a reader; readers take :func:`parse_plan_document`'s typed
result instead of looking keys up by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from openiort.delivery import ElectronDelivery, HdrDelivery, XrayDelivery
from openiort.plan_figures import ElectronFigures, HdrFigures, XrayFigures

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


class VoxelCentreFigures(_Block):
    mean_gy: Number
    max_gy: Number
    voxels: int = Field(ge=1, description="dose voxels whose centre lies in the structure")


class DoseBlock(_Block):
    unit: Literal["Gy"]
    medium: str = Field(description="water_in_water, medium_in_medium or water_in_medium")
    medium_label: str
    per_session: bool
    normalisation: str
    grid: GridBlock
    notes: list[str]
    dvh_method: str | None = Field(None, description="how metrics and voxel_centre are computed")
    voxel_centre: dict[str, VoxelCentreFigures] | None = Field(
        None, description="per structure, what a voxel-centre reader of the RT Dose gets"
    )


class Provenance(_Block):
    engine: str
    engine_version: str
    device_data: str
    device_data_sha256: str
    inputs_sha256: str
    calibration: str


class Constraint(_Block):
    """One organ-at-risk limit checked on the plan (openiort.evaluation.limits).

    The fields after ``verification`` are absent in plans made before limits named their
    metric and dose definition (those plans' "Dmax" was D0.03cc, checked on the plan's dose).
    """

    structure: str
    metric: str = Field(
        description="named exactly: Dmax (hottest voxel), Dmean, D<v>cc (D0.03cc, D0.1cc, "
        "D1cc), V<d>Gy, V<p>%Rx"
    )
    limit_value: Number
    limit_unit: str = Field(
        description="Gy, %Rx (percent of the prescription), cc, or % (of the structure)"
    )
    value: Number | None = Field(description="in limit_unit; null when not checked")
    passed: bool | None = Field(description="null when not checked (see note)")
    source: str
    verification: str = Field(description="verified: <where>, secondary, recalled, ...")
    metric_label: str | None = Field(None, description="what the metric is, in words")
    dose_definition: str | None = Field(
        None, description="the dose the value is computed from: TARGIT, V4.0, water or medium"
    )
    dose_label: str | None = Field(None, description="the dose definition in words, per fraction")
    published_as: str | None = Field(
        None, description="the dose the limit was published in, when not dose_definition"
    )
    evidence: str | None = Field(
        None, description="consensus, trial protocol, single series, adopted, department, ..."
    )
    limit_set: str | None = Field(
        None, description="which set the limit is from (IORT defaults, a department file)"
    )
    note: str | None = Field(None, description="why a limit was not checked, if it was not")


class AppliedDefault(_Block):
    """A value the case did not give that the planner supplied: never silent (plan.json and
    the command line list every one)."""

    field: str = Field(
        description="the case field (e.g. intent.prescription_gy) or planner setting "
        "(e.g. electron.isodose_pct) that was not given"
    )
    value: float | str = Field(description="the value used in its place")
    why: str = Field(description="where the value comes from (its source or the project rule)")


class Uncertainty(_Block):
    statement: str
    components: list[dict[str, str]]


class PlanDocumentBase(BaseModel):
    """What every plan.json holds, whatever its technique."""

    model_config = ConfigDict(extra="forbid")

    notice: str = Field(description="research software, not a medical device")
    software: Software
    case_id: str
    status: Literal["draft", "reviewed", "approved", "delivered"]
    created_utc: str
    device: dict[str, Any] = Field(description="the device data used, as the technique states it")
    prescription: Prescription
    dose_at_depth_gy: dict[str, Number] = Field(
        description="keyed by the depth in whole mm from the applicator surface, in the "
        "prescription's dose definition"
    )
    dose_at_depth_water_gy: dict[str, Number]
    dose: DoseBlock
    metrics: dict[str, dict[str, Number]] = Field(description="per structure (Gy, cc, %)")
    constraints: list[Constraint]
    warnings: list[str]
    defaults_applied: list[AppliedDefault] = Field(
        default_factory=list,
        description="every value the case did not give that the planner supplied (the "
        "prescription, the dose definition, phantom dimensions, ...), with where it comes "
        "from; empty when the case gave everything (absent in plans made before it)",
    )
    provenance: Provenance
    uncertainty: Uncertainty
    phantom: dict[str, Any] = Field(description="what the phantom or CT was built from")
    # The report sections, each in its own shape (documented with the section).
    clinical: dict[str, Any] | None = Field(
        None, description="guideline verdicts and the patient's choices (openiort.clinical)"
    )
    radiobiology: dict[str, Any] | None = Field(
        None, description="BED/EQD2 at depth and its sensitivity (openiort.radiobiology)"
    )
    mu_worksheet: dict[str, Any] | None = Field(
        None,
        description="electron plans: the MU hand calculation line by line and the independent "
        "check's own line (openiort.devices.electron.worksheet)",
    )
    engine_comparison: dict[str, Any] | None = Field(
        None,
        description="another engine's dose for the same delivery beside the plan's "
        "(iort plan --compare-with; x-ray Monte Carlo plans: the water table)",
    )
    mc_comparison: dict[str, Any] | None = Field(
        None, description="x-ray Monte Carlo plans made before engine_comparison (older plans)"
    )


class XrayPlanDocument(PlanDocumentBase, XrayFigures):
    """plan.json of a 50 kV x-ray plan."""

    technique: Literal["xray"]
    delivery: XrayDelivery


class ElectronPlanDocument(PlanDocumentBase, ElectronFigures):
    """plan.json of an electron plan."""

    technique: Literal["electron"]
    delivery: ElectronDelivery


class HdrPlanDocument(PlanDocumentBase, HdrFigures):
    """plan.json of an HDR plan."""

    technique: Literal["hdr"]
    delivery: HdrDelivery


AnyPlanDocument = XrayPlanDocument | ElectronPlanDocument | HdrPlanDocument
PlanDocument = Annotated[AnyPlanDocument, Field(discriminator="technique")]
"""plan.json: every number the report shows, and the delivery that approval seals."""

_DOCUMENT: TypeAdapter[AnyPlanDocument] = TypeAdapter(PlanDocument)
SECTION_KEYS = ("clinical", "radiobiology", "engine_comparison", "mc_comparison")


def parse_plan_document(data: Mapping[str, Any]) -> AnyPlanDocument:
    """plan.json as its technique's typed document (raises pydantic's ValidationError).

    ``data`` is the document alone: a store that keeps other keys beside it (the treatment
    record's file hashes, an export's approval and seal block) leaves them out first.
    """
    return _DOCUMENT.validate_python(data)


def plan_json_schema() -> dict[str, Any]:
    """The JSON Schema of plan.json (one branch per technique, chosen by ``technique``)."""
    schema = _DOCUMENT.json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "openiort plan.json",
        "description": (
            "A plan as openiort writes it: the blocks every plan has, the technique's delivery "
            "(what the console needs, what approval seals) and plan figures, and the report "
            "sections. Research software, not a medical device."
        ),
        **schema,
    }


def validated_plan_json(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` checked against :data:`PlanDocument` (raises pydantic's ValidationError)."""
    parse_plan_document(data)
    return data
