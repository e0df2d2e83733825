"""Electron IORT plan of a case, as the common plan results object."""

from __future__ import annotations

import numpy as np

from openiort.case import Case
from openiort.devices.electron import (
    ElectronDataError,
    ElectronDevice,
    load_electron_device,
    planning_defaults,
    planning_value,
)
from openiort.evaluation.limits import LimitSet
from openiort.evaluation.metrics import evaluate, exceeded_limits
from openiort.plan import REPORT_DEPTHS_MM, PlanResult, depth_key
from openiort.plan_document import AppliedDefault
from openiort.planning.electron import ElectronPlanSettings
from openiort.planning.electron.or_geometry import (
    plan_in_operating_room,
    report_overrides,
    settings_from_case,
)
from openiort.planning.electron.result import ElectronPlanResult


def _source(name: str) -> str:
    entry = planning_defaults()[name]
    return str(entry.get("source", "")) if isinstance(entry, dict) else ""


def electron_defaults(
    case: Case,
    settings: ElectronPlanSettings,
    result: ElectronPlanResult,
    device: ElectronDevice,
) -> list[AppliedDefault]:
    """The values the case and ``settings`` did not give that the electron planner supplied
    (taken from the plan's results where they hold them)."""
    # (applied?, field, value, why) for each value the planner can supply
    candidates = [
        (
            settings.prescription_gy is None and case.intent.prescription_gy is None,
            "intent.prescription_gy",
            result.prescription_gy,
            f"not in the case: {_source('prescription_gy')}",
        ),
        (
            settings.isodose_pct is None,
            "electron.isodose_pct",
            result.isodose_pct,
            f"prescription isodose not set in the case (electron.isodose_pct): "
            f"{_source('isodose_pct')}",
        ),
        (
            settings.lateral_margin_mm is None,
            "electron.lateral_margin_mm",
            float(planning_value("lateral_margin_mm")),
            _source("lateral_margin_mm"),
        ),
        (
            settings.pressure_hpa is None,
            "electron.pressure_hpa",
            result.pressure_hpa,
            f"today's air pressure not given: the reference pressure of {device.name}'s "
            "beam data; recompute the monitor units with today's pressure before treatment",
        ),
        (
            settings.bolus_mm is None and result.bolus_mm > 0,
            "electron.bolus_mm",
            result.bolus_mm,
            f"bolus chosen by the planner: {result.bolus_reason}",
        ),
        (
            settings.disc == ElectronPlanSettings().disc and result.disc is not None,
            "electron.disc",
            str(settings.disc),
            "shielding disc type not given: the planner's default (aluminium facing the beam, "
            "lead behind; devices/data/electron/shielding_discs.yaml)",
        ),
    ]
    return [
        AppliedDefault(field=field, value=value, why=why)
        for applied, field, value, why in candidates
        if applied
    ]


def plan_electron_case(
    case: Case,
    pressure_hpa: float | None = None,
    limits: LimitSet | None = None,
    device: ElectronDevice | None = None,
) -> PlanResult:
    """ELIOT-style plan: the gland layer over the shielding disc, in the operating-room phantom
    (:mod:`openiort.planning.electron.or_geometry`).

    ``limits``: the organ-at-risk limits to check (a department's set); by default openiort's
    IORT limits for electrons (:mod:`openiort.evaluation.limits`).
    """
    device = device or load_electron_device()  # the department's machine, or the example
    # The surgical geometry (gland layer over the disc), not the intact breast; the case's
    # ``electron`` section overrides the planner's choices, each reported beside its own.
    settings = settings_from_case(case, pressure_hpa)
    result, phantom = plan_in_operating_room(case, settings, device)
    report_overrides(case, result, device, pressure_hpa)
    if result.dose is None or result.target_mask is None or result.delivery is None:
        raise ValueError("the electron planner returned no dose on the phantom")
    dvhs, metrics, constraints = evaluate(
        phantom,
        result.dose,
        technique="electron",
        limits=limits,
        prescription_gy=result.prescription_gy,
    )
    # The beam data hold no dose rate: the beam-on time is the device's typical figure (cited in
    # its data), used for the radiobiological protraction factor only.
    beam_on = device.typical_beam_on_time
    if beam_on is None:
        raise ElectronDataError(f"{device.name}: the device data give no typical beam-on time")
    figures = result.figures(
        treatment_time_min=beam_on.minutes,
        treatment_time_label=f"typical beam-on time ({beam_on.status}; {beam_on.source})",
    )
    depth = np.asarray(result.depth_mm, dtype=float)
    profile = np.asarray(result.depth_dose_gy, dtype=float)
    at_depth = {
        depth_key(z): round(float(np.interp(z, depth, profile)), 4) for z in REPORT_DEPTHS_MM
    }
    warnings = list(result.warnings) + exceeded_limits(constraints)
    return PlanResult(
        case_id=case.patient.id,
        technique="electron",
        delivery=result.delivery,
        prescription_gy=result.prescription_gy,
        prescription_definition=None,
        prescription_point=f"{result.isodose_pct:g} % isodose",
        details=figures,
        dose_at_depth_gy=at_depth,
        dose_at_depth_water_gy=at_depth,
        depth_profile_mm=depth.tolist(),
        depth_profile_water_gy=profile.tolist(),
        depth_profile_definition_gy=None,
        metrics=metrics,
        constraints=constraints,
        warnings=warnings,
        uncertainty=[
            {
                "component": "Total uncertainty of IORT dose delivery (all IORT technologies)",
                "value": "about 10-15 %",
                "source": "Hensley FW, Radiat Oncol 2017;12:37 (review estimate)",
            },
            {
                "component": "Independent MU check (Monte Carlo output factor vs measured)",
                "value": f"{result.second_check.difference_pct:+.1f} % for this plan",
                "source": "planning/electron second check",
            },
        ],
        dose=result.dose,
        phantom=phantom,
        dvhs=dvhs,
        device=result.device,
        defaults_applied=electron_defaults(case, settings, result, device),
    )
