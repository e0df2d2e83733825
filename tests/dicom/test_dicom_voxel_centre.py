"""Doses a reader can reproduce (issue 16): plan.json states its DVH method and, per structure,
the mean and maximum a voxel-centre reader of the exported RT Dose gets; dicompyler-core, such
a reader, reproduces them from our RTSTRUCT and RTDOSE.

Tolerance 1 % (the issue's), for structures whose mean dose is 0.1 Gy or more: dicompyler-core
bins doses at 1 cGy, so below that its mean carries up to half a bin of its own rounding (lung
and heart of this plan, 0.025 and 0.011 Gy, differ by 0.0014 and 0.0010 Gy: binning, not
geometry). Its maximum is the upper edge of the hottest bin, up to 1 cGy above the voxel's.
Measured on the 2 mm x-ray plan of left_upper_outer_30mm: means equal to 0.05 %, maxima to
0.2 %; the sub-voxel skin mean in metrics (0.388 Gy) is 15 % below the voxel-centre 0.457 Gy,
which is what the issue saw read back.
"""

from __future__ import annotations

from pathlib import Path

import pydicom
import pydicom.dicomio
import pytest
import yaml

from openiort.case import parse_case
from openiort.evaluation.voxel_centre import DVH_METHOD
from openiort.io.dicom_export import export_plan
from openiort.planning.xray import plan_xray

DEMO = Path(__file__).resolve().parents[2] / "examples" / "left_upper_outer_30mm.yaml"
TOLERANCE = 0.01
BIN_GY = 0.01  # dicompyler-core's dose bin
MIN_MEAN_GY = 0.1


@pytest.mark.filterwarnings("ignore:The .pydicom.pixel_data_handlers. module:DeprecationWarning")
def test_dicompyler_reproduces_the_voxel_centre_figures(tmp_path: Path) -> None:
    if not hasattr(pydicom.dicomio, "read_file"):  # dicompyler-core 0.5.6 on pydicom 3
        pydicom.dicomio.read_file = pydicom.dcmread  # type: ignore[attr-defined]
    import dicompylercore.dvhcalc as dvhcalc

    plan = plan_xray(parse_case(yaml.safe_load(DEMO.read_text())), spacing_mm=2.0)
    plan_json = plan.to_json_dict()
    assert plan_json["dose"]["dvh_method"] == DVH_METHOD
    figures = plan_json["dose"]["voxel_centre"]
    assert set(figures) == set(plan_json["metrics"])
    export_plan(plan.phantom, plan.dose, plan_json, tmp_path)
    rs = pydicom.dcmread(tmp_path / "RS.dcm")
    rd = pydicom.dcmread(tmp_path / "RD.dcm")
    compared = 0
    for roi in rs.StructureSetROISequence:
        ours = figures.get(roi.ROIName)
        if ours is None or ours["mean_gy"] < MIN_MEAN_GY:
            continue
        dvh = dvhcalc.get_dvh(rs, rd, roi.ROINumber)
        assert dvh.mean == pytest.approx(ours["mean_gy"], rel=TOLERANCE), roi.ROIName
        assert ours["max_gy"] <= dvh.max + 1e-9 <= ours["max_gy"] * (1 + TOLERANCE) + BIN_GY
        compared += 1
    assert compared >= 5  # breast, skin, target, chest wall, ribs
    # The sub-voxel skin mean differs from the voxel-centre reading by more than the tolerance:
    # the reason both are written.
    skin_sub_voxel = plan_json["metrics"]["skin"]["mean_gy"]
    assert abs(skin_sub_voxel / figures["skin"]["mean_gy"] - 1) > TOLERANCE
