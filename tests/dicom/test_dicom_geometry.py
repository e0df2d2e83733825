"""Image-plane geometry: axial, coronal and sagittal series in any orientation read back onto
the right LPS voxels; contours reproduce masks voxel for voxel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
from scipy import ndimage

from openiort.grid import Grid
from openiort.inputs.dicom_read import read_ct_series
from openiort.io.contours import plane_contours, rasterise_plane
from openiort.io.errors import DicomImportError
from openiort.io.geometry import PATIENT_POSITIONS, plane_geometry


def write_series(
    volume: NDArray[np.int16],
    grid: Grid,
    row_dir: tuple[int, int, int],
    col_dir: tuple[int, int, int],
    out: Path,
) -> None:
    """A CT series of ``volume[z, y, x]`` cut in the plane of (row_dir, col_dir), written the
    simple way (every pixel looked up by its position), independently of openiort's writer."""
    r, c = np.array(row_dir, float), np.array(col_dir, float)
    n = np.cross(r, c)
    axes = {0: grid.axis_mm("x"), 1: grid.axis_mm("y"), 2: grid.axis_mm("z")}
    spacing = dict(enumerate(grid.spacing_mm))

    def along(d: np.ndarray) -> tuple[int, np.ndarray]:
        a = int(np.argmax(np.abs(d)))
        values = axes[a] if d[a] > 0 else axes[a][::-1]
        return a, values

    ra, rv = along(r)
    ca, cv = along(c)
    na, nv = along(n)
    frame, series = generate_uid(), generate_uid()
    for k, s in enumerate(nv):
        pos = np.zeros((len(cv), len(rv), 3))
        pos[..., ra] = rv[None, :]
        pos[..., ca] = cv[:, None]
        pos[..., na] = s
        idx = np.rint(grid.position_to_index(pos)).astype(int)  # (z, y, x)
        pixels = volume[idx[..., 0], idx[..., 1], idx[..., 2]]
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = "CT", series, frame
        ds.ImageOrientationPatient = [*map(float, r), *map(float, c)]
        ds.ImagePositionPatient = [float(v) for v in pos[0, 0]]
        ds.PixelSpacing = [spacing[ca], spacing[ra]]
        ds.Rows, ds.Columns = pixels.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = 1, 0
        ds.PixelData = pixels.astype("<i2").tobytes()
        ds.save_as(out / f"img_{(k * 7919) % 1000:03d}_{k}.dcm", enforce_file_format=True)


ORIENTATIONS = {
    "axial HFS": ((1, 0, 0), (0, 1, 0)),
    "axial FFP": ((1, 0, 0), (0, -1, 0)),
    "axial transposed": ((0, 1, 0), (1, 0, 0)),
    "coronal": ((1, 0, 0), (0, 0, -1)),
    "coronal FFS": ((-1, 0, 0), (0, 0, -1)),
    "sagittal": ((0, 1, 0), (0, 0, -1)),
    "sagittal reversed": ((0, -1, 0), (0, 0, 1)),
}


@pytest.mark.parametrize("name", sorted(ORIENTATIONS))
def test_any_axis_aligned_orientation(name: str, tmp_path: Path) -> None:
    grid = Grid((-11.0, 4.5, 30.0), (1.5, 2.0, 2.5), (6, 7, 8))
    volume = np.arange(grid.size, dtype=np.int16).reshape(grid.shape)
    write_series(volume, grid, *ORIENTATIONS[name], tmp_path)
    series = read_ct_series(tmp_path)
    assert series.grid.shape == grid.shape
    np.testing.assert_allclose(series.grid.origin_mm, grid.origin_mm, atol=1e-9)
    np.testing.assert_allclose(series.grid.spacing_mm, grid.spacing_mm, atol=1e-9)
    np.testing.assert_array_equal(series.hu, volume)


def test_oblique_series_rejected(tmp_path: Path) -> None:
    grid = Grid((0.0, 0.0, 0.0), (2.0, 2.0, 2.0), (3, 4, 4))
    write_series(np.zeros(grid.shape, np.int16), grid, (1, 0, 0), (0, 1, 0), tmp_path)
    c, s = np.cos(0.1), np.sin(0.1)
    for f in tmp_path.iterdir():
        ds = pydicom.dcmread(f)
        ds.ImageOrientationPatient = [c, s, 0.0, -s, c, 0.0]
        ds.save_as(f)
    with pytest.raises(DicomImportError, match="oblique"):
        read_ct_series(tmp_path)


@pytest.mark.parametrize("position", sorted(PATIENT_POSITIONS))
def test_plane_geometry_first_pixel_is_the_corner(position: str) -> None:
    grid = Grid((-10.0, 20.0, 5.0), (1.0, 2.0, 3.0), (4, 5, 6))
    geo = plane_geometry(grid, position)
    row_dir, col_dir = PATIENT_POSITIONS[position]
    ipp = np.array(geo.image_position_mm[0])
    # Every pixel (i, j) of slice 0 sits at IPP + j dx row_dir + i dy col_dir inside the grid.
    far = ipp + 5 * np.array(row_dir) * 1.0 + 4 * np.array(col_dir) * 2.0
    lo = np.array(grid.origin_mm)
    hi = lo + (np.array(grid.shape[::-1]) - 1) * np.array(grid.spacing_mm)
    for p in (ipp, far):
        assert np.all(p[:2] >= lo[:2] - 1e-9) and np.all(p[:2] <= hi[:2] + 1e-9)
    assert geo.slice_offsets_mm() == pytest.approx([3.0 * k for k in range(4)])


def test_contours_reproduce_random_masks() -> None:
    rng = np.random.default_rng(5)
    for trial in range(200):
        shape = (int(rng.integers(1, 25)), int(rng.integers(1, 25)))
        mask = rng.random(shape) < rng.random()
        if trial % 2:
            mask = ndimage.binary_opening(mask)
        polygons = plane_contours(mask)
        np.testing.assert_array_equal(rasterise_plane(polygons, shape), mask)
        # keyholes: each polygon alone is its region without its holes, so a reader that
        # unions the contours of a plane (plastimatch's default) gets the mask too
        union = np.zeros(shape, dtype=bool)
        for polygon in polygons:
            union |= rasterise_plane([polygon], shape)
        np.testing.assert_array_equal(union, mask)


def test_contours_of_a_ring_are_one_keyhole() -> None:
    y, x = np.mgrid[:40, :40]
    d = np.hypot(x - 20, y - 20)
    ring = (d < 15) & (d > 8)
    polygons = plane_contours(ring)
    assert len(polygons) == 1  # one keyhole contour: the hole joined by a zero-width channel
    channel = [tuple(p) for p in polygons[0]]
    assert len(channel) != len(set(channel))  # the channel's ends are visited twice
    np.testing.assert_array_equal(rasterise_plane(polygons, ring.shape), ring)
