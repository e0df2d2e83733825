"""RT Structure Set IOD: the phantom's structure masks as closed planar contours on every slice.

Each ROI is named exactly as its structure (``breast``, ``skin``, ``cavity``, ...). Contours
follow the voxel boundaries (see ``contours``) and reference the CT image of their slice;
nested contours of one ROI on one slice are holes (even-odd rule). Coordinates are written to
0.0001 mm.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import CTImageStorage, RTStructureSetStorage

from openiort.grid import Grid
from openiort.io.contours import plane_contours
from openiort.io.dicom_common import StudyInfo, base_dataset, da, research_comment, tm

# RT ROI Interpreted Type (PS3.3 C.8.8.8) for the normative structure names.
INTERPRETED_TYPES: dict[str, str] = {
    "breast": "ORGAN",
    "skin": "ORGAN",
    "cavity": "CAVITY",
    "applicator": "BRACHY_SRC_APP",
    "target": "CTV",
    "chest_wall": "ORGAN",
    "ribs": "ORGAN",
    "lung": "ORGAN",
    "heart": "ORGAN",
}

# Display colours (RGB), only for viewers.
COLOURS: dict[str, tuple[int, int, int]] = {
    "breast": (255, 200, 160),
    "skin": (200, 120, 80),
    "cavity": (0, 160, 255),
    "applicator": (128, 128, 128),
    "target": (255, 0, 0),
    "chest_wall": (160, 60, 60),
    "ribs": (240, 240, 200),
    "lung": (80, 200, 255),
    "heart": (200, 0, 120),
}
DEFAULT_COLOUR = (0, 200, 0)
COORD_DECIMALS = 4
CONTOUR_DATA = Tag("ContourData")


def _format_coords(values: NDArray[np.float64]) -> list[str]:
    """Decimal strings of at most 16 characters (0.0001 mm resolution)."""
    out = []
    for v in np.round(values, COORD_DECIMALS):
        text = f"{v:.{COORD_DECIMALS}f}".rstrip("0").rstrip(".")
        out.append("0" if text in ("-0", "") else text)
    return out


def _contour_data(values: NDArray[np.float64]) -> RawDataElement:
    """Contour Data as an already encoded DS element.

    Contours hold most of an RTSTRUCT's values; encoding them here, rather than through
    pydicom's per-value DS objects, makes the export several times faster. The strings are
    those of ``_format_coords`` (checked by the tests against pydicom's reading).
    """
    encoded = "\\".join(_format_coords(values)).encode("ascii")
    if len(encoded) % 2:
        encoded += b" "  # DS values are padded to even length with a space
    return RawDataElement(CONTOUR_DATA, "DS", len(encoded), encoded, 0, False, True)


def _contour_image(ct_uid: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = CTImageStorage
    item.ReferencedSOPInstanceUID = ct_uid
    return item


def build_rtstruct(
    structures: Mapping[str, NDArray[np.bool_]],
    grid: Grid,
    study: StudyInfo,
    series_instance_uid: str,
    sop_instance_uid: str,
    ct_series_instance_uid: str,
    ct_sop_instance_uids: list[str],
    interpreted_types: Mapping[str, str] | None = None,
    series_number: int = 2,
) -> Dataset:
    """RTSTRUCT dataset for axial structure masks on ``grid`` (``ct_sop_instance_uids[k]`` is
    the CT image of grid slice ``k``)."""
    types = {**INTERPRETED_TYPES, **(interpreted_types or {})}
    out = base_dataset(
        study,
        RTStructureSetStorage,
        sop_instance_uid,
        "RTSTRUCT",
        series_instance_uid,
        series_number,
        "openiort structures",
    )
    out.FrameOfReferenceUID = study.frame_of_reference_uid
    out.PositionReferenceIndicator = ""
    out.StructureSetLabel = "openiort"
    out.StructureSetName = "openiort structures"
    out.StructureSetDescription = research_comment()[:1024]
    out.StructureSetDate = da(study.when)
    out.StructureSetTime = tm(study.when)
    out.InstanceNumber = 1

    series_ref = Dataset()
    series_ref.SeriesInstanceUID = ct_series_instance_uid
    series_ref.ContourImageSequence = Sequence([_contour_image(u) for u in ct_sop_instance_uids])
    study_ref = Dataset()
    study_ref.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"  # Study Component Management
    study_ref.ReferencedSOPInstanceUID = study.study_instance_uid
    study_ref.RTReferencedSeriesSequence = Sequence([series_ref])
    frame_ref = Dataset()
    frame_ref.FrameOfReferenceUID = study.frame_of_reference_uid
    frame_ref.RTReferencedStudySequence = Sequence([study_ref])
    out.ReferencedFrameOfReferenceSequence = Sequence([frame_ref])

    dx, dy, _ = grid.spacing_mm
    x0, y0, _ = grid.origin_mm
    z_mm = grid.axis_mm("z")
    roi_items, contour_items, observation_items = [], [], []
    for number, (name, mask) in enumerate(structures.items(), start=1):
        if mask.shape != grid.shape:
            raise ValueError(f"structure {name!r} has shape {mask.shape}, grid {grid.shape}")
        roi = Dataset()
        roi.ROINumber = number
        roi.ReferencedFrameOfReferenceUID = study.frame_of_reference_uid
        roi.ROIName = name
        roi.ROIGenerationAlgorithm = "AUTOMATIC"
        roi_items.append(roi)

        contours: list[Dataset] = []
        for k in np.flatnonzero(mask.any(axis=(1, 2))):
            for poly in plane_contours(mask[k]):
                points = np.empty((len(poly), 3), dtype=np.float64)
                points[:, 0] = x0 + poly[:, 0] * dx
                points[:, 1] = y0 + poly[:, 1] * dy
                points[:, 2] = z_mm[k]
                item = Dataset()
                item.ContourImageSequence = Sequence([_contour_image(ct_sop_instance_uids[k])])
                item.ContourGeometricType = "CLOSED_PLANAR"
                item.NumberOfContourPoints = len(poly)
                item.ContourNumber = len(contours) + 1
                item[CONTOUR_DATA] = _contour_data(points.ravel())
                contours.append(item)
        roi_contour = Dataset()
        roi_contour.ReferencedROINumber = number
        roi_contour.ROIDisplayColor = list(COLOURS.get(name, DEFAULT_COLOUR))
        if contours:
            roi_contour.ContourSequence = Sequence(contours)
        contour_items.append(roi_contour)

        observation = Dataset()
        observation.ObservationNumber = number
        observation.ReferencedROINumber = number
        observation.RTROIInterpretedType = types.get(name, "")
        observation.ROIInterpreter = ""
        observation_items.append(observation)
    out.StructureSetROISequence = Sequence(roi_items)
    out.ROIContourSequence = Sequence(contour_items)
    out.RTROIObservationsSequence = Sequence(observation_items)
    return out
