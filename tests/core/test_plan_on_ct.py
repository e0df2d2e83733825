"""Planning on a CT: export the phantom as DICOM, import it as a CT, plan again, same dose."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from openiort.case import CaseError
from openiort.inputs.ct import load_ct_phantom
from openiort.io.dicom_export import export_plan
from openiort.pipeline import plan_case
from openiort.planning.xray import plan_xray

METRIC_TOLERANCE = 0.005  # same anatomy and engine: differences come from 0.1 HU storage only


def test_plan_on_exported_ct_reproduces_the_phantom_plan(demo_case: Any, tmp_path: Path) -> None:
    on_phantom = plan_xray(demo_case, spacing_mm=2.0)
    export_plan(on_phantom.phantom, on_phantom.dose, on_phantom.to_json_dict(), tmp_path / "dicom")
    ct = load_ct_phantom(tmp_path / "dicom", rtstruct=tmp_path / "dicom" / "RS.dcm")
    on_ct = plan_xray(demo_case, ct_phantom=ct)
    assert on_ct.delivery.treatment_time_min == on_phantom.delivery.treatment_time_min
    for name in ("target", "skin", "chest_wall", "lung", "heart"):
        a, b = on_phantom.metrics[name], on_ct.metrics[name]
        assert b.volume_cc == pytest.approx(a.volume_cc, rel=METRIC_TOLERANCE)
        assert b.mean_gy == pytest.approx(a.mean_gy, rel=METRIC_TOLERANCE)


def test_ct_planning_is_refused_for_other_techniques(demo_data: dict[str, Any]) -> None:
    from openiort.case import parse_case

    demo_data["intent"].update(technique="electron", dose_definition=None, prescription_gy=21)
    with pytest.raises(CaseError, match=r"CT is available for 'xray' and 'hdr' only"):
        plan_case(parse_case(demo_data), ct_phantom=object())  # type: ignore[arg-type]
