"""x-ray prescription at a depth from the case, and the device console's time checked against
the loaded source tables (issue 15, item 7)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from openiort.case import CaseError, parse_case
from openiort.devices.xray import load_example_source, treatment_time
from openiort.planning.xray import plan_xray

DEMO = Path(str(resources.files("openiort").joinpath("data/demo_case.yaml")))


def _case(**intent: Any) -> Any:
    data = yaml.safe_load(DEMO.read_text())
    data["intent"].update(intent)
    return parse_case(data)


def test_prescription_at_10_mm() -> None:
    plan = plan_xray(_case(prescription_gy=5.0, prescription_depth_mm=10.0), spacing_mm=4.0)
    source = load_example_source()
    diameter = plan.details.applicator_diameter_cm  # type: ignore[union-attr]
    expected = treatment_time(source, diameter, 5.0, "TARGIT", 10.0).time_min
    assert plan.delivery.treatment_time_min == pytest.approx(expected, rel=1e-12)
    # 5 Gy at 10 mm in the prescription's definition, to the 4-decimal rounding of plan.json
    assert plan.dose_at_depth_gy["10"] == pytest.approx(5.0, abs=1e-4)
    assert plan.prescription_point == "10 mm below the applicator surface"
    # the surface gets far more: 20 Gy at the surface gives about 4.5 Gy at 10 mm here (3 cm)
    assert plan.dose_at_depth_gy["0"] > 15.0


def test_surface_prescription_unchanged_by_a_zero_depth() -> None:
    at_zero = plan_xray(_case(prescription_depth_mm=0.0), spacing_mm=4.0)
    default = plan_xray(_case(), spacing_mm=4.0)
    assert at_zero.delivery.treatment_time_min == default.delivery.treatment_time_min
    assert at_zero.prescription_point == "applicator surface"


def test_console_time_beyond_tolerance_is_warned() -> None:
    time = treatment_time(load_example_source(), 3.0, 20.0, "TARGIT").time_min
    ok = plan_xray(_case(console_time_min=round(time * 1.03, 2)), spacing_mm=4.0)
    check = ok.details.console_time  # type: ignore[union-attr]
    assert check is not None and check.agrees_within_tolerance
    assert not any("console's time" in w for w in ok.warnings)
    off = plan_xray(_case(console_time_min=round(time * 1.08, 2)), spacing_mm=4.0)
    assert not off.details.console_time.agrees_within_tolerance  # type: ignore[union-attr]
    assert any("console's time" in w and "> 5 %" in w for w in off.warnings)


@pytest.mark.parametrize("field", ["prescription_depth_mm", "console_time_min"])
def test_xray_only_fields(field: str) -> None:
    data = yaml.safe_load(DEMO.read_text())
    data["intent"].update(technique="electron", dose_definition=None, **{field: 10.0})
    with pytest.raises(CaseError, match=field):
        parse_case(data)
