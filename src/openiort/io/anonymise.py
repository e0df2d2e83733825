"""De-identification after the DICOM Basic Application Level Confidentiality Profile
(PS3.15 Annex E), with every UID link kept consistent.

What it does to each dataset (recursively, into sequences):

- patient name and ID are replaced by the pseudonyms given (a random ``ANON-`` ID by default);
- identifying attributes of the patient, the physicians, the institution and the equipment are
  removed, or emptied where the IOD requires them (Type 2);
- study, series and instance dates and times are removed or emptied (no dates are shifted);
- private attributes are removed;
- every UID that is not a registered DICOM UID (SOP classes, transfer syntaxes, ...) is replaced
  by a new one, the same new UID everywhere the old one appears, so that the CT, RTSTRUCT, RTDOSE
  and RTPLAN still reference each other and share one Frame of Reference;
- free-text descriptions and comments are removed unless ``keep_descriptions`` is set (the
  export sets it: its own descriptions hold no patient data, the Clean Descriptors option);
- Patient Identity Removed = YES, with the method recorded as coded values.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, generate_uid

from openiort.io.dataset import read_dataset
from openiort.io.dicom_common import save
from openiort.io.errors import DicomExportError

# Type 2 attributes of the IODs written by openiort (and of common CT IODs): emptied.
EMPTIED = frozenset(
    {
        "PatientBirthDate",
        "PatientSex",
        "ReferringPhysicianName",
        "StudyID",
        "AccessionNumber",
        "StudyDate",
        "StudyTime",
        "ContentDate",
        "ContentTime",
        "StructureSetDate",
        "StructureSetTime",
        "RTPlanDate",
        "RTPlanTime",
        "OperatorsName",
        "ReviewDate",
        "ReviewTime",
        "ReviewerName",
        "ROIInterpreter",
        "ContentCreatorName",
        "AcquisitionNumber",
    }
)
# Identifying attributes that no IOD written here requires: removed.
REMOVED = frozenset(
    {
        "PatientAge",
        "PatientSize",
        "PatientWeight",
        "PatientAddress",
        "OtherPatientIDs",
        "OtherPatientNames",
        "OtherPatientIDsSequence",
        "PatientBirthName",
        "PatientMotherBirthName",
        "MedicalRecordLocator",
        "EthnicGroup",
        "Occupation",
        "AdditionalPatientHistory",
        "PatientComments",
        "PatientTelephoneNumbers",
        "MilitaryRank",
        "BranchOfService",
        "CountryOfResidence",
        "RegionOfResidence",
        "PatientReligiousPreference",
        "PatientBirthTime",
        "IssuerOfPatientID",
        "InstitutionName",
        "InstitutionAddress",
        "InstitutionalDepartmentName",
        "StationName",
        "PhysiciansOfRecord",
        "PerformingPhysicianName",
        "NameOfPhysiciansReadingStudy",
        "RequestingPhysician",
        "DeviceSerialNumber",
        "SeriesDate",
        "SeriesTime",
        "AcquisitionDate",
        "AcquisitionTime",
        "AcquisitionDateTime",
        "InstanceCreationDate",
        "InstanceCreationTime",
        "TimezoneOffsetFromUTC",
        "RequestAttributesSequence",
        "ReferencedPatientSequence",
        "AdmittingDiagnosesDescription",
        "PerformedProcedureStepStartDate",
        "PerformedProcedureStepStartTime",
        "PerformedProcedureStepID",
        "ScheduledProcedureStepID",
        "RequestedProcedureID",
        "FrameComments",
        "PatientState",
        "PregnancyStatus",
        "MedicalAlerts",
        "Allergies",
        "SmokingStatus",
        "LastMenstrualDate",
        "ProtocolName",
    }
)
DESCRIPTIONS = frozenset(
    {
        "StudyDescription",
        "SeriesDescription",
        "ImageComments",
        "DerivationDescription",
        "StructureSetDescription",
        "RTPlanDescription",
        "DoseComment",
        "ROIDescription",
        "ROIObservationDescription",
        "PerformedProcedureStepDescription",
        "RequestedProcedureDescription",
        "AcquisitionComments",
    }
)
METHOD_CODES = (
    ("113100", "Basic Application Confidentiality Profile"),
    ("113105", "Clean Descriptors Option"),
)


def _is_registered(uid: str) -> bool:
    """True for UIDs defined by the standard (SOP classes, transfer syntaxes, ...)."""
    return UID(uid).name != uid


class UidMap:
    """Old UID -> new UID, the same replacement every time an old UID is met."""

    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = prefix
        self.mapping: dict[str, str] = {}

    def __call__(self, uid: str) -> str:
        if not uid or _is_registered(uid):
            return uid
        if uid not in self.mapping:
            self.mapping[uid] = str(generate_uid(prefix=self.prefix))
        return self.mapping[uid]


def _clean(dataset: Dataset, uids: UidMap, keep_descriptions: bool) -> None:
    for element in list(dataset):
        keyword = element.keyword
        drop_text = keyword in DESCRIPTIONS and not keep_descriptions
        if element.tag.is_private or keyword in REMOVED or drop_text:
            del dataset[element.tag]
        elif keyword in EMPTIED:
            element.value = None if element.VR == "SQ" else ""
        elif element.VR == "SQ":
            for item in element.value or []:
                _clean(item, uids, keep_descriptions)
        elif element.VR == "UI" and element.value:
            if element.VM > 1:
                element.value = [uids(str(v)) for v in element.value]
            else:
                element.value = uids(str(element.value))


def anonymise_datasets(
    datasets: Iterable[Dataset],
    patient_name: str = "ANONYMOUS",
    patient_id: str | None = None,
    keep_descriptions: bool = False,
    uid_prefix: str | None = None,
) -> dict[str, str]:
    """De-identify ``datasets`` in place (see the module docstring); returns old -> new UIDs.

    All datasets given together get the same UID replacements and the same pseudonyms.
    """
    pseudonym_id = patient_id or f"ANON-{secrets.token_hex(4).upper()}"
    uids = UidMap(uid_prefix)
    for dataset in datasets:
        _clean(dataset, uids, keep_descriptions)
        meta = getattr(dataset, "file_meta", None)
        if meta is not None and "MediaStorageSOPInstanceUID" in meta:
            meta.MediaStorageSOPInstanceUID = uids(str(meta.MediaStorageSOPInstanceUID))
        dataset.PatientName = patient_name
        dataset.PatientID = pseudonym_id
        dataset.PatientIdentityRemoved = "YES"
        dataset.DeidentificationMethod = "openiort: DICOM PS3.15 E basic profile, UIDs remapped"
        codes = []
        for value, meaning in METHOD_CODES[: 2 if keep_descriptions else 1]:
            code = Dataset()
            code.CodeValue = value
            code.CodingSchemeDesignator = "DCM"
            code.CodeMeaning = meaning
            codes.append(code)
        dataset.DeidentificationMethodCodeSequence = Sequence(codes)
    return dict(uids.mapping)


def anonymise_directory(
    src: Path,
    dst: Path,
    patient_name: str = "ANONYMOUS",
    patient_id: str | None = None,
) -> list[Path]:
    """De-identify every DICOM file of ``src`` (non-recursive) into the new directory ``dst``.

    All files are read and checked before anything is written; ``dst`` must not exist yet.
    """
    if dst.exists():
        raise DicomExportError(f"{dst}: already exists; give a new directory")
    files = sorted(p for p in Path(src).iterdir() if p.is_file() and not p.name.startswith("."))
    datasets = [read_dataset(p) for p in files]
    anonymise_datasets(datasets, patient_name=patient_name, patient_id=patient_id)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dst.parent, prefix=".anon-") as tmp:
        staging = Path(tmp) / "out"
        staging.mkdir()
        for n, dataset in enumerate(datasets, start=1):
            save(dataset, staging / f"{n:05d}.dcm")
        shutil.move(str(staging), str(dst))
    return sorted(dst.iterdir())
