"""Export a plan as DICOM RT: CT series, RTSTRUCT, RTDOSE and RTPLAN in one study.

All objects share one Patient, one Study and one Frame of Reference; each is its own series.
UIDs are ``2.25.<UUID>`` (PS3.5 B.2) unless an organisation root is given. The RTSTRUCT
references every CT image, the RTPLAN the RTSTRUCT, and the RTDOSE the RTPLAN. Nothing is
written unless every object could be built: the files are assembled in a hidden staging
directory and moved into ``out_dir`` at the end.

Files: ``CT_0001.dcm`` ... (in order along the slice normal), ``RS.dcm``, ``RD.dcm``, ``RP.dcm``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
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
from openiort.io.ct_writer import build_ct_series
from openiort.io.dicom_common import StudyInfo, save
from openiort.io.errors import DicomExportError
from openiort.io.geometry import PATIENT_POSITIONS, plane_geometry
from openiort.io.rtdose_writer import build_rtdose
from openiort.io.rtplan_writer import ExportPlan, build_rtplan, read_export_plan
from openiort.io.rtstruct_writer import INTERPRETED_TYPES, build_rtstruct


def build_plan_datasets(
    phantom: Phantom,
    dose: DoseGrid,
    plan: Mapping[str, Any] | ExportPlan,
    study: StudyInfo,
    patient_position: str = "HFS",
    calibration: HuCalibration | str | Path | None = None,
    dose_bits: int = 32,
) -> list[tuple[str, Dataset]]:
    """(file name, dataset) of every object of the export, without writing anything."""
    export = plan if isinstance(plan, ExportPlan) else read_export_plan(plan)
    technique = export.technique
    if patient_position not in PATIENT_POSITIONS:
        raise DicomExportError(
            f"patient position {patient_position!r} not one of {', '.join(PATIENT_POSITIONS)}"
        )
    try:
        cal = (
            calibration if isinstance(calibration, HuCalibration) else load_calibration(calibration)
        )
        hu = phantom_hu(phantom, cal)
    except (CalibrationError, ValueError) as exc:
        raise DicomExportError(f"cannot convert the phantom to CT numbers: {exc}") from exc
    ct_geometry = plane_geometry(phantom.grid, patient_position)
    dose_geometry = plane_geometry(dose.grid, patient_position)
    ct_series, rs_series, rd_series, rp_series = (study.uid() for _ in range(4))
    ct_uids = [study.uid() for _ in range(phantom.grid.shape[0])]
    rs_uid, rd_uid, rp_uid = study.uid(), study.uid(), study.uid()
    derivation = (
        f"synthetic CT of an openiort voxel phantom: CT numbers from its materials and densities "
        f"through {cal.source} (sha256 {cal.sha256[:16]})"
    )
    side = str(phantom.description.get("laterality", "")).lower()
    laterality = {"left": "L", "right": "R"}.get(side, "")
    objects = build_ct_series(hu, ct_geometry, study, ct_series, ct_uids, derivation, laterality)
    types = dict(INTERPRETED_TYPES)
    if technique == "electron":
        types["applicator"] = ""  # an electron applicator is not a brachytherapy source applicator
    objects.append(
        (
            "RS.dcm",
            build_rtstruct(
                phantom.structures,
                phantom.grid,
                study,
                rs_series,
                rs_uid,
                ct_series,
                ct_uids,
                types,
            ),
        )
    )
    objects.append(
        (
            "RD.dcm",
            build_rtdose(dose, dose_geometry, study, rd_series, rd_uid, rp_uid, bits=dose_bits),
        )
    )
    names = list(phantom.structures)
    applicator_roi = names.index("applicator") + 1 if "applicator" in names else None
    objects.append(
        (
            "RP.dcm",
            build_rtplan(
                export,
                study,
                rp_series,
                rp_uid,
                rs_uid,
                patient_position,
                phantom.applicator_centre_mm,
                applicator_roi,
            ),
        )
    )
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
        Organisation UID root (ending with '.'); ``2.25.`` UUID-derived UIDs when None.
    overwrite:
        Replace the ``*.dcm`` files of a previous export in ``out_dir``.

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
    if anonymise:  # the identifiers never enter a dataset
        name, pid = pseudonym or "ANONYMOUS", ""
    else:
        name, pid = patient_name or case_id, patient_id or case_id
    study = StudyInfo.create(name, pid, when=when, uid_prefix=uid_prefix)
    objects = build_plan_datasets(
        phantom, dose, export, study, patient_position, calibration, dose_bits
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
