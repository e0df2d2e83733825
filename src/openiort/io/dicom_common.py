"""Modules shared by every exported object: SOP Common, Patient, General Study, series and
equipment, plus value formatting and writing.

All objects of one export share the Patient, the Study and the Frame of Reference (the Study
is the case's, the same on every export: :func:`openiort.io.dicom_settings.stable_uid`); text is
UTF-8 (Specific Character Set ``ISO_IR 192``); dates and times are those of the export (or the
``when`` given), in local time with the UTC offset in Timezone Offset From UTC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid
from pydicom.valuerep import format_number_as_ds

from openiort import RESEARCH_NOTICE, __version__

CHARACTER_SET = "ISO_IR 192"
MANUFACTURER = "openiort"


def new_uid(prefix: str | None = None) -> str:
    """A new UID: ``2.25.<UUID>`` without a prefix (PS3.5 B.2), else ``prefix`` + random."""
    return str(generate_uid(prefix=prefix))


# PS3.5 6.2: a Decimal String holds at most 16 bytes.
DS_MAX_CHARS = 16


def ds(value: float) -> str:
    """A Decimal String of at most 16 characters that is as close to ``value`` as DS allows.

    The shortest text that reads back as the same float is used when it fits (``repr``);
    otherwise the fixed or scientific form with the most significant digits that fits in
    16 characters, so ``10.000000000000002`` becomes ``10`` (the nearest 16-character value) and
    ``0.000123456789012345`` keeps 12 significant digits as ``1.23456789012e-4``.

    Raises
    ------
    ValueError
        If ``value`` is not finite (DS has no text for NaN or infinity).
    """
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"a DICOM Decimal String cannot hold {number!r}")
    text = _compact_exponent(repr(number))
    if len(text) <= DS_MAX_CHARS:
        return text
    candidates = [format_number_as_ds(number)]
    for digits in range(1, 18):
        candidates.append(_compact_exponent(f"{number:.{digits}g}"))
        candidates.append(_compact_exponent(f"{number:.{digits - 1}e}"))
    fitting = [c for c in candidates if len(c) <= DS_MAX_CHARS]
    # Closest first; of equally close texts the fixed form, then the shortest.
    return min(fitting, key=lambda c: (abs(float(c) - number), "e" in c, len(c)))


def _compact_exponent(text: str) -> str:
    """``1e-07`` as ``1e-7`` and ``1e+20`` as ``1e20``: the same number in fewer characters."""
    mantissa, sep, exponent = text.partition("e")
    if not sep:
        return text
    sign = "-" if exponent.startswith("-") else ""
    return f"{mantissa}e{sign}{exponent.lstrip('+-').lstrip('0') or '0'}"


def ds_value(value: float) -> float:
    """The float that a reader gets back from ``ds(value)``."""
    return float(ds(value))


def da(when: datetime) -> str:
    return when.strftime("%Y%m%d")


def tm(when: datetime) -> str:
    return when.strftime("%H%M%S")


@dataclass(frozen=True)
class StudyInfo:
    """What all objects of one export share."""

    patient_name: str
    patient_id: str
    when: datetime
    study_instance_uid: str
    frame_of_reference_uid: str
    study_id: str = "IORT"
    study_description: str = "openiort IORT plan"
    accession_number: str = ""
    patient_birth_date: str = ""
    patient_sex: str = ""
    referring_physician_name: str = ""
    institution_name: str = ""
    department_name: str = ""
    station_name: str = ""
    uid_prefix: str | None = None
    extra_patient: dict[str, str] = field(default_factory=dict)
    # An existing study's date and time (a plan on the patient's CT joins its study); the
    # export's own when empty.
    study_date: str = ""
    study_time: str = ""

    @classmethod
    def create(
        cls,
        patient_name: str,
        patient_id: str,
        when: datetime | None = None,
        uid_prefix: str | None = None,
        study_instance_uid: str | None = None,
        frame_of_reference_uid: str | None = None,
    ) -> StudyInfo:
        moment = (when or datetime.now().astimezone()).replace(microsecond=0)
        return cls(
            patient_name=patient_name,
            patient_id=patient_id,
            when=moment,
            study_instance_uid=study_instance_uid or new_uid(uid_prefix),
            frame_of_reference_uid=frame_of_reference_uid or new_uid(uid_prefix),
            uid_prefix=uid_prefix,
        )

    def uid(self) -> str:
        return new_uid(self.uid_prefix)


def base_dataset(
    study: StudyInfo,
    sop_class_uid: str,
    sop_instance_uid: str,
    modality: str,
    series_instance_uid: str,
    series_number: int,
    series_description: str,
) -> Dataset:
    """Dataset with file meta, SOP Common, Patient, General Study, series and equipment set."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class_uid)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    out = Dataset()
    out.file_meta = meta
    # SOP Common
    out.SpecificCharacterSet = CHARACTER_SET
    out.InstanceCreationDate = da(study.when)
    out.InstanceCreationTime = tm(study.when)
    offset = study.when.strftime("%z")
    if offset:
        out.TimezoneOffsetFromUTC = offset
    out.SOPClassUID = sop_class_uid
    out.SOPInstanceUID = sop_instance_uid
    # Patient
    out.PatientName = study.patient_name
    out.PatientID = study.patient_id
    out.PatientBirthDate = study.patient_birth_date
    out.PatientSex = study.patient_sex
    for keyword, value in study.extra_patient.items():
        setattr(out, keyword, value)
    # General Study
    out.StudyInstanceUID = study.study_instance_uid
    out.StudyDate = study.study_date or da(study.when)
    out.StudyTime = study.study_time or tm(study.when)
    out.ReferringPhysicianName = study.referring_physician_name
    out.StudyID = study.study_id
    out.AccessionNumber = study.accession_number
    out.StudyDescription = study.study_description
    # General / RT Series
    out.Modality = modality
    out.SeriesInstanceUID = series_instance_uid
    out.SeriesNumber = series_number
    out.SeriesDate = da(study.when)
    out.SeriesTime = tm(study.when)
    out.SeriesDescription = series_description
    out.OperatorsName = ""
    # General Equipment
    out.Manufacturer = MANUFACTURER
    out.ManufacturerModelName = "openiort"
    out.SoftwareVersions = __version__
    if study.institution_name:
        out.InstitutionName = study.institution_name
    if study.department_name:
        out.InstitutionalDepartmentName = study.department_name
    if study.station_name:
        out.StationName = study.station_name
    return out


def research_comment() -> str:
    """The research-software notice, written into every object's comments."""
    return RESEARCH_NOTICE


def save(dataset: Dataset, path: Path) -> None:
    """Write ``dataset`` as a DICOM Part 10 file (preamble, file meta, explicit VR LE)."""
    dataset.save_as(path, enforce_file_format=True, implicit_vr=False, little_endian=True)
