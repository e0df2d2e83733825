"""Planning on a CT whose structure set uses TG-263 and clinical names (issue 16, part 2).

The CT is the demo phantom exported as DICOM with its ROIs renamed as a clinic would name them;
the x-ray technique's organ-at-risk list is the default limits' (skin Dmax).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
import yaml
from typer.testing import CliRunner

from openiort.case import parse_case
from openiort.cli import app
from openiort.evaluation.limits import iort_default_limits
from openiort.inputs.ct import load_ct_phantom
from openiort.inputs.roi_names import StructureNameError, map_roi_names, parse_roi_map
from openiort.io.dicom_export import export_plan
from openiort.pipeline import plan_case
from openiort.planning.xray import plan_xray

DEMO_CASE = Path(__file__).resolve().parents[2] / "examples" / "left_upper_outer_30mm.yaml"
TG263_NAMES = {
    "breast": "Breast_L",
    "skin": "Skin",
    "cavity": "Lumpectomy cavity",
    "target": "CTV_Boost",
    "chest_wall": "Chestwall_L",
    "ribs": "Ribs_L",
    "lung": "Lung_L",
    "heart": "Heart",
}


def rename_rois(rs: Path, names: dict[str, str], drop: tuple[str, ...] = ()) -> None:
    ds = pydicom.dcmread(rs)
    numbers = set()
    for roi in ds.StructureSetROISequence:
        if roi.ROIName in drop:
            numbers.add(int(roi.ROINumber))
        roi.ROIName = names.get(roi.ROIName, roi.ROIName)
    for keyword in ("StructureSetROISequence", "RTROIObservationsSequence"):
        items = getattr(ds, keyword)
        key = "ROINumber" if keyword == "StructureSetROISequence" else "ReferencedROINumber"
        setattr(ds, keyword, [i for i in items if int(i.get(key)) not in numbers])
    ds.ROIContourSequence = [
        i for i in ds.ROIContourSequence if int(i.ReferencedROINumber) not in numbers
    ]
    ds.save_as(rs)


@pytest.fixture(scope="module")
def clinical_ct(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """The demo phantom exported as a CT; its structure set renamed with TG-263 names and the
    applicator (not on a CT taken before it is placed) removed."""
    case = parse_case(yaml.safe_load(DEMO_CASE.read_text()))
    on_phantom = plan_xray(case, spacing_mm=2.0)
    out = tmp_path_factory.mktemp("tg263") / "dicom"
    export_plan(on_phantom.phantom, on_phantom.dose, on_phantom.to_json_dict(), out)
    rename_rois(out / "RS.dcm", TG263_NAMES, drop=("applicator",))
    return out, on_phantom


def test_tg263_names_plan_with_every_organ_at_risk_check(
    clinical_ct: tuple[Path, Any], demo_case: Any
) -> None:
    out, on_phantom = clinical_ct
    ct = load_ct_phantom(out, out / "RS.dcm", laterality="left")
    assert ct.description["roi_mapping"] == {v: k for k, v in TG263_NAMES.items()}
    plan = plan_case(demo_case, ct_phantom=ct)
    wanted = {lim.structure for lim in iort_default_limits().for_technique("xray")}
    assert {c.structure for c in plan.constraints} == wanted
    assert not [w for w in plan.warnings if "not checked" in w]
    # the user's CTV_Boost is the target: no generated rind beside it
    assert "target" in plan.phantom.structures and "CTV_Boost" not in plan.phantom.structures
    np.testing.assert_array_equal(
        plan.phantom.structures["target"], on_phantom.phantom.structures["target"]
    )


def test_unknown_skin_name_warns_then_maps_with_roi_map(
    clinical_ct: tuple[Path, Any], demo_case: Any, tmp_path: Path
) -> None:
    out, _ = clinical_ct

    copy = tmp_path / "ct"
    shutil.copytree(out, copy)
    rename_rois(copy / "RS.dcm", {"Skin": "Skin_Eval_IORT"})
    unmapped = plan_case(demo_case, ct_phantom=load_ct_phantom(copy, copy / "RS.dcm"))
    (warning,) = [w for w in unmapped.warnings if "not checked" in w]
    assert "skin" in warning and "'Skin_Eval_IORT'" in warning and "0 of 1" in warning
    mapped = plan_case(
        demo_case,
        ct_phantom=load_ct_phantom(
            copy, copy / "RS.dcm", roi_names=parse_roi_map("Skin_Eval_IORT=skin")
        ),
    )
    assert [c.structure for c in mapped.constraints] == ["skin"]
    assert not [w for w in mapped.warnings if "not checked" in w]


def test_laterality_and_ambiguity_are_refused() -> None:
    with pytest.raises(StructureNameError, match="'Lung_R' is a structure of the right side"):
        map_roi_names(["Lung_R", "Heart"], laterality="left")
    both = map_roi_names(["Lung_L", "Lung_R"], laterality="left")
    assert both.structure_of == {"Lung_L": "lung"} and both.unmapped == ["Lung_R"]
    with pytest.raises(StructureNameError, match="right side, but the case is left"):
        map_roi_names(["Lung_R"], laterality="left", roi_map={"Lung_R": "lung"})
    with pytest.raises(StructureNameError, match="could each be the target") as err:
        map_roi_names(["CTV_Boost", "CTV_IORT"])
    assert "ROI names found in the structure set: 'CTV_Boost', 'CTV_IORT'" in str(err.value)
    assert map_roi_names(["CTV_Boost", "PTV_Boost"]).structure_of == {"CTV_Boost": "target"}
    assert map_roi_names(["LUMPECTOMY-CAVITY"]).structure_of == {"LUMPECTOMY-CAVITY": "cavity"}
    with pytest.raises(StructureNameError, match="not in the structure set"):
        map_roi_names(["Heart"], roi_map={"Seroma": "cavity"})


def test_roi_map_syntax() -> None:
    assert parse_roi_map("Lumpectomy cavity=cavity, Heart=heart") == {
        "Lumpectomy cavity": "cavity",
        "Heart": "heart",
    }
    with pytest.raises(Exception, match="'Heart'='Herz'"):
        parse_roi_map("Heart=Herz")


def test_missing_cavity_lists_the_names_found(
    clinical_ct: tuple[Path, Any], demo_case: Any, tmp_path: Path
) -> None:
    out, _ = clinical_ct

    copy = tmp_path / "ct"
    shutil.copytree(out, copy)
    rename_rois(copy / "RS.dcm", {"Lumpectomy cavity": "Boost_Region"})
    ct = load_ct_phantom(copy, copy / "RS.dcm")
    with pytest.raises(StructureNameError, match="no cavity") as err:
        plan_case(demo_case, ct_phantom=ct)
    assert "'Boost_Region'" in str(err.value) and "'Heart'" in str(err.value)


def test_cli_refuses_rtstruct_without_ct(tmp_path: Path, clinical_ct: tuple[Path, Any]) -> None:
    out, _ = clinical_ct
    result = CliRunner().invoke(
        app,
        ["plan", str(DEMO_CASE), "--out", str(tmp_path / "p"), "--rtstruct", str(out / "RS.dcm")],
    )
    assert result.exit_code == 2
    assert "--rtstruct needs --ct" in result.output
    assert not (tmp_path / "p").exists()
