"""The case file: patient, preoperative findings, final pathology, anatomy and intent.

Field names, units and meanings follow the normative vocabulary in docs/architecture.md.
A value that is not known is ``None`` (``null`` in the file, or left out) and is never guessed.
Unknown keys are rejected so that a misspelt field cannot be silently ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from openiort.errors import OpenIortInputError

Laterality = Literal["left", "right"]
Quadrant = Literal["upper_outer", "upper_inner", "lower_outer", "lower_inner", "central"]
Histology = Literal[
    "ductal_nst", "lobular", "mucinous", "tubular", "medullary", "colloid", "dcis", "other"
]
ReceptorStatus = Literal["positive", "negative"]
ClinicalNodalStage = Literal["cN0", "cN1", "cN2", "cN3"]
PathologicalNodalStage = Literal["pN0", "pN0(i+)", "pN1mi", "pN1a", "pN2a", "pN3", "pNx"]
Grade = Annotated[int, Field(ge=1, le=3)]
Millimetres = Annotated[float, Field(ge=0, le=300)]
BreastCup = Literal["AA", "A", "B", "C", "D", "DD", "E", "F", "G"]
Technique = Literal["xray", "electron", "hdr"]
HdrApplicatorModel = Literal[
    "single_lumen_balloon", "multi_lumen_balloon_3", "multi_lumen_balloon_4", "surface"
]


# A CT's patient coordinates of a breast lie well within a metre of the scanner's origin; a
# larger magnitude is a slip (metres or micrometres, a pasted number), never a measurement.
COORDINATE_LIMIT_MM = 1000.0


class _Strict(BaseModel):
    # allow_inf_nan=False: NaN and +-inf (also "1e309", which reads as inf) are refused by
    # every float field of the case, whether it came from a file, the form or the API.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Patient(_Strict):
    id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
    age_years: Annotated[int, Field(ge=18, le=110)] | None = None
    brca_mutation: bool | None = None
    brca2_mutation: bool | None = None  # known BRCA2 specifically (TARGIT-A exclusion)
    prior_ipsilateral_cancer_or_rt: bool | None = None  # earlier cancer or RT in this breast


class Preoperative(_Strict):
    """What is known before surgery: imaging and core biopsy."""

    laterality: Laterality | None = None
    quadrant: Quadrant | None = None
    clock_position: Annotated[int, Field(ge=1, le=12)] | None = None
    nipple_distance_mm: Millimetres | None = None
    imaging_size_mm: Annotated[float, Field(ge=0, le=200)] | None = None
    lesion_count: Annotated[int, Field(ge=0, le=20)] | None = None
    biopsy_histology: Histology | None = None
    biopsy_grade: Grade | None = None
    biopsy_eic: bool | None = None
    er_status: ReceptorStatus | None = None
    pr_status: ReceptorStatus | None = None
    her2_status: ReceptorStatus | None = None
    anti_her2_therapy_planned: bool | None = None
    clinical_nodal_stage: ClinicalNodalStage | None = None
    screen_detected: bool | None = None
    neoadjuvant_therapy: bool | None = None
    neoadjuvant_weeks: Annotated[float, Field(ge=0, le=52)] | None = None
    bilateral_cancer: bool | None = None  # cancer in both breasts at diagnosis
    gross_nodal_disease: bool | None = None  # nodes clinically malignant or proven (cN1 or more)


class Pathology(_Strict):
    """Final pathology of the lumpectomy specimen."""

    histology: Histology | None = None
    size_mm: Annotated[float, Field(ge=0, le=200)] | None = None
    grade: Grade | None = None
    dcis_nuclear_grade: Literal["low", "intermediate", "high"] | None = None
    lvsi: Literal["none", "focal", "extensive"] | None = None
    eic: bool | None = None
    eic_size_mm: Annotated[float, Field(ge=0, le=200)] | None = None
    lcis_associated: bool | None = None
    centricity: Literal["unicentric", "multicentric"] | None = None
    focality: Literal["unifocal", "multifocal_within_20mm", "multifocal_beyond_20mm"] | None = None
    multifocal_total_size_mm: Annotated[float, Field(ge=0, le=200)] | None = None
    margin_mm: Annotated[float, Field(ge=0, le=100)] | None = None
    nodal_stage: PathologicalNodalStage | None = None
    positive_nodes: Annotated[int, Field(ge=0, le=100)] | None = None
    extranodal_extension: bool | None = None
    nodal_surgery: Literal["SLNB", "ALND", "none"] | None = None
    eic_pct_lumpectomy: Annotated[float, Field(ge=0, le=100)] | None = (
        None  # % of specimen with DCIS
    )


class Anatomy(_Strict):
    """Measurements of the operative site, in mm."""

    cavity_diameter_mm: Annotated[float, Field(ge=10, le=80)] | None = None
    skin_distance_mm: Annotated[float, Field(ge=0, le=100)] | None = None
    chest_wall_distance_mm: Annotated[float, Field(ge=0, le=100)] | None = None
    target_thickness_mm: Annotated[float, Field(ge=3, le=60)] | None = None
    target_width_mm: Annotated[float, Field(ge=10, le=150)] | None = None
    breast_cup: BreastCup | None = None
    breast_density: Literal["fatty", "scattered", "heterogeneous", "dense"] | None = None
    # Measured breast dimensions override the cup-size table when given.
    breast_base_diameter_mm: Annotated[float, Field(ge=60, le=300)] | None = None
    breast_projection_mm: Annotated[float, Field(ge=20, le=200)] | None = None
    # Planning on a CT: the cavity centre in the CT's patient coordinates (x, y, z mm, LPS);
    # when null the centroid of the RTSTRUCT's "cavity" structure is used.
    cavity_centre_mm: tuple[float, float, float] | None = None

    @field_validator("cavity_centre_mm")
    @classmethod
    def _centre_within_reach(
        cls, value: tuple[float, float, float] | None
    ) -> tuple[float, float, float] | None:
        if value is not None:
            for axis, v in zip("xyz", value, strict=True):
                if abs(v) > COORDINATE_LIMIT_MM:
                    raise ValueError(
                        f"{axis} = {v:g} mm is outside +-{COORDINATE_LIMIT_MM:g} mm of the CT "
                        "origin; give the cavity centre in millimetres"
                    )
        return value


class XrayShield(_Strict):
    """A flexible tungsten-loaded shield placed in the operation (x-ray): on the chest wall or
    under the skin flap, its back face at the measured distance of that structure."""

    location: Literal["chest_wall", "skin_flap"]
    thickness_mm: Annotated[float, Field(ge=0.05, le=10)]
    material: Literal["tungsten_silicone_80"] = "tungsten_silicone_80"
    density_g_cm3: Annotated[float, Field(ge=0.5, le=19.3)] | None = None


class Intent(_Strict):
    technique: Technique
    timing: Literal["during_lumpectomy", "second_procedure"] | None = None
    prescription_gy: Annotated[float, Field(gt=0, le=40)] | None = None
    dose_definition: Literal["TARGIT", "V4.0"] | None = None
    # x-ray: where prescription_gy applies, mm below the applicator surface (null or 0: at it)
    prescription_depth_mm: Annotated[float, Field(ge=0, le=30)] | None = None
    # x-ray: the time the device's own console shows for this prescription, checked against
    # the time from the loaded source tables
    console_time_min: Annotated[float, Field(gt=0, le=600)] | None = None
    xray_shield: XrayShield | None = None
    within_registry_or_trial: bool | None = None  # ASTRO-2017: x-ray IORT only within one
    # A course (HDR): prescription_gy is per fraction; more than one fraction only for HDR.
    fractions: Annotated[int, Field(ge=1, le=40)] = 1
    min_interval_h: Annotated[float, Field(gt=0, le=168)] | None = None
    hdr_applicator: HdrApplicatorModel | None = None
    # HDR balloon: iodinated contrast in the saline fill, % by volume (null: saline alone); the
    # hdr.mc engine models it (TG-43 assumes water), openiort.anatomy.materials balloon_cNN
    hdr_balloon_contrast_pct: Annotated[int, Field(ge=0, le=50)] | None = None

    @model_validator(mode="after")
    def _definition_only_for_xray(self) -> Intent:
        if self.technique != "xray" and self.dose_definition is not None:
            raise ValueError(
                f"dose_definition {self.dose_definition!r} applies only to technique 'xray' "
                f"(got technique {self.technique!r}); use null"
            )
        for name in ("prescription_depth_mm", "console_time_min", "xray_shield"):
            if self.technique != "xray" and getattr(self, name) is not None:
                raise ValueError(f"{name} applies only to technique 'xray'; use null")
        if self.technique != "hdr" and self.fractions != 1:
            raise ValueError(
                f"fractions {self.fractions}: {self.technique} IORT is one fraction; a course "
                "of fractions is for technique 'hdr'"
            )
        if self.fractions == 1 and self.min_interval_h is not None:
            raise ValueError("min_interval_h applies to a course of more than one fraction")
        for name in ("hdr_applicator", "hdr_balloon_contrast_pct"):
            if self.technique != "hdr" and getattr(self, name) is not None:
                raise ValueError(f"{name} applies only to technique 'hdr'; use null")
        if self.hdr_balloon_contrast_pct is not None and self.hdr_applicator == "surface":
            raise ValueError("hdr_balloon_contrast_pct applies to balloon applicators")
        return self


class ElectronChoices(_Strict):
    """What the electron planner would otherwise choose, set in the case (null: the planner's).

    Each value is checked against the machine's data when the case is planned, and the plan
    reports it beside the planner's own choice. ``disc: none`` plans without a shielding disc.
    """

    applicator_cm: Annotated[int, Field(gt=0, le=30)] | None = None
    bevel_deg: Annotated[int, Field(ge=0, lt=90)] | None = None
    energy_mev: Annotated[int, Field(gt=0, le=30)] | None = None
    bolus_mm: Annotated[float, Field(ge=0, le=30)] | None = None
    disc: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    disc_diameter_mm: Annotated[float, Field(gt=0, le=300)] | None = None
    isodose_pct: Annotated[float, Field(ge=50, le=100)] | None = None


class Case(_Strict):
    """A whole case file."""

    patient: Patient
    preoperative: Preoperative = Preoperative()
    pathology: Pathology | None = None
    anatomy: Anatomy = Anatomy()
    intent: Intent
    electron: ElectronChoices | None = None  # overrides of the electron planner's choices

    @property
    def laterality(self) -> Laterality | None:
        return self.preoperative.laterality


@dataclass(frozen=True)
class ImplausibleLimit:
    """A value the model accepts but that is more likely a slip than a measurement."""

    path: str  # block.field
    below: float  # values under this are implausible
    unit: str
    hint: str


# Values that usually mean centimetres were typed as millimetres. They are valid in the model
# (a real value may lie there) but are used only once confirmed: `iort plan --accept-implausible`,
# the web form's confirmation box. Values under a field's hard minimum (a cavity under 10 mm,
# say) are refused outright by the model, with the same hint (see _describe).
IMPLAUSIBLE_LIMITS: tuple[ImplausibleLimit, ...] = (
    ImplausibleLimit(
        "anatomy.skin_distance_mm",
        1.0,
        "mm",
        "a cavity edge less than 1 mm under the skin is more likely a slip, such as a "
        "distance in centimetres",
    ),
)


@dataclass(frozen=True)
class ImplausibleValue:
    """One value of a case that :data:`IMPLAUSIBLE_LIMITS` flags."""

    path: str
    value: float
    message: str


def implausible_values(case: Case) -> list[ImplausibleValue]:
    """The case's values that look like a unit slip and need a confirmation to be used."""
    found: list[ImplausibleValue] = []
    for limit in IMPLAUSIBLE_LIMITS:
        block_name, _, name = limit.path.partition(".")
        block = getattr(case, block_name)
        value = None if block is None else getattr(block, name)
        if value is None or value >= limit.below:
            continue
        slip = f" ({value:g} cm = {value * 10:g} mm)" if value > 0 else ""
        found.append(
            ImplausibleValue(
                limit.path,
                float(value),
                f"{limit.path}: value {value:g} {limit.unit} is under {limit.below:g} "
                f"{limit.unit}, implausible: {limit.hint}{slip}",
            )
        )
    return found


class CaseError(OpenIortInputError):
    """A case file that cannot be used; ``problems`` holds one message per problem."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(*problems, source=source)
        self.args = (f"{source}: " + "; ".join(self.problems),)


def _describe(error: Any) -> str:
    loc = ".".join(str(p) for p in error["loc"]) or "(case)"
    value = error.get("input")
    if error["type"] == "extra_forbidden":
        return f"{loc}: unknown field (value {value!r}); check the spelling against `iort schema`"
    if error["type"] == "missing":
        return f"{loc}: required field is missing"
    shown = value if not isinstance(value, dict) else "{...}"
    msg = error["msg"].removeprefix("Value error, ")
    return f"{loc}: value {shown!r} rejected: {msg}{_unit_hint(loc, error)}"


def _unit_hint(loc: str, error: Any) -> str:
    """For a length under its field's minimum that fits once read as centimetres: the hint."""
    if not loc.endswith("_mm") or error["type"] not in ("greater_than_equal", "greater_than"):
        return ""
    value = error.get("input")
    bound = (error.get("ctx") or {}).get("ge", (error.get("ctx") or {}).get("gt"))
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return ""
    if not isinstance(bound, int | float) or value * 10 < bound:
        return ""
    return f" (centimetres typed as millimetres? {value:g} cm = {value * 10:g} mm)"


def describe_case_error(error: Any) -> str:
    """One pydantic error of a case (``loc`` within the case) worded as the command line and
    the form word it: the field, the value echoed, and the centimetre hint where it fits."""
    return _describe(error)


def parse_case(data: Any, source: str = "case") -> Case:
    """Validate a mapping as a case, raising :class:`CaseError` listing every problem."""
    if not isinstance(data, dict):
        raise CaseError(
            source, [f"the case must be a mapping of blocks, got {type(data).__name__}"]
        )
    try:
        return Case.model_validate(data)
    except ValidationError as exc:
        raise CaseError(source, [_describe(e) for e in exc.errors()]) from None


def load_case(path: str | Path) -> Case:
    """Read and validate a YAML or JSON case file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise CaseError(str(p), [f"cannot read the file: {exc.strerror}"]) from None
    try:
        data = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise CaseError(
            str(p), [f"not valid {'JSON' if p.suffix == '.json' else 'YAML'}: {exc}"]
        ) from None
    return parse_case(data, source=str(p))


def case_json_schema() -> dict[str, Any]:
    return Case.model_json_schema()
