"""A deflated DICOM file that inflates to more than the reader's limit is refused before
pydicom inflates it whole (issue 17: a 1 MB deflated CT took `iort plan --ct` to 2.36 GB)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, DeflatedExplicitVRLittleEndian, generate_uid

from openiort.io import dataset as dataset_module
from openiort.io.dataset import read_dataset
from openiort.io.errors import DicomImportError


def _deflated_ct(path: Path, pixel_bytes: int) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CT"
    side = int((pixel_bytes // 2) ** 0.5)
    ds.Rows = ds.Columns = side
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = bytes(side * side * 2)  # zeros: deflate to almost nothing
    ds.save_as(path, enforce_file_format=True)
    return path


def test_a_deflated_bomb_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dataset_module, "MAX_INFLATED_BYTES", 1024 * 1024)
    bomb = _deflated_ct(tmp_path / "bomb.dcm", 8 * 1024 * 1024)
    assert bomb.stat().st_size < 64 * 1024  # 8 MiB of pixels in a file of a few kB
    with pytest.raises(DicomImportError, match="inflates to more than 1 MiB"):
        read_dataset(bomb)
    small = _deflated_ct(tmp_path / "small.dcm", 256 * 1024)
    assert read_dataset(small).Rows == 362
