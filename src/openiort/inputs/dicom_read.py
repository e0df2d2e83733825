"""Readers for a CT series, an RTSTRUCT on it, and an RTDOSE, onto axis-aligned LPS grids.

Every problem with the input (not DICOM, truncated, missing or malformed attributes, pixel data
that cannot be decoded, a non-CT image in the series, several series, oblique or tilted slices,
missing or uneven slices, contours off the slices or from another Frame of Reference) raises
one ``DicomImportError`` that names the file; nothing is returned half-read. The guarded file
read itself (``read_dataset``) is in :mod:`openiort.io.dataset`, which the writers share.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, RTDoseStorage, RTStructureSetStorage

from openiort.grid import Grid
from openiort.io.contours import rasterise_plane
from openiort.io.ct_reference import CtReference
from openiort.io.dataset import (
    MAX_INFLATED_BYTES,
    guarded,
    import_error,
    quiet_pydicom,
    read_dataset,
)
from openiort.io.errors import DicomImportError
from openiort.io.geometry import AxisMap, grid_from_planes

# Non-image objects that may sit beside a CT series (an export directory) and are skipped.
SKIPPED_MODALITIES = frozenset(
    {"RTSTRUCT", "RTPLAN", "RTDOSE", "RTRECORD", "RTIMAGE", "REG", "SR", "KO", "PR", "SEG"}
)
POSITION_TOL_MM = 0.01  # positions written with DS precision agree far better than this
ORIENTATION_TOL = 1e-4
SLICE_SNAP_TOL = 0.1  # contour planes must lie within 0.1 slice spacing of a CT slice


def _floats(ds: Dataset, keyword: str, count: int, path: Path) -> NDArray[np.float64]:
    if keyword not in ds or ds[keyword].value in (None, ""):
        raise import_error(path, f"missing {keyword}")
    value = ds[keyword].value
    values = (
        list(value) if isinstance(value, (list, tuple, pydicom.multival.MultiValue)) else [value]
    )
    if len(values) != count:
        raise import_error(path, f"{keyword} has {len(values)} values, expected {count}")
    out = np.array([float(v) for v in values], dtype=np.float64)
    if not np.all(np.isfinite(out)):
        raise import_error(path, f"{keyword} is not finite")
    return out


def _int(ds: Dataset, keyword: str, path: Path) -> int:
    if keyword not in ds or ds[keyword].value in (None, ""):
        raise import_error(path, f"missing {keyword}")
    return int(ds[keyword].value)


@dataclass(frozen=True)
class CtSeries:
    """A CT series on an LPS grid: ``hu[z, y, x]`` in Hounsfield units."""

    grid: Grid
    hu: NDArray[np.float64]
    axis_map: AxisMap
    patient_position: str
    frame_of_reference_uid: str
    series_instance_uid: str
    sop_instance_uids: tuple[str, ...]  # in order along the slice normal
    files: tuple[Path, ...]
    reference: CtReference | None = None  # the series' identity, for the exported objects

    @property
    def n_slices(self) -> int:
        return len(self.files)


@dataclass
class _Slice:
    path: Path
    ds: Dataset
    row_dir: NDArray[np.float64]
    col_dir: NDArray[np.float64]
    position: NDArray[np.float64]
    spacing: NDArray[np.float64]
    shape: tuple[int, int]


def _ct_slice(path: Path, ds: Dataset) -> _Slice:
    if ds.get("SOPClassUID") != CTImageStorage:
        raise import_error(
            path,
            f"unsupported CT object (SOP class {ds.get('SOPClassUID')}); "
            "only single-frame CT Image Storage is read",
        )
    if "PixelData" not in ds:
        raise import_error(path, "missing pixel data")
    if int(ds.get("SamplesPerPixel", 1)) != 1:
        raise import_error(path, "CT with more than one sample per pixel")
    for keyword in ("FrameOfReferenceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        if not ds.get(keyword):
            raise import_error(path, f"missing {keyword}")
    iop = _floats(ds, "ImageOrientationPatient", 6, path)
    row_dir, col_dir = iop[:3], iop[3:]
    for name, vec in (("row", row_dir), ("column", col_dir)):
        if abs(np.linalg.norm(vec) - 1.0) > 1e-3:
            raise import_error(
                path, f"ImageOrientationPatient {name} direction is not a unit vector"
            )
    return _Slice(
        path=path,
        ds=ds,
        row_dir=row_dir,
        col_dir=col_dir,
        position=_floats(ds, "ImagePositionPatient", 3, path),
        spacing=_floats(ds, "PixelSpacing", 2, path),
        shape=(_int(ds, "Rows", path), _int(ds, "Columns", path)),
    )


def _hu_plane(sl: _Slice) -> NDArray[np.float64]:
    ds = sl.ds
    if "RescaleSlope" not in ds or "RescaleIntercept" not in ds:
        raise import_error(sl.path, "missing RescaleSlope/RescaleIntercept")
    slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
    if not (np.isfinite(slope) and np.isfinite(intercept)) or slope == 0:
        raise import_error(sl.path, "invalid RescaleSlope/RescaleIntercept")
    syntax = ds.file_meta.get("TransferSyntaxUID", "unknown")
    frame_bytes = sl.shape[0] * sl.shape[1] * max(int(ds.get("BitsAllocated", 16)), 8) // 8
    if frame_bytes > MAX_INFLATED_BYTES:  # a compressed frame would decode to this much
        raise import_error(sl.path, f"a {sl.shape[0]} x {sl.shape[1]} CT slice is too large")

    def decode() -> NDArray[Any]:
        try:
            return np.asarray(ds.pixel_array)
        except Exception as exc:
            raise import_error(
                sl.path, f"cannot decode pixel data (transfer syntax {syntax}): {exc}"
            ) from exc

    pixels = decode()
    if pixels.shape != sl.shape:
        raise import_error(sl.path, f"pixel data shape {pixels.shape} != Rows x Columns {sl.shape}")
    return pixels.astype(np.float64) * slope + intercept


def _check_same(first: _Slice, other: _Slice) -> None:
    if other.shape != first.shape:
        raise import_error(
            other.path, f"image size {other.shape} differs from {first.path.name} {first.shape}"
        )
    if np.any(np.abs(other.spacing - first.spacing) > 1e-4):
        raise import_error(other.path, f"PixelSpacing differs from {first.path.name}")
    if np.any(np.abs(other.row_dir - first.row_dir) > ORIENTATION_TOL) or np.any(
        np.abs(other.col_dir - first.col_dir) > ORIENTATION_TOL
    ):
        raise import_error(other.path, f"ImageOrientationPatient differs from {first.path.name}")
    if other.ds.FrameOfReferenceUID != first.ds.FrameOfReferenceUID:
        raise import_error(other.path, f"FrameOfReferenceUID differs from {first.path.name}")


def _list_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise DicomImportError(f"{directory}: not a directory")
    return sorted(
        p
        for p in directory.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.name.upper() != "DICOMDIR"
    )


def read_ct_series(directory: Path, series_instance_uid: str | None = None) -> CtSeries:
    """Read the CT series in ``directory`` (non-recursive) onto an LPS grid."""
    with quiet_pydicom():
        return _read_ct_series(directory, series_instance_uid)


def _read_ct_series(directory: Path, series_instance_uid: str | None) -> CtSeries:
    by_series: dict[str, list[_Slice]] = {}
    for path in _list_files(directory):
        ds = read_dataset(path)
        modality = str(ds.get("Modality", "") or "")
        if not modality:
            raise import_error(path, "missing Modality")
        if modality != "CT":
            if modality in SKIPPED_MODALITIES or "PixelData" not in ds:
                continue
            raise import_error(path, f"non-CT modality {modality} in the CT series")
        sl = guarded(path, "malformed CT header", partial(_ct_slice, path, ds))
        by_series.setdefault(str(ds.SeriesInstanceUID), []).append(sl)
    if series_instance_uid is not None:
        if series_instance_uid not in by_series:
            raise DicomImportError(
                f"{directory}: no CT series with the requested SeriesInstanceUID"
            )
        slices = by_series[series_instance_uid]
    elif len(by_series) == 1:
        slices = next(iter(by_series.values()))
    elif not by_series:
        raise DicomImportError(f"{directory}: no CT images found")
    else:
        sizes = ", ".join(f"{len(v)} slices" for v in by_series.values())
        raise DicomImportError(
            f"{directory}: {len(by_series)} CT series ({sizes}); pass the SeriesInstanceUID to read"
        )
    first = slices[0]
    for sl in slices[1:]:
        _check_same(first, sl)
    normal = np.cross(first.row_dir, first.col_dir)
    slices.sort(key=lambda s: float(s.position @ normal))
    along = np.array([float(s.position @ normal) for s in slices])
    for sl in slices[1:]:
        offset = sl.position - slices[0].position
        in_plane = np.array([offset @ first.row_dir, offset @ first.col_dir])
        if np.any(np.abs(in_plane) > POSITION_TOL_MM):
            raise import_error(
                sl.path,
                "slice is shifted in its plane from the first slice "
                "(gantry tilt or misaligned series are not supported)",
            )
    if len(slices) == 1:
        thickness = float(first.ds.get("SliceThickness", 0) or 0)
        if thickness <= 0:
            raise import_error(first.path, "single slice without SliceThickness")
        spacing = thickness
    else:
        gaps = np.diff(along)
        for i, gap in enumerate(gaps):
            if gap < POSITION_TOL_MM:
                raise import_error(
                    slices[i + 1].path, f"duplicate slice position (same as {slices[i].path.name})"
                )
        spacing = float(np.median(gaps))
        tol = max(POSITION_TOL_MM, 1e-3 * spacing)
        for i, gap in enumerate(gaps):
            if abs(gap - spacing) > tol:
                raise import_error(
                    slices[i + 1].path,
                    f"inconsistent slice spacing: {gap:.3f} mm after "
                    f"{slices[i].path.name}, series spacing {spacing:.3f} mm",
                )
    planes = [guarded(s.path, "bad pixel data", partial(_hu_plane, s)) for s in slices]
    volume = np.stack(planes, axis=0)
    try:
        grid, axis_map = grid_from_planes(
            first.row_dir,
            first.col_dir,
            slices[0].position,
            (float(first.spacing[0]), float(first.spacing[1])),
            spacing,
            (volume.shape[0], volume.shape[1], volume.shape[2]),
        )
    except ValueError as exc:
        raise import_error(first.path, str(exc)) from exc
    return CtSeries(
        grid=grid,
        hu=axis_map.to_grid_order(volume).astype(np.float64),
        axis_map=axis_map,
        patient_position=str(first.ds.get("PatientPosition", "") or ""),
        frame_of_reference_uid=str(first.ds.FrameOfReferenceUID),
        series_instance_uid=str(first.ds.SeriesInstanceUID),
        sop_instance_uids=tuple(str(s.ds.SOPInstanceUID) for s in slices),
        files=tuple(s.path for s in slices),
        reference=_reference(slices, normal, along),
    )


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword, "")
    return "" if value is None else str(value)


def _reference(
    slices: list[_Slice], normal: NDArray[np.float64], along: NDArray[np.float64]
) -> CtReference:
    ds = slices[0].ds
    for sl in slices[1:]:
        for keyword in ("PatientID", "StudyInstanceUID"):
            if _text(sl.ds, keyword) != _text(ds, keyword):
                raise import_error(sl.path, f"{keyword} differs from {slices[0].path.name}")
    return CtReference(
        patient_name=_text(ds, "PatientName"),
        patient_id=_text(ds, "PatientID"),
        patient_birth_date=_text(ds, "PatientBirthDate"),
        patient_sex=_text(ds, "PatientSex"),
        issuer_of_patient_id=_text(ds, "IssuerOfPatientID"),
        study_instance_uid=_text(ds, "StudyInstanceUID"),
        study_date=_text(ds, "StudyDate"),
        study_time=_text(ds, "StudyTime"),
        study_id=_text(ds, "StudyID"),
        accession_number=_text(ds, "AccessionNumber"),
        referring_physician_name=_text(ds, "ReferringPhysicianName"),
        study_description=_text(ds, "StudyDescription"),
        series_instance_uid=_text(ds, "SeriesInstanceUID"),
        frame_of_reference_uid=_text(ds, "FrameOfReferenceUID"),
        patient_position=_text(ds, "PatientPosition"),
        sop_class_uid=_text(ds, "SOPClassUID"),
        slices=tuple(
            (float(a), str(s.ds.SOPInstanceUID)) for a, s in zip(along, slices, strict=True)
        ),
        normal=(float(normal[0]), float(normal[1]), float(normal[2])),
    )


# -- RTSTRUCT ---------------------------------------------------------------------------------

# Contour Geometric Types (PS3.3 C.8.8.6.1) that enclose an area. Within one plane of one ROI,
# CLOSED_PLANAR contours are filled with the even-odd rule (a keyhole contour is its region
# without its holes; nested contours, as many systems write holes, are holes), the
# CLOSEDPLANAR_XOR contours are combined by exclusive or (the same rule), and the two are united.
# POINT, OPEN_PLANAR and OPEN_NONPLANAR contours carry no volume and are skipped.
CLOSED_TYPES = frozenset({"CLOSED_PLANAR", "CLOSEDPLANAR_XOR"})
XOR_TYPE = "CLOSEDPLANAR_XOR"


@dataclass(frozen=True)
class Contour:
    """One closed contour: (N, 3) LPS points in mm and its Contour Geometric Type."""

    points: NDArray[np.float64]
    geometric_type: str = "CLOSED_PLANAR"


def read_rtstruct_contours(path: Path) -> tuple[str, dict[str, list[Contour]]]:
    """(Frame of Reference UID, ROI name -> its closed contours)."""
    with quiet_pydicom():
        return _read_rtstruct_contours(path)


def _read_rtstruct_contours(path: Path) -> tuple[str, dict[str, list[Contour]]]:
    ds = read_dataset(path)
    if ds.get("Modality") != "RTSTRUCT" or ds.get("SOPClassUID") != RTStructureSetStorage:
        raise import_error(path, f"not an RT Structure Set (Modality {ds.get('Modality')})")

    def parse() -> tuple[str, dict[str, list[Contour]]]:
        refs = ds.get("ReferencedFrameOfReferenceSequence") or []
        names: dict[int, str] = {}
        frames: set[str] = {
            str(r.FrameOfReferenceUID) for r in refs if r.get("FrameOfReferenceUID")
        }
        for roi in ds.get("StructureSetROISequence") or []:
            number, name = int(roi.ROINumber), str(roi.ROIName).strip()
            if name in names.values():
                raise import_error(path, f"ROI name {name!r} appears twice")
            names[number] = name
            if roi.get("ReferencedFrameOfReferenceUID"):
                frames.add(str(roi.ReferencedFrameOfReferenceUID))
        if len(frames) != 1:
            raise import_error(path, f"expected one Frame of Reference, found {len(frames)}")
        contours: dict[str, list[Contour]] = {n: [] for n in names.values()}
        for item in ds.get("ROIContourSequence") or []:
            number = int(item.ReferencedROINumber)
            if number not in names:
                raise import_error(
                    path, f"ROIContourSequence refers to unknown ROI number {number}"
                )
            for contour in item.get("ContourSequence") or []:
                geometric_type = str(contour.get("ContourGeometricType", "")).strip()
                if geometric_type not in CLOSED_TYPES:
                    continue  # points and open contours carry no volume
                data = np.array([float(v) for v in contour.ContourData], dtype=np.float64)
                if data.size % 3 or data.size < 9 or not np.all(np.isfinite(data)):
                    raise import_error(
                        path, f"ROI {names[number]!r}: malformed ContourData ({data.size} values)"
                    )
                declared = contour.get("NumberOfContourPoints")
                if declared is not None and int(declared) * 3 != data.size:
                    raise import_error(
                        path,
                        f"ROI {names[number]!r}: NumberOfContourPoints {declared} "
                        f"does not match ContourData ({data.size // 3} points)",
                    )
                contours[names[number]].append(Contour(data.reshape(-1, 3), geometric_type))
        return frames.pop(), contours

    return guarded(path, "malformed RT Structure Set", parse)


def read_rtstruct_masks(path: Path, series: CtSeries) -> dict[str, NDArray[np.bool_]]:
    """Masks of every ROI of an RTSTRUCT on the voxels of ``series`` (even-odd rule per plane)."""
    with quiet_pydicom():
        return _read_rtstruct_masks(path, series)


def _read_rtstruct_masks(path: Path, series: CtSeries) -> dict[str, NDArray[np.bool_]]:
    frame, contours = _read_rtstruct_contours(path)
    if frame != series.frame_of_reference_uid:
        raise import_error(
            path, "the structure set belongs to another Frame of Reference than the CT"
        )
    grid = series.grid
    normal_dim = 2 - series.axis_map.normal_axis  # array dim of the slice normal
    plane_dims = [d for d in range(3) if d != normal_dim]
    n_planes = grid.shape[normal_dim]
    plane_shape = (grid.shape[plane_dims[0]], grid.shape[plane_dims[1]])
    masks: dict[str, NDArray[np.bool_]] = {}

    def rasterise() -> None:
        for name, polys in contours.items():
            per_plane: dict[tuple[int, bool], list[NDArray[np.float64]]] = {}
            for contour in polys:
                points = contour.points
                index = grid.position_to_index(points)  # (N, 3) continuous (z, y, x)
                plane = index[:, normal_dim]
                if np.ptp(plane) > SLICE_SNAP_TOL:
                    raise import_error(
                        path, f"ROI {name!r}: a contour is not in the plane of the CT slices"
                    )
                k = round(float(plane.mean()))
                if abs(plane.mean() - k) > SLICE_SNAP_TOL or not 0 <= k < n_planes:
                    coord = float(points[0, series.axis_map.normal_axis])
                    raise import_error(
                        path, f"ROI {name!r}: contour at {coord:.2f} mm does not lie on a CT slice"
                    )
                xor = contour.geometric_type == XOR_TYPE
                per_plane.setdefault((k, xor), []).append(index[:, [plane_dims[1], plane_dims[0]]])
            mask = np.zeros(grid.shape, dtype=bool)
            for (k, _), uv in per_plane.items():
                filled = rasterise_plane(uv, plane_shape)
                index_k: list[Any] = [slice(None)] * 3
                index_k[normal_dim] = k
                mask[tuple(index_k)] |= filled
            masks[name] = mask

    guarded(path, "cannot rasterise contours", rasterise)
    return masks


# -- RTDOSE -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RtDoseVolume:
    """Dose of an RTDOSE object on an LPS grid, with what the object says about it."""

    grid: Grid
    dose: NDArray[np.float64]
    dose_units: str
    dose_type: str
    summation_type: str
    dose_grid_scaling: float
    bits_allocated: int
    frame_of_reference_uid: str
    comment: str
    medium: str | None  # openiort DoseMedium parsed from the comment, when written by openiort


def read_rtdose(path: Path) -> RtDoseVolume:
    """Read an RTDOSE (multi-frame, axis-aligned) onto an LPS grid."""
    with quiet_pydicom():
        return _read_rtdose(path)


def _read_rtdose(path: Path) -> RtDoseVolume:
    ds = read_dataset(path)
    if ds.get("SOPClassUID") != RTDoseStorage:
        raise import_error(path, "not an RT Dose object")

    def parse() -> RtDoseVolume:
        iop = _floats(ds, "ImageOrientationPatient", 6, path)
        ipp = _floats(ds, "ImagePositionPatient", 3, path)
        spacing = _floats(ds, "PixelSpacing", 2, path)
        n_frames = int(ds.get("NumberOfFrames", 1) or 1)
        pixels: NDArray[np.float64] = np.asarray(ds.pixel_array, dtype=np.float64)
        if pixels.ndim == 2:
            pixels = pixels[None]
        if pixels.shape[0] != n_frames:
            raise import_error(path, "NumberOfFrames does not match the pixel data")
        normal = np.cross(iop[:3], iop[3:])
        if n_frames > 1:
            offsets = _floats(ds, "GridFrameOffsetVector", n_frames, path)
            if offsets[0] != 0.0:  # type b: absolute positions along the normal
                offsets = offsets - float(ipp @ normal)
        else:
            offsets = np.zeros(1)
        order = np.argsort(offsets)
        offsets = offsets[order]
        pixels = pixels[order]
        if n_frames > 1:
            gaps = np.diff(offsets)
            step = float(np.median(gaps))
            if step <= 0 or np.any(np.abs(gaps - step) > max(POSITION_TOL_MM, 1e-3 * step)):
                raise import_error(path, "GridFrameOffsetVector is not evenly spaced")
        else:
            step = float(ds.get("SliceThickness", 1.0) or 1.0)
        first = ipp + offsets[0] * normal
        grid, axis_map = grid_from_planes(
            iop[:3],
            iop[3:],
            first,
            (float(spacing[0]), float(spacing[1])),
            step,
            (pixels.shape[0], pixels.shape[1], pixels.shape[2]),
        )
        scaling = float(ds.get("DoseGridScaling", 1.0))
        comment = str(ds.get("DoseComment", "") or "")
        medium = None
        for token in comment.replace(";", " ").split():
            if token.startswith("medium="):
                medium = token.removeprefix("medium=")
        return RtDoseVolume(
            grid=grid,
            dose=np.asarray(axis_map.to_grid_order(pixels), dtype=np.float64) * scaling,
            dose_units=str(ds.get("DoseUnits", "")),
            dose_type=str(ds.get("DoseType", "")),
            summation_type=str(ds.get("DoseSummationType", "")),
            dose_grid_scaling=scaling,
            bits_allocated=int(ds.BitsAllocated),
            frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "")),
            comment=comment,
            medium=medium,
        )

    return guarded(path, "malformed RT Dose", parse)
