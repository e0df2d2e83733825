"""Corrupt or unsupported DICOM input: one clear DicomImportError naming the file, never another
exception, never a half-imported result, never output."""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
import typer
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag
from pydicom.uid import MRImageStorage
from typer.testing import CliRunner

from openiort.anatomy.phantom import Phantom
from openiort.dosegrid import DoseGrid
from openiort.inputs.ct import load_ct_phantom
from openiort.io.commands import export
from openiort.io.dicom_export import export_plan
from openiort.io.errors import DicomImportError
from openiort.io.plan_dir import PLAN_ARRAYS, PLAN_JSON, write_plan_dir


@pytest.fixture(scope="module")
def pristine(
    tmp_path_factory: pytest.TempPathFactory,
    when: datetime,
    make_dose: Callable[..., DoseGrid],
    make_phantom: Callable[..., Phantom],
    make_plan: Callable[[str], dict[str, Any]],
) -> Path:
    """A small export (4 mm voxels, 10 slices) to corrupt copies of."""
    out = tmp_path_factory.mktemp("pristine")
    phantom = make_phantom(4.0)
    export_plan(
        phantom, make_dose(phantom), make_plan("xray"), out, patient_position="HFP", when=when
    )
    return out


@pytest.fixture
def copy(pristine: Path, tmp_path: Path) -> Path:
    target = tmp_path / "ct"
    shutil.copytree(pristine, target)
    return target


def expect_import_error(directory: Path, names: str) -> DicomImportError:
    """load_ct_phantom raises DicomImportError (nothing else) whose message names ``names``."""
    with pytest.raises(DicomImportError) as info:
        load_ct_phantom(directory, directory / "RS.dcm")
    assert names in str(info.value), str(info.value)
    assert "Traceback" not in str(info.value)
    return info.value


def edit(path: Path, change: Callable[[pydicom.Dataset], None]) -> None:
    dataset = pydicom.dcmread(path)
    change(dataset)
    dataset.save_as(path, enforce_file_format=False)


@pytest.mark.parametrize("length", [0, 10, 128, 132, 300, 900, -2000, -1])
def test_truncated_ct_file(copy: Path, length: int) -> None:
    victim = copy / "CT_0004.dcm"
    data = victim.read_bytes()
    victim.write_bytes(data[:length])
    expect_import_error(copy, "CT_0004.dcm")


@pytest.mark.parametrize("fraction", [0.0, 0.05, 0.3, 0.6, 0.95])
def test_truncated_rtstruct(copy: Path, fraction: float) -> None:
    victim = copy / "RS.dcm"
    data = victim.read_bytes()
    victim.write_bytes(data[: int(len(data) * fraction)])
    expect_import_error(copy, "RS.dcm")


def raw(keyword: str, value: bytes) -> Callable[[pydicom.Dataset], None]:
    """Put bytes that pydicom itself would refuse to encode into an element."""
    tag = Tag(keyword)

    def change(d: pydicom.Dataset) -> None:
        padded = value + b" " * (len(value) % 2)
        d[tag] = RawDataElement(tag, dictionary_VR(tag), len(padded), padded, 0, False, True)

    return change


def _oblique(d: pydicom.Dataset) -> None:
    c, s = np.cos(0.2), np.sin(0.2)
    d.ImageOrientationPatient = [f"{c:.6f}", f"{s:.6f}", "0", f"{-s:.6f}", f"{c:.6f}", "0"]


WRONG_TAGS: dict[str, tuple[Callable[[pydicom.Dataset], None], str]] = {
    "no pixel data": (lambda d: delattr(d, "PixelData"), "missing pixel data"),
    "rows do not match the pixels": (lambda d: setattr(d, "Rows", d.Rows + 3), "CT_0005"),
    "non-CT modality": (lambda d: setattr(d, "Modality", "MR"), "non-CT modality MR"),
    "MR SOP class": (lambda d: setattr(d, "SOPClassUID", MRImageStorage), "unsupported CT object"),
    "no rescale": (lambda d: delattr(d, "RescaleIntercept"), "RescaleSlope/RescaleIntercept"),
    "bad pixel spacing": (raw("PixelSpacing", b"2\\abc"), "CT_0005"),
    "text in rows": (raw("Rows", b"\x00"), "CT_0005"),
    "one pixel spacing value": (lambda d: setattr(d, "PixelSpacing", ["2"]), "PixelSpacing"),
    "oblique slice": (_oblique, "ImageOrientationPatient differs"),
    "no position": (lambda d: delattr(d, "ImagePositionPatient"), "ImagePositionPatient"),
    "shifted in plane": (
        lambda d: setattr(
            d,
            "ImagePositionPatient",
            [float(v) + (5.0 if i == 0 else 0.0) for i, v in enumerate(d.ImagePositionPatient)],
        ),
        "shifted in its plane",
    ),
    "other frame of reference": (
        lambda d: setattr(d, "FrameOfReferenceUID", "1.2.3.4"),
        "FrameOfReferenceUID",
    ),
    "no modality": (lambda d: delattr(d, "Modality"), "missing Modality"),
    "inf position": (raw("ImagePositionPatient", b"0\\0\\inf"), "ImagePositionPatient"),
    "bad slope": (raw("RescaleSlope", b"x1"), "CT_0005"),
}


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns while the test corrupts
@pytest.mark.parametrize("case", sorted(WRONG_TAGS))
def test_wrong_tags_in_one_slice(copy: Path, case: str) -> None:
    change, message = WRONG_TAGS[case]
    edit(copy / "CT_0005.dcm", change)
    error = expect_import_error(copy, "CT_0005.dcm" if "CT_0005" not in message else message)
    assert message in str(error)


@pytest.mark.parametrize(
    "syntax",
    [b"1.2.3.4.5.6.7.8.9.10", b"1.2.840.10008.1.2.5\x00"],  # unknown private; RLE, not encoded
)
def test_undecodable_transfer_syntax(copy: Path, syntax: bytes) -> None:
    victim = copy / "CT_0005.dcm"
    data = victim.read_bytes()
    explicit_le = b"1.2.840.10008.1.2.1\x00"
    assert len(syntax) == len(explicit_le) and data.count(explicit_le) == 1
    victim.write_bytes(data.replace(explicit_le, syntax))
    error = expect_import_error(copy, "CT_0005.dcm")
    assert "transfer syntax" in str(error) or "pixel data" in str(error)


def test_missing_slice_gives_inconsistent_spacing(copy: Path) -> None:
    (copy / "CT_0006.dcm").unlink()
    error = expect_import_error(copy, "CT_0007.dcm")
    assert "inconsistent slice spacing" in str(error)


def test_duplicate_slice(copy: Path) -> None:
    shutil.copy(copy / "CT_0006.dcm", copy / "CT_0006_copy.dcm")
    edit(copy / "CT_0006_copy.dcm", lambda d: setattr(d, "SOPInstanceUID", "1.2.3.4.5"))
    assert "duplicate slice position" in str(expect_import_error(copy, "CT_0006"))


def test_two_series(copy: Path) -> None:
    edit(copy / "CT_0002.dcm", lambda d: setattr(d, "SeriesInstanceUID", "1.2.3.4.6"))
    assert "2 CT series" in str(expect_import_error(copy, str(copy)))


def test_not_dicom(copy: Path) -> None:
    (copy / "notes.txt").write_text("not an image")
    assert "not a DICOM file" in str(expect_import_error(copy, "notes.txt"))


RTSTRUCT_EDITS: dict[str, tuple[Callable[[pydicom.Dataset], None], str]] = {
    "contour data not triples": (
        lambda d: setattr(
            d.ROIContourSequence[0].ContourSequence[0],
            "ContourData",
            list(d.ROIContourSequence[0].ContourSequence[0].ContourData)[:-1],
        ),
        "malformed ContourData",
    ),
    "contour point count": (
        lambda d: setattr(d.ROIContourSequence[0].ContourSequence[0], "NumberOfContourPoints", 1),
        "NumberOfContourPoints",
    ),
    "other frame of reference": (
        lambda d: (
            setattr(d.ReferencedFrameOfReferenceSequence[0], "FrameOfReferenceUID", "1.2.3")
            or setattr(d.StructureSetROISequence[0], "ReferencedFrameOfReferenceUID", "1.2.3")
            or [
                setattr(r, "ReferencedFrameOfReferenceUID", "1.2.3")
                for r in d.StructureSetROISequence
            ]
        ),
        "another Frame of Reference",
    ),
    "contour between slices": (
        lambda d: setattr(
            d.ROIContourSequence[0].ContourSequence[0],
            "ContourData",
            [
                float(v) + (1.7 if i % 3 == 2 else 0.0)
                for i, v in enumerate(d.ROIContourSequence[0].ContourSequence[0].ContourData)
            ],
        ),
        "does not lie on a CT slice",
    ),
    "unknown ROI number": (
        lambda d: setattr(d.ROIContourSequence[0], "ReferencedROINumber", 99),
        "unknown ROI number",
    ),
    "not a structure set": (lambda d: setattr(d, "Modality", "RTPLAN"), "not an RT Structure Set"),
}


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns while the test corrupts
@pytest.mark.parametrize("case", sorted(RTSTRUCT_EDITS))
def test_wrong_tags_in_rtstruct(copy: Path, case: str) -> None:
    change, message = RTSTRUCT_EDITS[case]
    edit(copy / "RS.dcm", change)
    assert message in str(expect_import_error(copy, "RS.dcm"))


def test_random_byte_corruption_never_escapes(
    pristine: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Seeded fuzzing of headers and contour text: either a clean import or DicomImportError,
    and nothing in the logs (pydicom's warnings quote attribute values)."""
    rng = random.Random(20250314)
    outcomes = {"error": 0, "ok": 0}
    for trial in range(40):
        target = tmp_path / f"t{trial}"
        shutil.copytree(pristine, target)
        name = rng.choice(["CT_0001.dcm", "CT_0005.dcm", "RS.dcm"])
        data = bytearray((target / name).read_bytes())
        end = min(len(data), 4000)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(132, end)] = rng.randrange(256)
        (target / name).write_bytes(bytes(data))
        try:
            load_ct_phantom(target, target / "RS.dcm")
            outcomes["ok"] += 1
        except DicomImportError as exc:
            assert name in str(exc) or str(target) in str(exc)
            outcomes["error"] += 1
    assert outcomes["error"] > 0  # the corruption did reach the parser
    assert [r for r in caplog.records if r.name.startswith("pydicom")] == []


def test_export_command_on_corrupt_plan_dir_writes_nothing(
    tmp_path: Path,
    make_dose: Callable[..., DoseGrid],
    make_phantom: Callable[..., Phantom],
    make_plan: Callable[[str], dict[str, Any]],
) -> None:
    phantom = make_phantom(4.0)
    plan_dir = tmp_path / "plan"
    write_plan_dir(plan_dir, make_plan("xray"), phantom, make_dose(phantom))
    app = typer.Typer()
    app.command()(export)
    runner = CliRunner()
    arrays = (plan_dir / PLAN_ARRAYS).read_bytes()
    (plan_dir / PLAN_ARRAYS).write_bytes(arrays[: len(arrays) // 2])
    out = tmp_path / "dicom"
    result = runner.invoke(app, [str(plan_dir), "--dicom", str(out)])
    assert result.exit_code == 2
    assert "error:" in result.output and PLAN_ARRAYS in result.output
    assert "Traceback" not in result.output
    assert not out.exists()
    (plan_dir / PLAN_ARRAYS).write_bytes(arrays)
    (plan_dir / PLAN_JSON).write_text("{not json")
    result = runner.invoke(app, [str(plan_dir), "--dicom", str(out)])
    assert result.exit_code == 2 and PLAN_JSON in result.output
    assert not out.exists()
