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
    agrees_within_5_pct: bool


class OtherDefinitionDose(_Figures):
    """The same prescription expressed in the other dose definition (TARGIT or V4.0)."""

    dose_definition: Literal["TARGIT", "V4.0"]
    dose_gy: Finite


class XrayFigures(_Figures):
    """Plan figures of an x-ray plan."""

    applicator_diameter_cm: Finite
    treatment_time_min: Finite = Field(description="rounded to 0.001 min (the delivery's exact)")
    treatment_time_label: str = Field(description="whose output the time is computed with")
    second_check: XraySecondCheck
    prescription_other_definition: OtherDefinitionDose


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
    disc: ShieldingDiscFigures | None
    rejected_alternatives: list[RejectedAlternativeFigure]
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
    dwell_catheters: list[int]
    dwell_times_s: list[Finite]
    total_time_s: Finite
    treatment_time_min: Finite
    trak_ugy_at_1m: Finite
    optimisation: HdrOptimisation
    prescription_points_gy: dict[str, Finite] = Field(description="n_points, min, mean, max")
    target_definition: str
    coverage: HdrCoverage
    hot_spots: HdrHotSpots

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
