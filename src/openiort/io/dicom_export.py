"""Export a plan as DICOM RT: CT series, RTSTRUCT, RTDOSE and RTPLAN in one study.

All objects share one Patient, one Study and one Frame of Reference; each is its own series.
The Study is the case's: the same Study Instance UID on every export of the case's plans (a
PACS files them together), while each export is a new series with new instances. UIDs are
``2.25.<UUID>`` (PS3.5 B.2) unless an organisation root is given (argument or the department's
settings, :mod:`openiort.io.dicom_settings`). The RTSTRUCT references every CT image, the
RTPLAN the RTSTRUCT, and the RTDOSE the RTPLAN. Nothing is written unless every object could be
built: the files are assembled in a hidden staging directory and moved into ``out_dir`` at the
end.

A plan on openiort's phantom comes with a synthetic CT of the phantom, marked as such (Image
Type DERIVED\\SECONDARY, series description "openiort synthetic phantom, not patient
imaging"). A plan on the patient's CT (``ct_reference``) writes no CT: its objects join the
CT's patient, study and frame of reference, and the structure set references the CT's images.

Files: ``CT_0001.dcm`` ... (in order along the slice normal; none for a plan on the patient's
CT), ``RS.dcm``, ``RD.dcm``, ``RP.dcm``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

from openiort.anatomy.hu_calibration import (
    CalibrationError,
    HuCalibration,
    load_calibration,
    phantom_hu,
)
from openiort.anatomy.phantom import Phantom
from openiort.dosegrid import DoseGrid
from openiort.io.anonymise import anonymise_datasets
from openiort.io.ct_reference import CtReference
from openiort.io.ct_writer import build_ct_series
from openiort.io.dicom_common import StudyInfo, save
from openiort.io.dicom_settings import DicomSettings, stable_uid
from openiort.io.errors import DicomExportError
from openiort.io.geometry import PATIENT_POSITIONS, plane_geometry
from openiort.io.rtdose_writer import build_rtdose
from openiort.io.rtplan_writer import ExportPlan, build_rtplan, read_export_plan
from openiort.io.rtstruct_writer import INTERPRETED_TYPES, build_rtstruct

SYNTHETIC_CT_DESCRIPTION = "openiort synthetic phantom, not patient imaging"
TECHNIQUE_CODES = {"xray": "kV", "electron": "e-", "hdr": "HDR"}


def plan_label(technique: str, version: int | None, created: datetime) -> tuple[str, str]:
    """RT Plan Label (16 characters) and RT Plan Name: the plan version when the record gives
    one, else the time the plan was made, so that every version of a case's plan has its own
    label."""
    code = TECHNIQUE_CODES.get(technique, technique)
    if version is not None:
        return f"IORT {code} v{version}"[:16], f"openiort {technique} IORT, plan version {version}"
    stamp = created.strftime("%y%m%d-%H%M")
    return f"{code} {stamp}"[:16], f"openiort {technique} IORT, planned {created:%Y-%m-%d %H:%M}"


def _created(plan: Mapping[str, Any], fallback: datetime) -> datetime:
    text = plan.get("created_utc") if isinstance(plan, Mapping) else None
    if isinstance(text, str):
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass
    return fallback


def build_plan_datasets(
    phantom: Phantom,
    dose: DoseGrid,
    plan: Mapping[str, Any] | ExportPlan,
    study: StudyInfo,
    patient_position: str = "HFS",
    calibration: HuCalibration | str | Path | None = None,
    dose_bits: int = 32,
    *,
    ct_reference: CtReference | None = None,
    plan_version: int | None = None,
    created: datetime | None = None,
) -> list[tuple[str, Dataset]]:
    """(file name, dataset) of every object of the export, without writing anything.

    With ``ct_reference`` (a plan on the patient's CT) no CT is written: the structure set
    references the CT's images and every object the CT's study and frame of reference, which
    ``study`` must already hold.
    """
    export = plan if isinstance(plan, ExportPlan) else read_export_plan(plan)
    technique = export.technique
    if patient_position not in PATIENT_POSITIONS:
        raise DicomExportError(
            f"patient position {patient_position!r} not one of {', '.join(PATIENT_POSITIONS)}"
        )
    dose_geometry = plane_geometry(dose.grid, patient_position)
    rs_series, rd_series, rp_series = (study.uid() for _ in range(3))
    rs_uid, rd_uid, rp_uid = study.uid(), study.uid(), study.uid()
    objects: list[tuple[str, Dataset]] = []
    if ct_reference is None:
        try:
            cal = (
                calibration
                if isinstance(calibration, HuCalibration)
                else load_calibration(calibration)
            )
            hu = phantom_hu(phantom, cal)
        except (CalibrationError, ValueError) as exc:
            raise DicomExportError(f"cannot convert the phantom to CT numbers: {exc}") from exc
        ct_geometry = plane_geometry(phantom.grid, patient_position)
        ct_series = study.uid()
        ct_uids = [study.uid() for _ in range(phantom.grid.shape[0])]
        derivation = (
            f"synthetic CT of an openiort voxel phantom: CT numbers from its materials and "
            f"densities through {cal.source} (sha256 {cal.sha256[:16]}); not patient imaging"
        )
        side = str(phantom.description.get("laterality", "")).lower()
        laterality = {"left": "L", "right": "R"}.get(side, "")
        objects += build_ct_series(
            hu, ct_geometry, study, ct_series, ct_uids, derivation, laterality
        )
        for _, image in objects:
            image.SeriesDescription = SYNTHETIC_CT_DESCRIPTION
    else:
        ct_series = ct_reference.series_instance_uid
        ct_uids = ct_reference.sop_uids_for(phantom.grid)
    types = dict(INTERPRETED_TYPES)
    if technique == "electron":
        types["applicator"] = ""  # an electron applicator is not a brachytherapy source applicator
    rtstruct = build_rtstruct(
        phantom.structures, phantom.grid, study, rs_series, rs_uid, ct_series, ct_uids, types
    )
    objects.append(("RS.dcm", rtstruct))
    objects.append(
        (
            "RD.dcm",
            build_rtdose(dose, dose_geometry, study, rd_series, rd_uid, rp_uid, bits=dose_bits),
        )
    )
    names = list(phantom.structures)
    applicator_roi = names.index("applicator") + 1 if "applicator" in names else None
    rtplan = build_rtplan(
        export,
        study,
        rp_series,
        rp_uid,
        rs_uid,
        patient_position,
        phantom.applicator_centre_mm,
        applicator_roi,
    )
    rtplan.RTPlanLabel, rtplan.RTPlanName = plan_label(
        technique, plan_version, created or study.when
    )
    objects.append(("RP.dcm", rtplan))
    return objects


def _prepare_out_dir(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise DicomExportError(f"{out_dir}: exists and is not a directory")
    if out_dir.is_dir():
        existing = [p for p in out_dir.iterdir() if not p.name.startswith(".")]
        if existing and not overwrite:
            raise DicomExportError(
                f"{out_dir}: not empty; give an empty directory or overwrite=True"
            )
        for p in existing:
            if p.is_file() and p.suffix == ".dcm":
                p.unlink()
            else:
                raise DicomExportError(f"{out_dir}: holds {p.name}, which is not an export file")


def export_plan(
    phantom: Phantom,
    dose: DoseGrid,
    plan: Mapping[str, Any],
    out_dir: str | Path,
    patient_name: str | None = None,
    patient_id: str | None = None,
    anonymise: bool = False,
    *,
    patient_position: str = "HFS",
    calibration: HuCalibration | str | Path | None = None,
    dose_bits: int = 32,
    when: datetime | None = None,
    uid_prefix: str | None = None,
    overwrite: bool = False,
    pseudonym: str | None = None,
    settings: DicomSettings | None = None,
    plan_version: int | None = None,
    ct_reference: CtReference | None = None,
) -> list[Path]:
    """Write the plan as DICOM RT objects into ``out_dir``.

    Parameters
    ----------
    phantom:
        The anatomy: CT numbers come from its materials and densities through the HU
        calibration; every structure becomes an ROI of the same name.
    dose:
        Dose per session in Gy, on its own grid (written as RTDOSE, uint32 x DoseGridScaling
        by default, so exact to half a scaling step, ~1e-10 of the maximum dose).
    plan:
        The ``plan.json`` dict: its typed delivery is read, or the top-level keys of a plan.json
        written before deliveries were typed (``openiort.io.rtplan_writer``).
    out_dir:
        Created if missing; must be empty unless ``overwrite`` (which replaces ``*.dcm`` only).
    patient_name, patient_id:
        Patient module values; default to the plan's ``case_id``.
    anonymise:
        De-identify (``openiort.io.anonymise``): ``patient_name`` and ``patient_id`` are NOT
        written; the patient becomes ``pseudonym`` (default ``ANONYMOUS``) with a random
        ``ANON-`` ID; no dates or institution; all UIDs replaced consistently.
    pseudonym:
        Patient name written when ``anonymise`` is set.
    patient_position:
        HFS, FFS, HFP or FFP: how the image planes are laid out (the coordinates stay LPS).
    calibration:
        HU calibration (object or CSV path); the packaged default when None.
    dose_bits:
        32 (default) or 16 bits per dose voxel.
    when:
        Date and time written as study, series, plan and source-strength reference time.
    uid_prefix:
        Organisation UID root (ending with '.'); the settings' root when None, else ``2.25.``
        UUID-derived UIDs.
    overwrite:
        Replace the ``*.dcm`` files of a previous export in ``out_dir``.
    settings:
        The department's DICOM settings (:mod:`openiort.io.dicom_settings`): UID root,
        institution and department names, treatment machine names.
    plan_version:
        The plan's version in the record (RT Plan Label ``IORT kV v3``); without one the label
        carries the time the plan was made.
    ct_reference:
        The patient's CT the plan was made on (:func:`openiort.inputs.ct.load_ct_reference`):
        no CT is written, and every object joins the CT's patient, study and frame of
        reference; its patient position is used. Not with ``anonymise``.

    Identities: the Study Instance UID is the case's, the same on every export of the case's
    plans (derived from the UID root, the case id and the patient id), or the CT's study; every
    export is a new series of each object, with new instance UIDs.

    Returns
    -------
    list[Path]
        The files written: CT images, then RS.dcm, RD.dcm, RP.dcm.

    Raises
    ------
    DicomExportError
        Inputs that cannot make valid DICOM (unknown material, bad plan keys, negative dose,
        non-empty output directory); nothing is written.
    """
    out = Path(out_dir)
    _prepare_out_dir(out, overwrite)
    export = read_export_plan(plan)  # every plan key is checked before anything is built
    case_id = export.options.case_id or "UNKNOWN"
    chosen = settings or DicomSettings()
    prefix = uid_prefix or chosen.uid_prefix
    machine = chosen.machine_for(export.technique)
    if machine and not export.options.treatment_machine:
        export = read_export_plan({**plan, "treatment_machine": machine})
    if ct_reference is not None and anonymise:
        raise DicomExportError(
            "a plan on the patient's CT references that CT: de-identify the CT and the plan "
            "together (export without --anonymise, then de-identify both)"
        )
    if anonymise:  # the identifiers never enter a dataset
        name, pid = pseudonym or "ANONYMOUS", ""
    else:
        name, pid = patient_name or case_id, patient_id or case_id
    if ct_reference is not None:
        study = replace(
            StudyInfo.create(
                ct_reference.patient_name,
                ct_reference.patient_id,
                when=when,
                uid_prefix=prefix,
                study_instance_uid=ct_reference.study_instance_uid,
                frame_of_reference_uid=ct_reference.frame_of_reference_uid,
            ),
            patient_birth_date=ct_reference.patient_birth_date,
            patient_sex=ct_reference.patient_sex,
            study_date=ct_reference.study_date,
            study_time=ct_reference.study_time,
            study_id=ct_reference.study_id,
            accession_number=ct_reference.accession_number,
            referring_physician_name=ct_reference.referring_physician_name,
            study_description=ct_reference.study_description,
        )
        if ct_reference.issuer_of_patient_id:
            study.extra_patient["IssuerOfPatientID"] = ct_reference.issuer_of_patient_id
        patient_position = ct_reference.patient_position or patient_position
    else:
        study = StudyInfo.create(
            name,
            pid,
            when=when,
            uid_prefix=prefix,
            study_instance_uid=stable_uid(prefix, "study", case_id, pid),
        )
    study = replace(
        study,
        institution_name=chosen.institution_name,
        department_name=chosen.department_name,
        station_name=chosen.station_name,
    )
    objects = build_plan_datasets(
        phantom,
        dose,
        export,
        study,
        patient_position,
        calibration,
        dose_bits,
        ct_reference=ct_reference,
        plan_version=plan_version,
        created=_created(plan, study.when),
    )
    if anonymise:
        anonymise_datasets(
            [d for _, d in objects],
            patient_name=name,
            patient_id=None,
            keep_descriptions=True,
            uid_prefix=uid_prefix,
        )
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(dir=out, prefix=".staging-") as tmp:
        for filename, dataset in objects:
            save(dataset, Path(tmp) / filename)
        for filename, _ in objects:
            target = out / filename
            shutil.move(str(Path(tmp) / filename), str(target))
            written.append(target)
    return written
