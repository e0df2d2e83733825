"""Each technique's plan figures: the numbers its report shows beside the delivery, typed.

:class:`openiort.plan.PlanResult` holds one of these as ``details``; the planners build them
(:func:`openiort.planning.xray.plan_xray`, :mod:`openiort.planning.electron_case`,
:mod:`openiort.planning.hdr_case`) and ``plan.json`` carries their fields as top-level keys
(:mod:`openiort.plan_document` types the whole document). Every model forbids unknown keys, so
a key renamed in one place fails where the figures are made, not in a reader.

The figures are what the planners report; what the console needs, and what approval seals, is
the plan's typed delivery (:mod:`openiort.delivery`), not these.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Finite = Annotated[float, Field(allow_inf_nan=False)]
Vector3 = tuple[Finite, Finite, Finite]


class _Figures(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------------------------
# x-ray (50 kV source, spherical applicator)


class XraySecondCheck(_Figures):
    """The independent treatment-time calculation along the other data path."""

    treatment_time_min: Finite
    difference_pct: Finite = Field(description="second check relative to the primary time")
    primary_path: str
    second_path: str
    tolerance_pct: Finite = Field(5.0, description="the department's tolerance (default 5 %)")
    agrees_within_tolerance: bool

    @model_validator(mode="before")
    @classmethod
    def _fixed_tolerance_of_older_plans(cls, data: Any) -> Any:
        """Plans made before the tolerance was the department's: a fixed 5 %."""
        if isinstance(data, dict) and "agrees_within_5_pct" in data:
            data = {**data}
            data.setdefault("agrees_within_tolerance", data.pop("agrees_within_5_pct"))
        return data


class OtherDefinitionDose(_Figures):
    """The same prescription expressed in the other dose definition (TARGIT or V4.0)."""

    dose_definition: Literal["TARGIT", "V4.0"]
    dose_gy: Finite


class ConsoleTimeCheck(_Figures):
    """The time the device's console shows (from the case) against the loaded tables' time."""

    console_time_min: Finite
    expected_time_min: Finite
    difference_pct: Finite
    tolerance_pct: Finite
    agrees_within_tolerance: bool


class XrayShieldFigures(_Figures):
    """A tungsten-loaded shield: the dose behind it and the change in front of it (dose to
    water, V4.0 table; openiort.planning.xray_shield)."""

    location: Literal["chest_wall", "skin_flap"]
    material: str
    density_g_cm3: Finite
    thickness_mm: Finite
    front_depth_mm: Finite = Field(description="below the applicator surface")
    transmission: Finite = Field(description="Monte Carlo, 0.5 mm behind the shield")
    transmission_rel_unc: Finite
    dose_behind_without_gy: Finite
    dose_behind_table_gy: Finite = Field(description="table dose x Monte Carlo transmission")
    dose_behind_mc_gy: Finite = Field(description="Monte Carlo with the shield")
    dose_in_front_without_gy: Finite
    dose_in_front_with_gy: Finite
    front_change_pct: Finite = Field(description="photon scatter only, the 0.5 mm in front")
    model: str
    #: the electron dose increase at the shield's face: a cited, labelled estimate
    front_interface_estimate: str | None = None


class XrayPhysicalDose(_Figures):
    """The estimated physical point dose to water at the applicator surface: the nominal V4.0
    dose divided by the V4.0 chamber's volume-averaging factor (openiort.devices.xray_chamber).
    An estimate for the report's physics section; prescription, limits and DVHs stay in the
    department's definition."""

    chamber: str
    chamber_factor: Finite = Field(description="chamber reading / point dose at its foil")
    chamber_factor_range: tuple[Finite, Finite] = Field(description="over geometry variants")
    surface_dose_v40_gy: Finite
    physical_point_dose_gy: Finite
    physical_point_dose_range_gy: tuple[Finite, Finite]
    geometry_source: str
    not_included: str


class XrayBandPoint(_Figures):
    depth_mm: Finite
    model_spread_pct: Finite
    positioning_pct: Finite
    chamber_cq_depth_pct: Finite
    mc_statistics_pct: Finite
    total_pct: Finite


class XrayDepthDoseUncertainty(_Figures):
    """The relative depth-dose's uncertainty per depth, with its components
    (openiort.devices.xray_uncertainty)."""

    statement: str
    sources: dict[str, str]
    points: list[XrayBandPoint]


class XrayFigures(_Figures):
    """Plan figures of an x-ray plan."""

    applicator_diameter_cm: Finite
    treatment_time_min: Finite = Field(description="rounded to 0.001 min (the delivery's exact)")
    treatment_time_label: str = Field(description="whose output the time is computed with")
    second_check: XraySecondCheck
    prescription_other_definition: OtherDefinitionDose
    console_time: ConsoleTimeCheck | None = None
    shield: XrayShieldFigures | None = None
    #: which dose definition each of the plan's dose tables is in (issue 15, item 2)
    dose_definitions: dict[str, str] | None = None
    physical_dose: XrayPhysicalDose | None = None
    depth_dose_uncertainty: XrayDepthDoseUncertainty | None = None


# --------------------------------------------------------------------------------------------
# electron (mobile linac)


class ElectronSecondCheck(_Figures):
    """The independent MU calculation with the output factor from the Monte Carlo data."""

    monitor_units: int
    monitor_units_exact: Finite
    output_factor_mc_cgy_per_mu: Finite
    output_factor_measured_cgy_per_mu: Finite
    difference_pct: Finite
    action_level_pct: Finite
    method: str
    within_action_level: bool


class ElectronTarget(_Figures):
    """The gland layer the beam must cover."""

    thickness_mm: Finite
    water_equivalent_thickness_mm: Finite
    width_mm: Finite
    required_width90_mm: Finite
    coverage_pct: Finite | None = Field(description="null when no dose was computed in 3D")


class DiscLayer(_Figures):
    material: str
    thickness_mm: Finite


class ShieldingDiscFigures(_Figures):
    """The shielding disc under the gland: where it lies and the data of its type."""

    type: str
    depth_mm: Finite
    diameter_mm: Finite
    centre_xy_mm: tuple[Finite, Finite]
    description: str
    layers: list[DiscLayer]
    backscatter_increase_pct: dict[str, Finite] = Field(description="by nominal energy (MeV)")
    backscatter_reference_distance_mm: Finite
    backscatter_decay_length_mm: Finite
    transmission_fraction: Finite
    sources: list[str]
    verification: dict[str, str]


class RejectedAlternativeFigure(_Figures):
    """A setting the planner considered and did not choose, and why (null: any)."""

    applicator_cm: int | None
    bevel_deg: int | None
    energy_mev: int | None
    reason: str


class OrDiscDose(_Figures):
    """Dose at the shielding disc on the clinical axis (Gy, one fraction)."""

    upper_face_gy: Finite = Field(description="just above the disc, with its backscatter")
    upper_face_pct_of_prescription: Finite
    upper_face_open_beam_gy: Finite = Field(description="the same point without the disc")
    backscatter_increase_pct: Finite
    beneath_gy: Finite = Field(description="just beneath the disc: the transmission bound")
    beneath_pct_of_prescription: Finite
    beneath_max_in_shadow_gy: Finite | None = Field(
        description="largest dose in the tissue behind the disc (3D)"
    )
    transmission_fraction: Finite
    beneath_note: str


class ElectronOperatingRoom(_Figures):
    """The plan in the operating-room phantom: target, layer, isodoses, disc and skin flaps."""

    geometry: str
    sentence: str = Field(description="one sentence saying which geometry was used")
    target_definition: str
    target_volume_cc: Finite
    target_v90_pct: Finite = Field(description="target volume receiving the prescription")
    layer_volume_cc: Finite
    layer_v90_pct: Finite = Field(description="whole gland layer receiving the prescription")
    layer_lateral_coverage_pct: Finite = Field(
        description="share of the layer's extent inside the 90 % width at zmax"
    )
    width90_at_zmax_mm: Finite
    isodose_90_depth_mm: Finite
    isodose_50_depth_mm: Finite
    isodose_90_depth_without_disc_mm: Finite
    isodose_50_depth_without_disc_mm: Finite
    isodose_depths_note: str
    gland_relative_electron_density: Finite
    gland_water_equivalent_thickness_mm: Finite
    bolus_mm: Finite
    disc: OrDiscDose | None = None
    skin_max_gy: Finite | None = None
    skin_max_pct_of_prescription: Finite | None = None
    skin_flaps_max_gy: Finite | None = None
    skin_flaps_max_pct_of_prescription: Finite | None = None


class ElectronOverride(_Figures):
    """A choice set in the case file instead of left to the planner, checked and reported."""

    field: str = Field(description="the case file's key, e.g. electron.energy_mev")
    value: Any
    planner_choice: Any = Field(description="what the planner would have chosen")


class ElectronFigures(_Figures):
    """Plan figures of an electron plan."""

    applicator_diameter_cm: int
    bevel_deg: int
    energy_mev: int
    isodose_pct: Finite
    pressure_hpa: Finite
    temperature_c: Finite | None
    chamber_correction: Finite
    rescale: Finite
    output_factor_cgy_per_mu: Finite
    monitor_units: int
    monitor_units_exact: Finite
    second_check: ElectronSecondCheck
    beam: dict[str, Finite] = Field(description="beam characteristics (mm, %) of the setting")
    r90_measured_mm: Finite
    target: ElectronTarget
    surface_inclination_deg: Finite
    bolus_mm: Finite
    bolus_reason: str = ""
    disc: ShieldingDiscFigures | None
    rejected_alternatives: list[RejectedAlternativeFigure]
    operating_room: ElectronOperatingRoom | None = None
    overrides: list[ElectronOverride] = Field(default_factory=list)
    treatment_time_min: Finite = Field(description="typical beam-on time of the device")
    treatment_time_label: str


# --------------------------------------------------------------------------------------------
# HDR (Ir-192 stepping source)


class HdrOptimisation(_Figures):
    method: str
    smoothness: Finite


class HdrCoverage(_Figures):
    target_v100_percent: Finite
    target_v90_percent: Finite


class HdrHotSpots(_Figures):
    v150_cc: Finite
    v200_cc: Finite
    target_v150_percent: Finite
    target_v200_percent: Finite


class HdrFigures(_Figures):
    """Plan figures of an HDR plan (dwell positions, directions and times, one per dwell)."""

    applicator: Literal["balloon", "surface"]
    applicator_geometry: dict[str, Any] = Field(description="as the applicator describes itself")
    source_id: str
    source_title: str
    source_data_status: str
    air_kerma_strength_u: Finite
    air_kerma_strength_is_example: bool
    dwell_positions_mm: list[Vector3]
    dwell_directions: list[Vector3]
    dwell_catheters: list[int] = Field(description="channel of each dwell, counted from 1")
    dwell_times_s: list[Finite]
    total_time_s: Finite
    treatment_time_min: Finite
    trak_ugy_at_1m: Finite
    optimisation: HdrOptimisation
    prescription_points_gy: dict[str, Finite] = Field(description="n_points, min, mean, max")
    target_definition: str
    coverage: HdrCoverage
    hot_spots: HdrHotSpots
    dwell_table: dict[str, Any] | None = Field(
        None, description="channel, position from the channel tip (mm), time (s), total"
    )
    course: dict[str, Any] | None = Field(
        None, description="fractions, dose per fraction and total, minimum interval (h)"
    )
    source_record: dict[str, Any] | None = Field(
        None, description="the department's source record the plan was computed with"
    )
    balloon_quality: dict[str, Any] | None = Field(
        None,
        description="balloon plan quality against the protocol's limits; on a post-implant "
        "CT also 'symmetry' (principal diameters, deviation from their mean) and "
        "'conformance' (air pockets at the balloon, % of PTV_EVAL)",
    )

    @model_validator(mode="after")
    def _one_entry_per_dwell(self) -> HdrFigures:
        n = len(self.dwell_times_s)
        lengths = {
            "dwell_positions_mm": len(self.dwell_positions_mm),
            "dwell_directions": len(self.dwell_directions),
            "dwell_catheters": len(self.dwell_catheters),
        }
        wrong = [f"{k} has {v}" for k, v in lengths.items() if v != n]
        if wrong:
            raise ValueError(f"dwell_times_s has {n} entries but " + ", ".join(wrong))
        return self


Figures = XrayFigures | ElectronFigures | HdrFigures
FIGURES_OF: dict[str, type[XrayFigures] | type[ElectronFigures] | type[HdrFigures]] = {
    "xray": XrayFigures,
    "electron": ElectronFigures,
    "hdr": HdrFigures,
}


def figures_json(figures: Figures) -> dict[str, Any]:
    """The figures as plan.json's top-level keys (every key, nulls kept)."""
    return figures.model_dump(mode="json")
