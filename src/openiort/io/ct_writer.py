"""CT Image IOD: one single-frame CT image per slice of the phantom grid.

Stored values are unsigned 16-bit with Rescale Slope 0.1 and Rescale Intercept -1024, so the
CT numbers are kept to 0.1 HU (enough to carry the 1 % gland fraction of the breast mixtures,
about 0.8 HU per percent) over -1024 to +5529 HU; values outside are clipped.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage

from openiort.io.dicom_common import StudyInfo, base_dataset, da, ds, research_comment, tm
from openiort.io.geometry import PlaneGeometry

RESCALE_SLOPE = 0.1
RESCALE_INTERCEPT = -1024.0
STORED_MAX = 65535


def stored_values(hu: NDArray[np.float64]) -> NDArray[np.uint16]:
    """HU -> stored pixel values (rounded to the 0.1 HU step, clipped to the 16-bit range)."""
    raw = np.rint((hu - RESCALE_INTERCEPT) / RESCALE_SLOPE)
    return np.clip(raw, 0, STORED_MAX).astype(np.uint16)


def quantised_hu(hu: NDArray[np.float64]) -> NDArray[np.float64]:
    """The CT numbers a reader gets back from ``stored_values(hu)``."""
    return stored_values(hu).astype(np.float64) * RESCALE_SLOPE + RESCALE_INTERCEPT


def build_ct_series(
    hu: NDArray[np.float64],
    geometry: PlaneGeometry,
    study: StudyInfo,
    series_instance_uid: str,
    sop_instance_uids: list[str],
    derivation: str,
    laterality: str = "",
    series_number: int = 1,
) -> list[tuple[str, Dataset]]:
    """CT images of ``hu[z, y, x]``; ``sop_instance_uids[k]`` names grid slice ``k``.

    Returns (file name, dataset) pairs in the order of increasing position along the normal.
    """
    pixels = stored_values(hu)
    images: list[tuple[str, Dataset]] = []
    for number, k in enumerate(geometry.order, start=1):
        out = base_dataset(
            study,
            CTImageStorage,
            sop_instance_uids[k],
            "CT",
            series_instance_uid,
            series_number,
            "openiort phantom as CT",
        )
        out.FrameOfReferenceUID = study.frame_of_reference_uid
        out.PositionReferenceIndicator = ""
        out.PatientPosition = geometry.patient_position
        out.Laterality = laterality
        out.BodyPartExamined = "BREAST"
        out.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
        out.DerivationDescription = derivation[:1024]
        out.InstanceNumber = number
        out.AcquisitionNumber = 1
        out.ContentDate = da(study.when)
        out.ContentTime = tm(study.when)
        out.BurnedInAnnotation = "NO"
        out.ImageComments = research_comment()
        out.ImagePositionPatient = [ds(v) for v in geometry.image_position_mm[k]]
        out.ImageOrientationPatient = [ds(v) for v in geometry.orientation]
        out.PixelSpacing = [ds(v) for v in geometry.pixel_spacing_mm]
        out.SliceThickness = ds(geometry.slice_spacing_mm)
        out.SliceLocation = ds(geometry.image_position_mm[k][2])
        plane = geometry.plane(pixels, k)
        out.SamplesPerPixel = 1
        out.PhotometricInterpretation = "MONOCHROME2"
        out.Rows, out.Columns = int(plane.shape[0]), int(plane.shape[1])
        out.BitsAllocated = 16
        out.BitsStored = 16
        out.HighBit = 15
        out.PixelRepresentation = 0
        out.RescaleIntercept = ds(RESCALE_INTERCEPT)
        out.RescaleSlope = ds(RESCALE_SLOPE)
        out.RescaleType = "HU"
        out.KVP = ""
        out.WindowCenter = "40"
        out.WindowWidth = "400"
        out.PixelData = plane.astype("<u2").tobytes()
        images.append((f"CT_{number:04d}.dcm", out))
    return images
