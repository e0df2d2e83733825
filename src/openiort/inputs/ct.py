"""CT import: a DICOM CT series (and RTSTRUCT) -> Phantom, through a replaceable HU calibration.

The calibration (:mod:`openiort.anatomy.hu_calibration`) maps each voxel's CT number to a
material and a mass density; a structure it names (the applicator) gets its material whatever
the HU. ``load_ct_phantom`` accepts any patient position (HFS, FFS, HFP, FFP), axial, coronal or
sagittal slices in any file order; corrupt or unsupported input raises one ``DicomImportError``
naming the file, and nothing is returned half-built.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from openiort.anatomy.applicator import sphere_from_mask
from openiort.anatomy.hu_calibration import HuCalibration, as_calibration
from openiort.anatomy.phantom import Phantom
from openiort.errors import OpenIortInputError
from openiort.inputs.dicom_read import read_ct_series, read_rtstruct_masks
from openiort.inputs.roi_names import map_roi_names
from openiort.io.ct_reference import CtReference
from openiort.io.errors import DicomImportError


def load_ct_phantom(
    ct_dir: str | Path,
    rtstruct: str | Path | None = None,
    calibration: HuCalibration | str | Path | None = None,
    *,
    roi_names: Mapping[str, str] | None = None,
    series_instance_uid: str | None = None,
    laterality: str | None = None,
    synonyms: bool = True,
) -> Phantom:
    """Phantom from a DICOM CT series (see :func:`load_ct`, which also returns the series'
    identity)."""
    phantom, _ = load_ct(
        ct_dir,
        rtstruct,
        calibration,
        roi_names=roi_names,
        series_instance_uid=series_instance_uid,
        laterality=laterality,
        synonyms=synonyms,
    )
    return phantom


def load_ct(
    ct_dir: str | Path,
    rtstruct: str | Path | None = None,
    calibration: HuCalibration | str | Path | None = None,
    *,
    roi_names: Mapping[str, str] | None = None,
    series_instance_uid: str | None = None,
    laterality: str | None = None,
    synonyms: bool = True,
) -> tuple[Phantom, CtReference]:
    """Phantom from a DICOM CT series and, optionally, an RTSTRUCT on it.

    Parameters
    ----------
    ct_dir:
        Directory holding one CT series (files in any order, any of HFS, FFS, HFP, FFP).
        RT objects (RTSTRUCT, RTDOSE, RTPLAN, ...) and ``DICOMDIR`` in it are skipped.
    rtstruct:
        RTSTRUCT file whose ROIs become ``structures`` (rasterised on the CT voxels; nested
        contours are holes). It must share the CT's Frame of Reference.
    calibration:
        HU calibration (object or CSV path); the packaged ``hu_calibration.csv`` when None.
    roi_names:
        The user's map of ROI names to openiort structure names (``--roi-map``, e.g.
        ``{"Lumpectomy cavity": "cavity"}``); it takes precedence over the synonym table.
    series_instance_uid:
        Which series to read when the directory holds several CT series.
    laterality:
        The case's side (``left``/``right``): a TG-263 name of the other side (``Lung_R`` on a
        left case) is refused (:mod:`openiort.inputs.roi_names`).
    synonyms:
        Map the other ROI names through the default synonym table (TG-263 names and clinical
        variants, case-insensitive); an ROI that nothing maps keeps its own name.

    Returns
    -------
    Phantom, CtReference
        The phantom with ``description`` recording the calibration, the patient position and the series
        size (never patient identifiers). When an ``applicator`` structure is present,
        ``applicator_centre_mm`` and ``applicator_radius_mm`` are its centroid and equal-volume
        sphere radius (``cavity_radius_mm`` likewise from ``cavity``). A CT taken before
        surgery has no applicator: place one with
        :func:`openiort.anatomy.applicator.place_applicator`.

    Raises
    ------
    DicomImportError
        Corrupt, inconsistent or unsupported input; the message names the file.
    StructureNameError
        ROI names that cannot be mapped (ambiguous, of the other side, a map naming an ROI
        that is not there); the message lists the names found.
    CalibrationError
        A malformed calibration file.
    """
    cal = as_calibration(calibration)
    series = read_ct_series(Path(ct_dir), series_instance_uid=series_instance_uid)
    structures: dict[str, NDArray[np.bool_]] = {}
    empty_rois: list[str] = []
    roi_mapping: dict[str, str] = {}
    if rtstruct is not None:
        masks = read_rtstruct_masks(Path(rtstruct), series)
        mapping = map_roi_names(
            list(masks), laterality, roi_names, synonyms=None if synonyms else ()
        )
        roi_mapping = dict(mapping.structure_of)
        for name, mask in masks.items():
            target = roi_mapping.get(name, name)
            if target in structures:
                raise DicomImportError(f"{rtstruct}: two ROIs map to the structure name {target!r}")
            if mask.any():
                structures[target] = mask
            else:
                empty_rois.append(target)
    codes, names, density = cal.assign(series.hu)
    for structure, material in cal.structure_overrides.items():
        if structure in structures:
            sel = structures[structure]
            if material not in names:
                names.append(material)
            codes[sel] = names.index(material)
            density[sel] = cal.material_density(material, series.hu[sel])
    # keep only materials present, in first-seen order
    present = [i for i in range(len(names)) if np.any(codes == i)]
    if len(present) > 256:
        raise DicomImportError(f"{ct_dir}: more than 256 materials after calibration")
    lut = np.zeros(len(names), dtype=np.uint8)
    for new, old in enumerate(present):
        lut[old] = new
    material_ids = lut[codes].astype(np.uint8)
    materials = tuple(names[i] for i in present)
    grid = series.grid
    centres = grid.axes_mm()
    app_centre: tuple[float, float, float] | None = None
    app_radius: float | None = None
    cav_radius: float | None = None
    if "applicator" in structures:
        app_centre, app_radius = sphere_from_mask(
            structures["applicator"], centres, grid.voxel_volume_cc
        )
    if "cavity" in structures:
        _, cav_radius = sphere_from_mask(structures["cavity"], centres, grid.voxel_volume_cc)
    assert series.reference is not None
    phantom = Phantom(
        grid=grid,
        material_ids=material_ids,
        density_g_cm3=density.astype(np.float32),
        materials=materials,
        structures=structures,
        applicator_centre_mm=app_centre,
        applicator_radius_mm=app_radius,
        cavity_radius_mm=cav_radius,
        description={
            "source": "DICOM CT",
            "patient_position": series.patient_position,
            "slices": series.n_slices,
            "hu_calibration": cal.source,
            "hu_calibration_sha256": cal.sha256,
            "empty_rois": empty_rois,
            "roi_mapping": roi_mapping,
            # which CT, so that an export can reference it (UIDs, no patient identifiers)
            "ct_study_instance_uid": series.reference.study_instance_uid,
            "ct_series_instance_uid": series.series_instance_uid,
            "frame_of_reference_uid": series.frame_of_reference_uid,
        },
    )
    return phantom, series.reference


def load_ct_reference(ct_dir: str | Path, series_instance_uid: str | None = None) -> CtReference:
    """The identity and slices of the CT series in ``ct_dir`` (which the exported objects of a
    plan on it reference)."""
    series = read_ct_series(Path(ct_dir), series_instance_uid=series_instance_uid)
    assert series.reference is not None
    return series.reference


class PatientMismatchError(OpenIortInputError):
    """The CT belongs to another patient than the case or record (wrong-patient check)."""


def _normalised_name(name: str) -> tuple[str, ...]:
    parts = [p.strip().casefold() for p in name.replace(" ", "^").split("^")]
    return tuple(p for p in parts[:2] if p)


def check_ct_patient(
    reference: CtReference,
    patient_id: str,
    patient_name: str | None = None,
    birth_date: str | None = None,
    age_years: int | None = None,
) -> None:
    """Refuse a CT of another patient: its Patient ID must be the case's (the record's) patient
    id; its name (family^given, case-insensitive) and birth date must match when the record has
    them; its age at the study (from Patient Birth Date and Study Date) must be the case's age,
    within a year, when both are known. The message names the attributes, never their values."""
    problems = []
    if reference.patient_id.strip() != patient_id.strip():
        problems.append(
            "the CT's Patient ID is not the case's patient id: is this the right patient's CT?"
        )
    if patient_name and _normalised_name(reference.patient_name) != _normalised_name(patient_name):
        problems.append("the CT's Patient Name is not the record's")
    if birth_date and reference.patient_birth_date and reference.patient_birth_date != birth_date:
        problems.append("the CT's Patient Birth Date is not the record's")
    born, studied = reference.patient_birth_date, reference.study_date
    if age_years is not None and len(born) == 8 and len(studied) == 8 and born.isdigit():
        try:
            b = date(int(born[:4]), int(born[4:6]), int(born[6:]))
            s = date(int(studied[:4]), int(studied[4:6]), int(studied[6:]))
        except ValueError:
            b = s = None  # type: ignore[assignment]
        if b is not None and s is not None:
            age = s.year - b.year - ((s.month, s.day) < (b.month, b.day))
            if abs(age - age_years) > 1:
                problems.append(
                    "the patient's age at the CT (from its Patient Birth Date and Study Date) "
                    "is not the case's age"
                )
    if problems:
        raise PatientMismatchError(
            *problems, "refused: plan only on the CT of the case's patient", source="--ct"
        )
