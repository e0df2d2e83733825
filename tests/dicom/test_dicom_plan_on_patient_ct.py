"""A plan on the patient's CT, in the patient's frame (issue 16, part 1).

The "patient's CT" is the demo phantom exported as a CT for patient DOE^JANE (id DEMO-001, the
demo case's id, born 1964-06-01, scanned 2026-12-01: 62 years old like the case). ``iort plan
--ct --rtstruct --dicom`` must write no CT and reference that series: its patient, Study, Frame
of Reference and images; the dose grid lies on the CT's voxels; another patient's CT is refused.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
import yaml
from typer.testing import CliRunner

from openiort.case import parse_case
from openiort.cli import app
from openiort.io.dicom_export import export_plan
from openiort.planning.xray import plan_xray

DEMO = Path(__file__).resolve().parents[2] / "examples" / "left_upper_outer_30mm.yaml"


def set_patient(folder: Path, **values: str) -> None:
    for f in folder.iterdir():
        ds = pydicom.dcmread(f)
        for keyword, value in values.items():
            setattr(ds, keyword, value)
        ds.save_as(f)


@pytest.fixture(scope="module")
def patient_ct(tmp_path_factory: pytest.TempPathFactory) -> Path:
    plan = plan_xray(parse_case(yaml.safe_load(DEMO.read_text())), spacing_mm=2.0)
    out = tmp_path_factory.mktemp("patient") / "ct"
    export_plan(
        plan.phantom,
        plan.dose,
        plan.to_json_dict(),
        out,
        patient_name="DOE^JANE",
        patient_id="DEMO-001",
    )
    (out / "RD.dcm").unlink()
    (out / "RP.dcm").unlink()
    set_patient(out, PatientBirthDate="19640601", StudyDate="20261201", AccessionNumber="A123")
    return out


def run_dciodvfy(path: Path, tool: str) -> list[str]:
    result = subprocess.run([tool, str(path)], capture_output=True, text=True, timeout=120)
    report = result.stdout + result.stderr
    if "bitsallocated <= bytesinword*8u" in report:  # dicom3tools and 32-bit dose: see
        ds = pydicom.dcmread(path)  # test_dicom_dciodvfy.py; validate a 16-bit copy
        pixels = np.frombuffer(ds.PixelData, dtype="<u4")
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.PixelData = (pixels >> 16).astype("<u2").tobytes()
        copy = path.with_name("copy16.dcm")
        ds.save_as(copy, enforce_file_format=True)
        result = subprocess.run([tool, str(copy)], capture_output=True, text=True, timeout=120)
        report = result.stdout + result.stderr
    return [line for line in report.splitlines() if line.startswith("Error")]


def test_plan_on_the_patients_ct_joins_its_study_and_frame(
    patient_ct: Path, tmp_path: Path, require_tool: Callable[[str], str]
) -> None:
    out = tmp_path / "plan"
    result = CliRunner().invoke(
        app,
        [
            "plan",
            str(DEMO),
            "--out",
            str(out),
            "--ct",
            str(patient_ct),
            "--rtstruct",
            str(patient_ct / "RS.dcm"),
            "--dicom",
        ],
    )
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in (out / "dicom").iterdir())
    assert written == ["RD.dcm", "RP.dcm", "RS.dcm"]  # no CT of its own
    cts = [pydicom.dcmread(f) for f in patient_ct.glob("CT_*.dcm")]
    ct0 = cts[0]
    ct_uids = {str(c.SOPInstanceUID) for c in cts}
    objects = {n: pydicom.dcmread(out / "dicom" / n) for n in written}
    for name, ds in objects.items():
        assert ds.StudyInstanceUID == ct0.StudyInstanceUID, name
        assert ds.FrameOfReferenceUID == ct0.FrameOfReferenceUID, name
        assert (ds.PatientID, str(ds.PatientName)) == ("DEMO-001", "DOE^JANE"), name
        assert (ds.PatientBirthDate, ds.StudyDate, ds.AccessionNumber) == (
            "19640601",
            "20261201",
            "A123",
        ), name
        assert ds.SeriesInstanceUID != ct0.SeriesInstanceUID
        assert run_dciodvfy(out / "dicom" / name, require_tool("dciodvfy")) == [], name
    rs = objects["RS.dcm"]
    series_ref = (
        rs.ReferencedFrameOfReferenceSequence[0]
        .RTReferencedStudySequence[0]
        .RTReferencedSeriesSequence[0]
    )
    assert series_ref.SeriesInstanceUID == ct0.SeriesInstanceUID
    referenced = {str(i.ReferencedSOPInstanceUID) for i in series_ref.ContourImageSequence}
    assert referenced == ct_uids
    by_z = {round(float(c.ImagePositionPatient[2]), 3): str(c.SOPInstanceUID) for c in cts}
    for roi in rs.ROIContourSequence:
        for contour in roi.ContourSequence:
            z = round(float(contour.ContourData[2]), 3)
            assert contour.ContourImageSequence[0].ReferencedSOPInstanceUID == by_z[z]
    # the dose grid lies on the CT's voxels: same orientation, spacing and voxel centres
    rd = objects["RD.dcm"]
    assert list(map(float, rd.ImageOrientationPatient)) == list(
        map(float, ct0.ImageOrientationPatient)
    )
    assert list(map(float, rd.PixelSpacing)) == list(map(float, ct0.PixelSpacing))
    offset = np.array(rd.ImagePositionPatient, float) - np.array(ct0.ImagePositionPatient, float)
    spacing = float(ct0.PixelSpacing[0])
    assert np.allclose(offset / spacing, np.round(offset / spacing), atol=1e-3)
    # `iort export` of the plan folder needs the CT, and then joins the same study
    again = tmp_path / "again"
    missing = CliRunner().invoke(app, ["export", str(out), "--dicom", str(again)])
    assert missing.exit_code == 2 and "--ct" in missing.output
    ok = CliRunner().invoke(
        app, ["export", str(out), "--dicom", str(again), "--ct", str(patient_ct)]
    )
    assert ok.exit_code == 0, ok.output
    assert pydicom.dcmread(again / "RP.dcm").StudyInstanceUID == ct0.StudyInstanceUID


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"PatientID": "OTHER-7"}, "Patient ID"),
        ({"PatientBirthDate": "19900101"}, "age"),
    ],
)
def test_another_patients_ct_is_refused(
    patient_ct: Path, tmp_path: Path, values: dict[str, str], problem: str
) -> None:
    ct = tmp_path / "ct"
    shutil.copytree(patient_ct, ct)
    set_patient(ct, **values)
    out = tmp_path / "plan"
    result = CliRunner().invoke(
        app,
        ["plan", str(DEMO), "--out", str(out), "--ct", str(ct), "--rtstruct", str(ct / "RS.dcm")],
    )
    assert result.exit_code == 2
    assert problem in result.output and "OTHER-7" not in result.output
    assert not out.exists()


def test_export_on_a_ct_refuses_anonymising_and_foreign_grids(patient_ct: Path) -> None:
    from dataclasses import replace

    from openiort.grid import Grid
    from openiort.inputs.ct import load_ct
    from openiort.io.errors import DicomExportError

    phantom, reference = load_ct(patient_ct, patient_ct / "RS.dcm")
    with pytest.raises(DicomExportError, match="not axial"):
        replace(reference, normal=(0.0, 1.0, 0.0)).sop_uids_for(phantom.grid)
    shifted = Grid(
        (*phantom.grid.origin_mm[:2], phantom.grid.origin_mm[2] + 0.7),
        phantom.grid.spacing_mm,
        phantom.grid.shape,
    )
    with pytest.raises(DicomExportError, match="on no image of the CT"):
        reference.sop_uids_for(shifted)
    plan = plan_xray(parse_case(yaml.safe_load(DEMO.read_text())), ct_phantom=phantom)
    with pytest.raises(DicomExportError, match="de-identify the CT and the plan together"):
        export_plan(
            plan.phantom,
            plan.dose,
            plan.to_json_dict(),
            patient_ct.parent / "anon",
            anonymise=True,
            ct_reference=reference,
        )
    assert not (patient_ct.parent / "anon").exists()
