"""The plan results object: one typed object from which plan.json and the report are made."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

from openiort import RESEARCH_NOTICE, __version__
from openiort.anatomy.phantom import Phantom
from openiort.delivery import ElectronDelivery, HdrDelivery, XrayDelivery
from openiort.dosegrid import DoseGrid
from openiort.evaluation.dvh import Dvh
from openiort.evaluation.metrics import ConstraintCheck, StructureMetrics
from openiort.evaluation.voxel_centre import DVH_METHOD, voxel_centre_figures
from openiort.plan_document import AppliedDefault, validated_plan_json
from openiort.plan_figures import FIGURES_OF, Figures, figures_json

Delivery = XrayDelivery | ElectronDelivery | HdrDelivery
PlanStatus = Literal["draft", "reviewed", "approved", "delivered"]
REPORT_DEPTHS_MM = (0, 5, 10, 20)


def depth_key(depth_mm: float) -> str:
    """plan.json keys for depths are the depth in whole mm as a string."""
    return str(round(depth_mm))


@dataclass
class PlanResult:
    """Everything a plan's report and plan.json show, computed once."""

    case_id: str
    technique: Literal["xray", "electron", "hdr"]
    prescription_gy: float
    prescription_definition: str | None
    prescription_point: str
    details: Figures  # the technique's plan figures (openiort.plan_figures), top-level in plan.json
    dose_at_depth_gy: dict[str, float]
    dose_at_depth_water_gy: dict[str, float]
    depth_profile_mm: list[float]
    depth_profile_water_gy: list[float]
    depth_profile_definition_gy: list[float] | None
    metrics: dict[str, StructureMetrics]
    constraints: list[ConstraintCheck]
    warnings: list[str]
    uncertainty: list[dict[str, str]]
    dose: DoseGrid
    phantom: Phantom
    dvhs: dict[str, Dvh]
    device: dict[str, Any]
    delivery: Delivery  # what the console needs, at reference conditions: what approval seals
    status: PlanStatus = "draft"
    # Values the case did not give that the planner supplied (plan.json "defaults_applied").
    defaults_applied: list[AppliedDefault] = field(default_factory=list)
    sections: dict[str, Any] = field(default_factory=dict)  # clinical, radiobiology, ...
    created_utc: str = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    )

    def __post_init__(self) -> None:
        expected = FIGURES_OF[self.technique]
        if not isinstance(self.details, expected):
            raise TypeError(
                f"a {self.technique} plan's details are {expected.__name__}, "
                f"got {type(self.details).__name__}"
            )

    def to_json_dict(self) -> dict[str, Any]:
        """plan.json, checked against :data:`openiort.plan_document.PlanDocument`.

        Raises pydantic's ValidationError when a key is missing, unknown or of the wrong type
        (a key renamed in a planner or a section of an unknown name fails here, at the source).
        """
        d = self.dose
        out: dict[str, Any] = {
            "notice": RESEARCH_NOTICE,
            "software": {"name": "openiort", "version": __version__},
            "case_id": self.case_id,
            "technique": self.technique,
            "status": self.status,
            "created_utc": self.created_utc,
            "device": self.device,
            "prescription": {
                "dose_gy": self.prescription_gy,
                "dose_definition": self.prescription_definition,
                "point": self.prescription_point,
            },
            "delivery": self.delivery.model_dump(mode="json"),
            **figures_json(self.details),
            "dose_at_depth_gy": self.dose_at_depth_gy,
            "dose_at_depth_water_gy": self.dose_at_depth_water_gy,
            "dose": {
                "unit": "Gy",
                "medium": d.medium,
                "medium_label": d.medium_label,
                "per_session": d.per_session,
                "normalisation": d.normalisation,
                "grid": d.grid.to_dict(),
                "notes": list(d.notes),
                "dvh_method": DVH_METHOD,
                "voxel_centre": voxel_centre_figures(self.phantom, d, list(self.metrics)),
            },
            "metrics": {k: m.to_dict() for k, m in self.metrics.items()},
            "constraints": [c.to_dict() for c in self.constraints],
            "warnings": self.warnings,
            "defaults_applied": [d.model_dump(mode="json") for d in self.defaults_applied],
            "provenance": d.provenance.to_dict(),
            "uncertainty": {
                "statement": (
                    "Main contributions to the uncertainty of the delivered dose, as published; "
                    "they are not independent standard uncertainties and are not combined here."
                ),
                "components": self.uncertainty,
            },
            "phantom": self.phantom.description,
        }
        for name, section in self.sections.items():
            out[name] = section.to_dict() if hasattr(section, "to_dict") else section
        return validated_plan_json(out)
