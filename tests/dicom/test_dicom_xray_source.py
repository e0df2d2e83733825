"""The 50 kV source in the RT Plan (issue 16 item 5): an electronic brachytherapy source that a
reader can decay-correct and check without dividing by zero, with its strength as the water dose
rate the plan used, tube potential and current, and the source serial in standard fields;
dciodvfy clean (docs/dicom-conformance.md, "50 kV x-rays")."""

from __future__ import annotations

import math
import subprocess
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pydicom
import pytest
import yaml

from openiort.case import parse_case
from openiort.io.dicom_export import export_plan
from openiort.planning.xray import plan_xray

DEMO = Path(__file__).resolve().parents[2] / "examples" / "left_upper_outer_30mm.yaml"
SERIAL = "XRS-507999"


def test_xray_source_is_an_electronic_source_with_standard_fields(
    tmp_path: Path, when: datetime, require_tool: Callable[[str], str]
) -> None:
    plan = plan_xray(parse_case(yaml.safe_load(DEMO.read_text())), spacing_mm=4.0)
    plan_json = plan.to_json_dict()
    plan_json["delivery"]["device"]["serial"] = SERIAL
    export_plan(plan.phantom, plan.dose, plan_json, tmp_path, when=when)
    rp = pydicom.dcmread(tmp_path / "RP.dcm")
    report = subprocess.run(
        [require_tool("dciodvfy"), str(tmp_path / "RP.dcm")], capture_output=True, text=True
    )
    assert [x for x in report.stderr.splitlines() if x.startswith("Error")] == []
    source = rp.SourceSequence[0]
    half_life_d = float(source.SourceIsotopeHalfLife)
    assert half_life_d > 0
    # A decay correction over a century leaves the strength unchanged (to 3e-6).
    assert math.exp(-math.log(2) * 36525 / half_life_d) == pytest.approx(1.0, abs=3e-6)
    assert source.SourceIsotopeName.startswith("NONE")
    assert source.SourceStrengthUnits == "DOSE_RATE_WATER"
    assert float(source.ReferenceAirKermaRate) == 0.0
    delivery = plan_json["delivery"]
    rate = delivery["prescription_gy"] / (delivery["treatment_time_min"] * 60)
    assert float(source.SourceStrength) == pytest.approx(rate, rel=1e-9)
    assert "50 kV 40 uA" in source.SourceDescription
    assert source.SourceSerialNumber == SERIAL
    machine = rp.TreatmentMachineSequence[0]
    assert machine.DeviceSerialNumber == SERIAL
    assert "50 kV" in machine.ManufacturerModelName
    assert rp.BrachyTreatmentType == "HDR"
    channel = rp.ApplicationSetupSequence[0].ChannelSequence[0]
    assert channel.SourceMovementType == "FIXED"
    assert float(channel.ChannelTotalTime) == pytest.approx(delivery["treatment_time_min"] * 60)
