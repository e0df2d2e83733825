"""RT Dose IOD: the dose grid as a multi-frame image in Gy.

Stored precision: unsigned 32-bit integers (16-bit on request) times Dose Grid Scaling, chosen
as the maximum dose over 2^32 - 1 and rounded to what the Decimal String can hold; every voxel is
therefore exact to half a scaling step (about 1e-10 of the maximum dose for 32 bits, 8e-6 for 16
bits). Dose Units GY, Dose Type PHYSICAL, Dose Summation Type PLAN, one session (fraction).
The medium (dose to water in water, or to medium / water in medium) is written in Dose Comment
(``medium=<name>``) and Tissue Heterogeneity Correction; the normalisation and the provenance in
Image Comments.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import RTDoseStorage, RTPlanStorage

from openiort.dosegrid import DoseGrid
from openiort.io.dicom_common import (
    StudyInfo,
    base_dataset,
    da,
    ds,
    ds_value,
    research_comment,
    tm,
)
from openiort.io.errors import DicomExportError
from openiort.io.geometry import PlaneGeometry

HETEROGENEITY = {
    "water_in_water": ["WATER"],
    "medium_in_medium": ["IMAGE"],
    "water_in_medium": ["IMAGE"],
}


def dose_scaling(max_dose_gy: float, bits: int) -> float:
    """Dose Grid Scaling (as read back from its DS) such that max / scaling fits ``bits``."""
    limit = 2**bits - 1
    if max_dose_gy <= 0:
        return 1.0
    scaling = ds_value(max_dose_gy / limit)
    while np.rint(max_dose_gy / scaling) > limit:
        scaling = ds_value(scaling * (1.0 + 1e-9))
    return scaling


def stored_dose(dose_gy: NDArray[np.float64], bits: int = 32) -> tuple[NDArray[np.uint32], float]:
    """(stored integers, scaling) for a dose array; raises for negative or non-finite dose."""
    if bits not in (16, 32):
        raise DicomExportError(f"RTDOSE bits must be 16 or 32, got {bits}")
    if not np.all(np.isfinite(dose_gy)):
        raise DicomExportError("dose contains NaN or infinite values")
    if dose_gy.size and float(dose_gy.min()) < 0:
        raise DicomExportError(f"dose contains negative values (min {float(dose_gy.min()):.3g} Gy)")
    scaling = dose_scaling(float(dose_gy.max()) if dose_gy.size else 0.0, bits)
    stored = np.rint(np.asarray(dose_gy, dtype=np.float64) / scaling)
    return stored.astype(np.uint32), scaling


def build_rtdose(
    dose: DoseGrid,
    geometry: PlaneGeometry,
    study: StudyInfo,
    series_instance_uid: str,
    sop_instance_uid: str,
    plan_sop_instance_uid: str,
    bits: int = 32,
    series_number: int = 3,
) -> Dataset:
    """RTDOSE dataset of ``dose`` (planes laid out as ``geometry``, the dose grid's own)."""
    stored, scaling = stored_dose(dose.dose_gy, bits)
    out = base_dataset(
        study,
        RTDoseStorage,
        sop_instance_uid,
        "RTDOSE",
        series_instance_uid,
        series_number,
        "openiort dose",
    )
    out.FrameOfReferenceUID = study.frame_of_reference_uid
    out.PositionReferenceIndicator = ""
    out.InstanceNumber = 1
    out.ContentDate = da(study.when)
    out.ContentTime = tm(study.when)
    out.ImagePositionPatient = [ds(v) for v in geometry.image_position_mm[geometry.order[0]]]
    out.ImageOrientationPatient = [ds(v) for v in geometry.orientation]
    out.PixelSpacing = [ds(v) for v in geometry.pixel_spacing_mm]
    out.SliceThickness = ds(geometry.slice_spacing_mm)
    out.NumberOfFrames = len(geometry.order)
    out.FrameIncrementPointer = Tag("GridFrameOffsetVector")
    out.GridFrameOffsetVector = [ds(v) for v in geometry.slice_offsets_mm()]
    frames = np.stack([geometry.plane(stored, k) for k in geometry.order], axis=0)
    out.SamplesPerPixel = 1
    out.PhotometricInterpretation = "MONOCHROME2"
    out.Rows, out.Columns = int(frames.shape[1]), int(frames.shape[2])
    out.BitsAllocated = bits
    out.BitsStored = bits
    out.HighBit = bits - 1
    out.PixelRepresentation = 0
    out.DoseUnits = "GY"
    out.DoseType = "PHYSICAL"
    out.DoseSummationType = "PLAN"
    out.DoseGridScaling = ds(scaling)
    out.TissueHeterogeneityCorrection = HETEROGENEITY[dose.medium]
    out.DoseComment = f"medium={dose.medium}"[:64]
    per = "one session" if dose.per_session else "all sessions"
    provenance = "; ".join(f"{k}={v}" for k, v in dose.provenance.to_dict().items())
    out.ImageComments = (
        f"{dose.medium_label}; {per}; normalisation: {dose.normalisation}; "
        f"stored as uint{bits} x DoseGridScaling; provenance: {provenance}. " + research_comment()
    )[:10240]
    plan_ref = Dataset()
    plan_ref.ReferencedSOPClassUID = RTPlanStorage
    plan_ref.ReferencedSOPInstanceUID = plan_sop_instance_uid
    out.ReferencedRTPlanSequence = Sequence([plan_ref])
    dtype = "<u4" if bits == 32 else "<u2"
    out.PixelData = frames.astype(dtype).tobytes()
    return out
