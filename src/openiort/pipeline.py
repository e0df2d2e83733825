"""One call from a case to a finished plan: the technique's planner, then the report sections."""

from __future__ import annotations

from pathlib import Path

from openiort.case import Case, CaseError
from openiort.devices.xray import load_commissioning
from openiort.plan import PlanResult
from openiort.planning.xray import plan_xray
from openiort.radiobiology import build_radiobiology_section


def plan_case(case: Case, source_data: Path | None = None) -> PlanResult:
    """Plan ``case`` with the planner of its technique and attach every report section."""
    if case.intent.technique == "xray":
        source = load_commissioning(source_data) if source_data else None
        plan = plan_xray(case, source=source)
    else:
        raise CaseError(
            "case",
            [
                f"intent.technique: {case.intent.technique!r} planning is not available in this build"
            ],
        )
    plan.sections["radiobiology"] = build_radiobiology_section(
        plan.depth_profile_mm,
        plan.depth_profile_water_gy,
        plan.delivery["treatment_time_min"],
        plan.technique,
    )
    return plan
