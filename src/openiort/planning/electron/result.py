"""The electron plan result: settings, MU, beam, dose summaries, and its plan.json summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from openiort.delivery import ElectronDelivery
from openiort.dosegrid import DoseGrid
from openiort.plan_figures import ElectronFigures
from openiort.planning.electron.mu import SecondCheck
from openiort.planning.electron.selection import RejectedAlternative


@dataclass(frozen=True)
class StructureDose:
    volume_cc: float
    max_gy: float
    mean_gy: float
    d1cc_gy: float | None

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if v is None else round(float(v), 4)) for k, v in self.__dict__.items()}


@dataclass
class ElectronPlanResult:
    """An electron IORT plan: settings, MU, beam quantities, alternatives, dose and warnings."""

    device: dict[str, Any]
    applicator_diameter_cm: int
    bevel_deg: int
    energy_mev: int
    prescription_gy: float
    isodose_pct: float
    pressure_hpa: float
    temperature_c: float | None
    chamber_correction: float
    rescale: float
    output_factor_cgy_per_mu: float
    monitor_units: int
    monitor_units_exact: float
    second_check: SecondCheck
    dose_max_gy: float
    delivered_dose_max_gy: float
    beam: dict[str, float]
    r90_measured_mm: float
    target_thickness_mm: float
    target_water_equivalent_thickness_mm: float
    target_width_mm: float
    required_width90_mm: float
    surface_inclination_deg: float
    bolus_mm: float
    disc: dict[str, Any] | None
    depth_mm: NDArray[np.float64]
    depth_dose_gy: NDArray[np.float64]
    dose_at_depth_gy: dict[str, float]
    rejected_alternatives: list[RejectedAlternative]
    warnings: list[str]
    structures: dict[str, StructureDose] = field(default_factory=dict)
    target_coverage_pct: float | None = None
    dose: DoseGrid | None = None
    delivery: ElectronDelivery | None = None
    geometry: dict[str, Any] = field(default_factory=dict)
    target_mask: NDArray[np.bool_] | None = None
    bolus_reason: str = ""
    operating_room: dict[str, Any] | None = None  # the OR-phantom figures (or_geometry)
    overrides: list[dict[str, Any]] = field(default_factory=list)  # choices set in the case

    @property
    def technique(self) -> str:
        return "electron"

    def figures(self, treatment_time_min: float, treatment_time_label: str) -> ElectronFigures:
        """The plan figures of ``plan.json`` (rounded as :meth:`to_dict` rounds them), with the
        beam-on time the plan reports (the beam data hold no dose rate)."""
        summary = self.to_dict()
        return ElectronFigures.model_validate(
            {
                **{k: summary[k] for k in ElectronFigures.model_fields if k in summary},
                "treatment_time_min": treatment_time_min,
                "treatment_time_label": treatment_time_label,
            }
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary for ``plan.json`` (the 3D dose is summarised, not included)."""
        return {
            "technique": self.technique,
            "device": self.device,
            "applicator_diameter_cm": self.applicator_diameter_cm,
            "bevel_deg": self.bevel_deg,
            "energy_mev": self.energy_mev,
            "prescription_gy": self.prescription_gy,
            "isodose_pct": self.isodose_pct,
            "pressure_hpa": self.pressure_hpa,
            "temperature_c": self.temperature_c,
            "chamber_correction": round(self.chamber_correction, 6),
            "rescale": self.rescale,
            "output_factor_cgy_per_mu": self.output_factor_cgy_per_mu,
            "monitor_units": self.monitor_units,
            "monitor_units_exact": round(self.monitor_units_exact, 3),
            "second_check": self.second_check.to_dict(),
            "dose_max_gy": round(self.dose_max_gy, 4),
            "delivered_dose_max_gy": round(self.delivered_dose_max_gy, 4),
            "beam": self.beam,
            "r90_measured_mm": self.r90_measured_mm,
            "target": {
                "thickness_mm": self.target_thickness_mm,
                "water_equivalent_thickness_mm": round(
                    self.target_water_equivalent_thickness_mm, 2
                ),
                "width_mm": self.target_width_mm,
                "required_width90_mm": self.required_width90_mm,
                "coverage_pct": None
                if self.target_coverage_pct is None
                else round(self.target_coverage_pct, 2),
            },
            "surface_inclination_deg": self.surface_inclination_deg,
            "bolus_mm": self.bolus_mm,
            "bolus_reason": self.bolus_reason,
            "disc": self.disc,
            "depth_profile": {
                "depth_mm": [round(float(d), 3) for d in self.depth_mm],
                "dose_gy": [round(float(d), 5) for d in self.depth_dose_gy],
            },
            "dose_at_depth_gy": self.dose_at_depth_gy,
            "structures": {k: v.to_dict() for k, v in self.structures.items()},
            "rejected_alternatives": [r.to_dict() for r in self.rejected_alternatives],
            "geometry": self.geometry,
            "operating_room": self.operating_room,
            "overrides": list(self.overrides),
            "dose_grid": None
            if self.dose is None
            else {
                "grid": self.dose.grid.to_dict(),
                "medium": self.dose.medium,
                "normalisation": self.dose.normalisation,
                "provenance": self.dose.provenance.to_dict(),
                "notes": list(self.dose.notes),
            },
            "warnings": list(self.warnings),
        }


def structure_dose(dose: DoseGrid, mask: NDArray[np.bool_]) -> StructureDose | None:
    """Volume, maximum, mean and D1cc (minimum dose to the hottest 1 cc) of a structure."""
    n = int(mask.sum())
    if n == 0:
        return None
    values = np.sort(dose.dose_gy[mask])[::-1]
    vox_cc = dose.grid.voxel_volume_cc
    k = int(np.ceil(1.0 / vox_cc))
    return StructureDose(
        volume_cc=n * vox_cc,
        max_gy=float(values[0]),
        mean_gy=float(values.mean()),
        d1cc_gy=float(values[k - 1]) if k <= n else None,
    )
