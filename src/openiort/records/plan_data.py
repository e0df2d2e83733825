"""What a stored plan's JSON must hold, and the delivery settings read from it.

The plan JSON is the dict from :meth:`openiort.plan.PlanResult.to_json_dict`. The records
layer needs only a few of its keys: the technique, the case's patient id, the prescription and
the settings entered at the console (treatment time for x-rays and HDR, monitor units and
energy for electrons, the applicator for all).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from openiort.delivery import ElectronDelivery, HdrDelivery, parse_delivery
from openiort.records.errors import RecordsValueError
from openiort.records.models import TECHNIQUES

SECONDS_PER_MINUTE = 60.0
_TECHNIQUE_LABELS = {"xray": "x-ray", "electron": "electron", "hdr": "HDR"}


@dataclass(frozen=True)
class PlannedDelivery:
    """The console settings and prescription of a plan.

    ``applicator`` is the text shown to users (``"4.5 cm"`` or ``"balloon"``);
    ``applicator_diameter_cm`` is set for x-ray and electron plans.
    """

    technique: str
    prescription_dose_gy: float
    applicator: str
    applicator_diameter_cm: float | None
    time_s: float | None
    monitor_units: float | None
    energy_mev: float | None
    bevel_deg: float | None
    # A course (HDR): time_s and prescription_dose_gy are per fraction.
    fractions: int = 1
    min_interval_h: float | None = None


def normalise_json(data: Any, what: str = "plan JSON") -> dict[str, Any]:
    """A plain JSON copy of ``data`` (a mapping), refusing NaN, infinity and non-JSON values."""
    if not isinstance(data, Mapping):
        raise RecordsValueError(f"{what}: must be a JSON object, got {type(data).__name__}")
    try:
        out = json.loads(json.dumps(data, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise RecordsValueError(f"{what}: not representable as JSON ({exc})") from None
    if not isinstance(out, dict):  # pragma: no cover - a Mapping always dumps to an object
        raise RecordsValueError(f"{what}: must be a JSON object")
    return out


def _positive(plan: Mapping[str, Any], key: str, technique: str) -> float:
    value = plan.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordsValueError(f"plan JSON: {key} is required for {technique} plans (a number)")
    if not math.isfinite(value) or value <= 0:
        raise RecordsValueError(f"plan JSON: {key} must be positive, got {value!r}")
    return float(value)


def _optional_number(plan: Mapping[str, Any], key: str) -> float | None:
    value = plan.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordsValueError(f"plan JSON: {key} must be a number, got {value!r}")
    return float(value)


def _from_typed(plan: Mapping[str, Any]) -> PlannedDelivery:
    try:
        delivery = parse_delivery(plan["delivery"])
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"][1:])
        raise RecordsValueError(f"plan JSON: delivery.{where}: {first['msg']}") from None
    if plan.get("technique") != delivery.technique:
        raise RecordsValueError(
            f"plan JSON: technique {plan.get('technique')!r} differs from the delivery's "
            f"{delivery.technique!r}"
        )
    if isinstance(delivery, HdrDelivery):
        return PlannedDelivery(
            technique="hdr",
            prescription_dose_gy=delivery.prescription_gy,
            applicator=delivery.applicator,
            applicator_diameter_cm=None,
            time_s=delivery.total_time_s,
            monitor_units=None,
            energy_mev=None,
            bevel_deg=None,
            fractions=delivery.fractions,
            min_interval_h=delivery.min_interval_h,
        )
    if isinstance(delivery, ElectronDelivery):
        return PlannedDelivery(
            technique="electron",
            prescription_dose_gy=delivery.prescription_gy,
            applicator=format_cm(delivery.applicator_diameter_cm),
            applicator_diameter_cm=delivery.applicator_diameter_cm,
            time_s=None,
            monitor_units=float(delivery.monitor_units),
            energy_mev=delivery.energy_mev,
            bevel_deg=delivery.bevel_deg,
        )
    return PlannedDelivery(
        technique="xray",
        prescription_dose_gy=delivery.prescription_gy,
        applicator=format_cm(delivery.applicator_diameter_cm),
        applicator_diameter_cm=delivery.applicator_diameter_cm,
        time_s=delivery.treatment_time_min * SECONDS_PER_MINUTE,
        monitor_units=None,
        energy_mev=None,
        bevel_deg=None,
    )


# What to load instead of the example data, per technique.
_DEPARTMENT_DATA = {
    "xray": "your source's commissioning data (iort plan --source-data; in the web app, the "
    "server's --xray-source-data)",
    "electron": "your machine's measured beam data",
    "hdr": "your source's calibrated air-kerma strength (the department's source record)",
}


def example_data_problem(plan: Mapping[str, Any]) -> str | None:
    """Why a plan cannot be approved for treatment because it used example device data, or
    None when its device data are the department's."""
    technique = str(plan.get("technique"))
    delivery = plan.get("delivery")
    if isinstance(delivery, Mapping) and isinstance(delivery.get("device"), Mapping):
        device = delivery["device"]
        example = device.get("status") != "department"
        name = str(device.get("name") or "unnamed device data")
    else:  # plans stored before deliveries named their device data
        legacy_device = plan.get("device")
        name = "the built-in example data"
        if isinstance(legacy_device, Mapping) and "status" in legacy_device:
            example = legacy_device["status"] != "department"
        elif technique == "xray":
            example = not isinstance(legacy_device, Mapping) or bool(
                legacy_device.get("example_source", True)
            )
        elif technique == "hdr":
            example = bool(plan.get("air_kerma_strength_is_example", True))
        else:
            example = True  # only the built-in example machine existed
    if not example:
        return None
    return (
        f"it was computed with example device data ({name}), which are for demonstration "
        f"only: load {_DEPARTMENT_DATA.get(technique, 'your own device data')} and plan again"
    )


def technique_label(technique: str) -> str:
    """How users write the technique: ``x-ray``, ``electron``, ``HDR``."""
    return _TECHNIQUE_LABELS.get(technique, technique)


def format_cm(value: float) -> str:
    """``4.5 cm``, ``4 cm``."""
    return f"{value:g} cm"


def planned_delivery(plan: Mapping[str, Any]) -> PlannedDelivery:
    """The delivery settings of a plan's JSON: its typed ``delivery`` block, or for plans
    stored before deliveries were typed, the technique's top-level keys.

    Raises
    ------
    RecordsValueError
        Naming the first missing or invalid key.
    """
    if "delivery" in plan:
        return _from_typed(plan)
    technique = plan.get("technique")
    if technique not in TECHNIQUES:
        raise RecordsValueError(
            f"plan JSON: technique must be one of {', '.join(TECHNIQUES)}, got {technique!r}"
        )
    prescription = plan.get("prescription")
    if not isinstance(prescription, Mapping):
        raise RecordsValueError("plan JSON: prescription (with dose_gy) is required")
    rx_gy = _positive(prescription, "dose_gy", technique)
    time_s: float | None = None
    monitor_units: float | None = None
    energy_mev: float | None = None
    bevel_deg: float | None = None
    diameter_cm: float | None = None
    if technique == "xray":
        diameter_cm = _positive(plan, "applicator_diameter_cm", technique)
        time_s = _positive(plan, "treatment_time_min", technique) * SECONDS_PER_MINUTE
        applicator = format_cm(diameter_cm)
    elif technique == "electron":
        diameter_cm = _positive(plan, "applicator_diameter_cm", technique)
        monitor_units = _positive(plan, "monitor_units", technique)
        energy_mev = _positive(plan, "energy_mev", technique)
        bevel_deg = _optional_number(plan, "bevel_deg")
        applicator = format_cm(diameter_cm)
    else:
        name = plan.get("applicator")
        if not isinstance(name, str) or not name.strip():
            raise RecordsValueError("plan JSON: applicator (its name) is required for hdr plans")
        applicator = name.strip()
        if plan.get("total_time_s") is not None:
            time_s = _positive(plan, "total_time_s", technique)
        else:
            time_s = _positive(plan, "treatment_time_min", technique) * SECONDS_PER_MINUTE
    return PlannedDelivery(
        technique=technique,
        prescription_dose_gy=rx_gy,
        applicator=applicator,
        applicator_diameter_cm=diameter_cm,
        time_s=time_s,
        monitor_units=monitor_units,
        energy_mev=energy_mev,
        bevel_deg=bevel_deg,
    )
