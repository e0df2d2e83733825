"""Every exported object passes dicom3tools' IOD validator dciodvfy with no errors."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest

from openiort.anatomy.phantom import Phantom
from openiort.dosegrid import DoseGrid
from openiort.io.dicom_export import export_plan

# dicom3tools (Debian 1.00~20220618) aborts on 32-bit pixel data with this assertion before it
# validates anything (the same abort is reported for other 32-bit files, e.g.
# horosproject/horos issue 614); 32-bit RTDOSE is valid DICOM (PS3.3 C.8.8.3.4.1).
DICOM3TOOLS_32BIT_ABORT = "bitsallocated <= bytesinword*8u"


@pytest.fixture
def dciodvfy(require_tool: Callable[[str], str]) -> Callable[[Path], str]:
    """Run dicom3tools' dciodvfy on a file; its report (stdout and stderr)."""
    tool = require_tool("dciodvfy")

    def run(path: Path) -> str:
        result = subprocess.run([tool, str(path)], capture_output=True, text=True, timeout=120)
        return result.stdout + result.stderr

    return run


def errors_of(report: str) -> list[str]:
    return [line for line in report.splitlines() if line.startswith("Error")]


def validate_rtdose_32bit(path: Path, tmp_path: Path, dciodvfy: Callable[[Path], str]) -> list[str]:
    """dciodvfy on a 32-bit RTDOSE; where dicom3tools aborts on 32-bit pixels, validate every
    attribute on a copy whose pixel data are re-encoded as 16 bits (only Bits Allocated,
    Bits Stored, High Bit and the pixel bytes differ)."""
    report = dciodvfy(path)
    if DICOM3TOOLS_32BIT_ABORT not in report:
        return errors_of(report)
    dataset = pydicom.dcmread(path)
    assert dataset.BitsAllocated == 32
    pixels = np.frombuffer(dataset.PixelData, dtype="<u4")
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 16, 16, 15
    dataset.PixelData = (pixels >> 16).astype("<u2").tobytes()
    copy = tmp_path / "RD_16bit_copy.dcm"
    dataset.save_as(copy, enforce_file_format=True)
    return errors_of(dciodvfy(copy))


@pytest.mark.parametrize("technique", ["xray", "electron", "hdr"])
@pytest.mark.parametrize("anonymise", [False, True])
def test_every_object_passes_dciodvfy(
    technique: str,
    anonymise: bool,
    tmp_path: Path,
    phantom: Phantom,
    dose: DoseGrid,
    when: datetime,
    make_plan: Callable[[str], dict[str, Any]],
    dciodvfy: Callable[[Path], str],
) -> None:
    out = tmp_path / "export"
    files = export_plan(
        phantom,
        dose,
        make_plan(technique),
        out,
        patient_name="Müller^Zoë",
        patient_id="RT-1",
        anonymise=anonymise,
        when=when,
        dose_bits=16,
    )
    for path in files:
        report = dciodvfy(path)
        assert DICOM3TOOLS_32BIT_ABORT not in report
        assert errors_of(report) == [], f"{path.name}:\n{report}"
        # The validator recognised the IOD (it prints its name), so the check was real.
        expected = {"CT": "CTImage", "RS": "RTStructureSet", "RD": "RTDose", "RP": "RTPlan"}
        assert expected[path.name.split("_")[0].split(".")[0]] in report


def test_hdr_plan_with_applicator_length_passes(
    tmp_path: Path,
    phantom: Phantom,
    dose: DoseGrid,
    when: datetime,
    make_plan: Callable[[str], dict[str, Any]],
    dciodvfy: Callable[[Path], str],
) -> None:
    plan = make_plan("hdr") | {"applicator_length_mm": 1200.0}
    files = export_plan(phantom, dose, plan, tmp_path / "e", when=when)
    rp = next(f for f in files if f.name == "RP.dcm")
    assert errors_of(dciodvfy(rp)) == []
    assert (
        pydicom.dcmread(rp).ApplicationSetupSequence[0].ChannelSequence[0].ReferencedROINumber == 4
    )


def test_32bit_rtdose_passes(
    tmp_path: Path,
    phantom: Phantom,
    dose: DoseGrid,
    when: datetime,
    make_plan: Callable[[str], dict[str, Any]],
    dciodvfy: Callable[[Path], str],
) -> None:
    files = export_plan(phantom, dose, make_plan("xray"), tmp_path / "e", when=when, dose_bits=32)
    rd = next(f for f in files if f.name == "RD.dcm")
    assert validate_rtdose_32bit(rd, tmp_path, dciodvfy) == []


def test_validator_catches_a_broken_object(
    tmp_path: Path,
    phantom: Phantom,
    dose: DoseGrid,
    when: datetime,
    make_plan: Callable[[str], dict[str, Any]],
    dciodvfy: Callable[[Path], str],
) -> None:
    """The check can fail: an RTPLAN without its source sequence is reported."""
    files = export_plan(phantom, dose, make_plan("xray"), tmp_path / "e", when=when)
    rp = pydicom.dcmread(next(f for f in files if f.name == "RP.dcm"))
    del rp.SourceSequence
    broken = tmp_path / "broken.dcm"
    rp.save_as(broken, enforce_file_format=True)
    assert any("SourceSequence" in line for line in errors_of(dciodvfy(broken)))
