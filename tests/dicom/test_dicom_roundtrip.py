"""Export -> import round trip of the DICOM RT objects, for every patient position."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from numpy.typing import NDArray
from pydicom.uid import UID

from openiort.anatomy.breast_phantom import build_breast_phantom
from openiort.anatomy.hu_calibration import load_calibration, phantom_hu
from openiort.anatomy.phantom import Phantom
from openiort.case import load_case
from openiort.dosegrid import DoseGrid, Provenance
from openiort.inputs.ct import load_ct_phantom
from openiort.inputs.dicom_read import read_ct_series, read_rtdose
from openiort.io.anonymise import anonymise_directory
from openiort.io.ct_writer import RESCALE_SLOPE
from openiort.io.dicom_export import export_plan
from openiort.io.errors import DicomExportError, DicomImportError

POSITIONS = ("HFS", "FFS", "HFP", "FFP")


def material_names(phantom: Phantom) -> NDArray[np.str_]:
    return np.asarray(phantom.materials)[phantom.material_ids]


@pytest.fixture(scope="module", params=POSITIONS)
def exported(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    phantom: Phantom,
    dose: DoseGrid,
    when: datetime,
    make_plan: Callable[[str], dict[str, Any]],
) -> tuple[str, Path, Phantom]:
    out = tmp_path_factory.mktemp(f"export_{request.param}")
    export_plan(
        phantom,
        dose,
        make_plan("xray"),
        out,
        patient_name="Müller^Zoë",
        patient_id="RT-1",
        patient_position=request.param,
        when=when,
    )
    return request.param, out, load_ct_phantom(out, out / "RS.dcm")


def test_round_trip_recovers_grid_materials_density(
    exported: tuple[str, Path, Phantom], phantom: Phantom
) -> None:
    position, _, back = exported
    assert back.grid == phantom.grid
    assert back.description["patient_position"] == position
    # Materials: every voxel, exactly (the calibration's bins and the 0.1 HU storage resolve
    # the 1 % breast mixtures, see hu_calibration.csv).
    np.testing.assert_array_equal(material_names(back), material_names(phantom))
    # Density: within the CT number quantisation, 0.05 HU / (1000 + HU_nominal) relative,
    # largest for lung (1000 - 741 HU): 0.05 / 259 = 1.9e-4.
    rel = np.abs(back.density_g_cm3 - phantom.density_g_cm3) / phantom.density_g_cm3
    assert float(rel.max()) < 0.5 * RESCALE_SLOPE / 259.0 + 1e-6


def test_round_trip_recovers_structures(
    exported: tuple[str, Path, Phantom], phantom: Phantom
) -> None:
    _, _, back = exported
    assert set(back.structures) == set(phantom.structures)
    for name, mask in phantom.structures.items():
        # The contours run between voxel centres, so the rasterised mask is the original voxel
        # for voxel and the volume is the same up to floating-point rounding.
        assert back.volume_cc(name) == pytest.approx(phantom.volume_cc(name), rel=1e-12)
        np.testing.assert_array_equal(back.structures[name], mask, err_msg=name)
    assert back.applicator_centre_mm == pytest.approx((4.0, -2.0, 1.0), abs=1e-9)


def test_round_trip_dose_exact_to_stored_precision(
    exported: tuple[str, Path, Phantom], dose: DoseGrid
) -> None:
    _, out, _ = exported
    rd = read_rtdose(out / "RD.dcm")
    assert rd.grid == dose.grid
    assert (rd.dose_units, rd.dose_type, rd.summation_type) == ("GY", "PHYSICAL", "PLAN")
    assert rd.medium == "water_in_water"
    assert rd.bits_allocated == 32
    # Stored as uint32 x DoseGridScaling: every voxel within half a scaling step (+ float
    # rounding of the product).
    err = np.abs(rd.dose - dose.dose_gy)
    assert float(err.max()) <= 0.5 * rd.dose_grid_scaling * (1 + 1e-9)
    assert rd.dose_grid_scaling <= float(dose.dose_gy.max()) / (2**32 - 1) * (1 + 1e-6)


def test_sixteen_bit_dose_precision(
    tmp_path: Path,
    phantom: Phantom,
    dose: DoseGrid,
    when: datetime,
    make_plan: Callable[[str], dict[str, Any]],
) -> None:
    export_plan(phantom, dose, make_plan("xray"), tmp_path, dose_bits=16, when=when)
    rd = read_rtdose(tmp_path / "RD.dcm")
    assert rd.bits_allocated == 16
    assert rd.dose_grid_scaling == pytest.approx(float(dose.dose_gy.max()) / 65535, rel=1e-6)
    assert float(np.abs(rd.dose - dose.dose_gy).max()) <= 0.5 * rd.dose_grid_scaling * (1 + 1e-9)


def test_slice_file_order_does_not_matter(
    tmp_path: Path,
    phantom: Phantom,
    dose: DoseGrid,
    when: datetime,
    make_plan: Callable[[str], dict[str, Any]],
) -> None:
    out = tmp_path / "ffs"
    export_plan(phantom, dose, make_plan("hdr"), out, patient_position="FFS", when=when)
    # Shuffle the file names so that name order, instance number and position disagree.
    ct = sorted(out.glob("CT_*.dcm"))
    names = [p.name for p in ct]
    random.Random(7).shuffle(names)
    for p, name in zip(ct, names, strict=True):
        p.rename(out / ("tmp_" + name))
    for p in out.glob("tmp_*"):
        p.rename(out / p.name.removeprefix("tmp_"))
    back = load_ct_phantom(out, out / "RS.dcm")
    np.testing.assert_array_equal(material_names(back), material_names(phantom))
    for name, mask in phantom.structures.items():
        np.testing.assert_array_equal(back.structures[name], mask)


def test_ct_numbers_follow_calibration(
    tmp_path: Path,
    phantom: Phantom,
    dose: DoseGrid,
    when: datetime,
    make_plan: Callable[[str], dict[str, Any]],
) -> None:
    export_plan(phantom, dose, make_plan("xray"), tmp_path, when=when)
    series = read_ct_series(tmp_path)
    expected = phantom_hu(phantom, load_calibration())
    # 0.1 HU storage: half a step of rounding.
    assert float(np.abs(series.hu - expected).max()) <= 0.5 * RESCALE_SLOPE + 1e-9
    air = material_names(phantom) == "air"
    assert float(series.hu[air].mean()) == pytest.approx(-998.9, abs=0.05)


def test_common_attributes_and_uid_links(
    tmp_path: Path,
    phantom: Phantom,
    dose: DoseGrid,
    when: datetime,
    make_plan: Callable[[str], dict[str, Any]],
) -> None:
    files = export_plan(
        phantom,
        dose,
        make_plan("electron"),
        tmp_path,
        patient_name="Müller^Zoë",
        patient_id="RT-1",
        when=when,
    )
    objects = [pydicom.dcmread(f) for f in files]
    ct = [o for o in objects if o.Modality == "CT"]
    rs, rd, rp = (
        next(o for o in objects if o.Modality == m) for m in ("RTSTRUCT", "RTDOSE", "RTPLAN")
    )
    for o in objects:
        assert o.SpecificCharacterSet == "ISO_IR 192"
        assert str(o.PatientName) == "Müller^Zoë"
        assert o.PatientID == "RT-1"
        assert o.StudyDate == "20250314" and o.StudyTime == "092653"
        assert o.StudyInstanceUID == ct[0].StudyInstanceUID
        assert o.FrameOfReferenceUID == ct[0].FrameOfReferenceUID
        assert o.file_meta.MediaStorageSOPInstanceUID == o.SOPInstanceUID
    assert len({o.SeriesInstanceUID for o in objects}) == 4
    assert len({o.SOPInstanceUID for o in objects}) == len(objects)
    ct_uids = {o.SOPInstanceUID for o in ct}
    series_ref = rs.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0]
    referenced = {
        i.ReferencedSOPInstanceUID
        for i in series_ref.RTReferencedSeriesSequence[0].ContourImageSequence
    }
    assert referenced == ct_uids
    for roi in rs.ROIContourSequence:
        for contour in roi.ContourSequence:
            assert contour.ContourImageSequence[0].ReferencedSOPInstanceUID in ct_uids
    assert [r.ROIName for r in rs.StructureSetROISequence] == list(phantom.structures)
    assert rp.ReferencedStructureSetSequence[0].ReferencedSOPInstanceUID == rs.SOPInstanceUID
    assert rd.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID == rp.SOPInstanceUID


def test_rtplan_electron_content(
    tmp_path: Path,
    phantom: Phantom,
    dose: DoseGrid,
    when: datetime,
    make_plan: Callable[[str], dict[str, Any]],
) -> None:
    export_plan(phantom, dose, make_plan("electron"), tmp_path, when=when)
    rp = pydicom.dcmread(tmp_path / "RP.dcm")
    beam = rp.BeamSequence[0]
    assert beam.RadiationType == "ELECTRON"
    assert float(beam.ControlPointSequence[0].NominalBeamEnergy) == 9.0
    assert beam.ApplicatorSequence[0].ApplicatorType == "INTRAOPERATIVE"
    assert beam.ApplicatorSequence[0].ApplicatorID == "C5B15"
    assert float(beam.ApplicatorSequence[0].ApplicatorGeometrySequence[0].ApplicatorOpening) == 50.0
    assert "bevel 15 deg" in beam.ApplicatorSequence[0].ApplicatorDescription
    assert float(rp.FractionGroupSequence[0].ReferencedBeamSequence[0].BeamMeterset) == 2345.6
    assert float(rp.DoseReferenceSequence[0].TargetPrescriptionDose) == 21.0
    assert rp.ApprovalStatus == "APPROVED"


def test_rtplan_hdr_content(
    tmp_path: Path,
    phantom: Phantom,
    dose: DoseGrid,
    when: datetime,
    make_plan: Callable[[str], dict[str, Any]],
) -> None:
    plan = make_plan("hdr")
    export_plan(phantom, dose, plan, tmp_path, when=when)
    rp = pydicom.dcmread(tmp_path / "RP.dcm")
    source = rp.SourceSequence[0]
    assert source.SourceIsotopeName == "Ir-192"
    assert float(source.SourceIsotopeHalfLife) == 73.827  # DDEP value in brachy_isotopes.csv
    assert float(source.ReferenceAirKermaRate) == 40700.0
    assert source.SourceModelID == "mHDR-v2r"
    setup = rp.ApplicationSetupSequence[0]
    channels = setup.ChannelSequence
    assert len(channels) == 3
    times = np.array(plan["dwell_times_s"])
    assert sum(float(c.ChannelTotalTime) for c in channels) == pytest.approx(times.sum())
    # Total reference air kerma = S_K x total time (uGy at 1 m).
    assert float(setup.TotalReferenceAirKerma) == pytest.approx(
        40700.0 * times.sum() / 3600, rel=1e-9
    )
    first = channels[0]
    assert first.SourceMovementType == "STEPWISE"
    assert float(first.SourceApplicatorStepSize) == pytest.approx(5.0)
    points = first.BrachyControlPointSequence
    assert len(points) == 6
    dwell = [
        float(points[2 * i + 1].CumulativeTimeWeight) - float(points[2 * i].CumulativeTimeWeight)
        for i in range(3)
    ]
    assert dwell == pytest.approx(times[:3].tolist())
    assert [float(v) for v in points[2].ControlPoint3DPosition] == plan["dwell_positions_mm"][1]


def test_rtplan_xray_content(
    tmp_path: Path,
    phantom: Phantom,
    dose: DoseGrid,
    when: datetime,
    make_plan: Callable[[str], dict[str, Any]],
) -> None:
    export_plan(phantom, dose, make_plan("xray"), tmp_path, when=when)
    rp = pydicom.dcmread(tmp_path / "RP.dcm")
    channel = rp.ApplicationSetupSequence[0].ChannelSequence[0]
    assert channel.SourceMovementType == "FIXED"
    assert float(channel.ChannelTotalTime) == pytest.approx(24.5 * 60)
    position = [float(v) for v in channel.BrachyControlPointSequence[0].ControlPoint3DPosition]
    assert position == [4.0, -2.0, 1.0]
    assert "3.5 cm" in rp.ApplicationSetupSequence[0].ApplicationSetupName


def test_anonymise_keeps_links_and_removes_identity(
    tmp_path: Path,
    phantom: Phantom,
    dose: DoseGrid,
    when: datetime,
    make_plan: Callable[[str], dict[str, Any]],
) -> None:
    files = export_plan(
        phantom,
        dose,
        make_plan("hdr"),
        tmp_path,
        patient_name="Müller^Zoë",
        patient_id="RT-1",
        anonymise=True,
        when=when,
    )
    objects = [pydicom.dcmread(f) for f in files]
    for o in objects:
        values = [(e.keyword, e.VR, str(e.value)) for e in o.iterall() if e.VR not in ("OB", "OW")]
        assert not any("Müller" in v or "RT-1" in v for _, _, v in values)
        # The only date left is the source-strength reference date of the HDR source (needed
        # to decay-correct the source, not a patient attribute).
        dates = {k for k, vr, v in values if vr in ("DA", "DT") and v}
        assert dates <= {"SourceStrengthReferenceDate"}
        assert not any(k.startswith("Institution") for k, _, _ in values)
        assert o.PatientIdentityRemoved == "YES"
        assert str(o.PatientName) == "ANONYMOUS"
        assert o.PatientID.startswith("ANON-")
        assert o.file_meta.MediaStorageSOPInstanceUID == o.SOPInstanceUID
    assert len({o.PatientID for o in objects}) == 1
    assert len({o.FrameOfReferenceUID for o in objects}) == 1
    assert len({o.StudyInstanceUID for o in objects}) == 1
    # The links survive the UID remapping, and the import still works.
    back = load_ct_phantom(tmp_path, tmp_path / "RS.dcm")
    for name, mask in phantom.structures.items():
        np.testing.assert_array_equal(back.structures[name], mask)
    rs = next(o for o in objects if o.Modality == "RTSTRUCT")
    rp = next(o for o in objects if o.Modality == "RTPLAN")
    rd = next(o for o in objects if o.Modality == "RTDOSE")
    assert rp.ReferencedStructureSetSequence[0].ReferencedSOPInstanceUID == rs.SOPInstanceUID
    assert rd.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID == rp.SOPInstanceUID


def test_export_refuses_bad_input_and_writes_nothing(
    tmp_path: Path,
    phantom: Phantom,
    dose: DoseGrid,
    when: datetime,
    make_plan: Callable[[str], dict[str, Any]],
) -> None:
    bad_plan = make_plan("hdr")
    del bad_plan["air_kerma_strength_u"]
    out = tmp_path / "out"
    with pytest.raises(DicomExportError, match="air_kerma_strength_u"):
        export_plan(phantom, dose, bad_plan, out, when=when)
    assert not out.exists() or not any(out.iterdir())
    negative = DoseGrid(
        dose.grid, dose.dose_gy - 1.0, dose.medium, dose.normalisation, dose.provenance
    )
    with pytest.raises(DicomExportError, match="negative"):
        export_plan(phantom, negative, make_plan("xray"), out, when=when)
    assert not out.exists() or not any(out.iterdir())
    export_plan(phantom, dose, make_plan("xray"), out, when=when)
    with pytest.raises(DicomExportError, match="not empty"):
        export_plan(phantom, dose, make_plan("xray"), out, when=when)


def test_dose_on_its_own_grid(
    tmp_path: Path,
    when: datetime,
    make_dose: Callable[..., DoseGrid],
    make_phantom: Callable[..., Phantom],
    make_plan: Callable[[str], dict[str, Any]],
) -> None:
    phantom = make_phantom(2.0)
    coarse = make_phantom(4.0)
    dose = make_dose(coarse)
    export_plan(phantom, dose, make_plan("xray"), tmp_path, patient_position="HFP", when=when)
    rd = read_rtdose(tmp_path / "RD.dcm")
    assert rd.grid == coarse.grid
    assert float(np.abs(rd.dose - dose.dose_gy).max()) <= 0.5 * rd.dose_grid_scaling * (1 + 1e-9)


def test_anonymise_directory_remaps_every_uid(
    tmp_path: Path,
    phantom: Phantom,
    dose: DoseGrid,
    when: datetime,
    make_plan: Callable[[str], dict[str, Any]],
) -> None:
    src = tmp_path / "plain"
    export_plan(
        phantom,
        dose,
        make_plan("xray"),
        src,
        patient_name="Müller^Zoë",
        patient_id="RT-1",
        when=when,
    )
    before = {
        str(e.value)
        for f in src.iterdir()
        for e in pydicom.dcmread(f).iterall()
        if e.VR == "UI" and e.value
    }
    dst = tmp_path / "anon"
    written = anonymise_directory(src, dst, patient_id="STUDY-7")
    after: set[str] = set()
    for f in written:
        o = pydicom.dcmread(f)
        assert o.PatientID == "STUDY-7" and str(o.PatientName) == "ANONYMOUS"
        assert "StudyDescription" not in o and "ImageComments" not in o  # free text removed
        o.walk(lambda _, e: after.add(str(e.value)) if e.VR == "UI" and e.value else None)
    kept = before & after
    assert kept and all(UID(u).name != u for u in kept)  # only registered UIDs survive
    back = load_ct_phantom(
        dst, next(f for f in written if pydicom.dcmread(f).Modality == "RTSTRUCT")
    )
    np.testing.assert_array_equal(back.structures["target"], phantom.structures["target"])


def test_roi_renaming_and_empty_rois(
    tmp_path: Path,
    phantom: Phantom,
    dose: DoseGrid,
    when: datetime,
    make_plan: Callable[[str], dict[str, Any]],
) -> None:
    """Clinical ROI names map onto structure names; an ROI without contours is not a structure."""
    structures = dict(phantom.structures)
    structures["marker"] = np.zeros(phantom.grid.shape, dtype=bool)
    tagged = Phantom(
        grid=phantom.grid,
        material_ids=phantom.material_ids,
        density_g_cm3=phantom.density_g_cm3,
        materials=phantom.materials,
        structures=structures,
        applicator_centre_mm=phantom.applicator_centre_mm,
    )
    export_plan(tagged, dose, make_plan("xray"), tmp_path, when=when)
    back = load_ct_phantom(tmp_path, tmp_path / "RS.dcm", roi_names={"heart": "Heart"})
    assert "Heart" in back.structures and "heart" not in back.structures
    np.testing.assert_array_equal(back.structures["Heart"], phantom.structures["heart"])
    assert "marker" not in back.structures
    assert back.description["empty_rois"] == ["marker"]
    with pytest.raises(DicomImportError, match="two ROIs"):
        load_ct_phantom(tmp_path, tmp_path / "RS.dcm", roi_names={"heart": "lung"})


def demo_phantom(spacing_mm: float) -> Phantom:
    case = load_case(Path(str(resources.files("openiort").joinpath("data/demo_case.yaml"))))
    assert case.anatomy.cavity_diameter_mm is not None
    return build_breast_phantom(case, case.anatomy.cavity_diameter_mm / 2, spacing_mm=spacing_mm)


def check_demo_round_trip(
    phantom: Phantom,
    out: Path,
    position: str,
    when: datetime,
    make_plan: Callable[[str], dict[str, Any]],
) -> None:
    r = phantom.grid.distance_from_mm(phantom.applicator_centre_mm or (0.0, 0.0, 0.0))
    radius = phantom.applicator_radius_mm or 1.0
    dose = DoseGrid(
        phantom.grid,
        20.0 * (radius / np.maximum(r, radius)) ** 2,
        "water_in_water",
        "20 Gy at the applicator surface, 1/r^2",
        Provenance("test", "0", "synthetic", "0" * 64, "0" * 64, "none"),
    )
    export_plan(phantom, dose, make_plan("xray"), out, patient_position=position, when=when)
    back = load_ct_phantom(out, out / "RS.dcm")
    assert back.grid == phantom.grid
    np.testing.assert_array_equal(material_names(back), material_names(phantom))
    for name, mask in phantom.structures.items():
        # Voxel for voxel (contours between voxel centres): the same volume up to rounding.
        assert back.volume_cc(name) == pytest.approx(phantom.volume_cc(name), rel=1e-12), name
        np.testing.assert_array_equal(back.structures[name], mask, err_msg=name)
    rd = read_rtdose(out / "RD.dcm")
    assert float(np.abs(rd.dose - dose.dose_gy).max()) <= 0.5 * rd.dose_grid_scaling * (1 + 1e-9)


def test_demo_phantom_round_trip(
    tmp_path: Path, when: datetime, make_plan: Callable[[str], dict[str, Any]]
) -> None:
    """The built-in demo case's phantom (left breast, heart, ribs, lung; 2 mm voxels here)."""
    check_demo_round_trip(demo_phantom(2.0), tmp_path, "FFP", when, make_plan)


@pytest.mark.validate
@pytest.mark.parametrize("position", POSITIONS)
def test_demo_phantom_round_trip_1mm(
    position: str, tmp_path: Path, when: datetime, make_plan: Callable[[str], dict[str, Any]]
) -> None:
    """The demo phantom at its planning resolution (1 mm, 7 million voxels), every position."""
    check_demo_round_trip(demo_phantom(1.0), tmp_path, position, when, make_plan)
