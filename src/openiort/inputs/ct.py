"""CT import: a DICOM CT series (and RTSTRUCT) -> Phantom, through a replaceable HU calibration.

The calibration (:mod:`openiort.anatomy.hu_calibration`) maps each voxel's CT number to a
material and a mass density; a structure it names (the applicator) gets its material whatever
the HU. ``load_ct_phantom`` accepts any patient position (HFS, FFS, HFP, FFP), axial, coronal or
sagittal slices in any file order; corrupt or unsupported input raises one ``DicomImportError``
naming the file, and nothing is returned half-built.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from openiort.anatomy.applicator import sphere_from_mask
from openiort.anatomy.hu_calibration import HuCalibration, as_calibration
from openiort.anatomy.phantom import Phantom
from openiort.inputs.dicom_read import read_ct_series, read_rtstruct_masks
from openiort.io.errors import DicomImportError


def load_ct_phantom(
    ct_dir: str | Path,
    rtstruct: str | Path | None = None,
    calibration: HuCalibration | str | Path | None = None,
    *,
    roi_names: Mapping[str, str] | None = None,
    series_instance_uid: str | None = None,
) -> Phantom:
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
        Optional renaming of ROI names to structure names (e.g. ``{"Heart": "heart"}``).
    series_instance_uid:
        Which series to read when the directory holds several CT series.

    Returns
    -------
    Phantom
        With ``description`` recording the calibration, the patient position and the series
        size (never patient identifiers). When an ``applicator`` structure is present,
        ``applicator_centre_mm`` and ``applicator_radius_mm`` are its centroid and equal-volume
        sphere radius (``cavity_radius_mm`` likewise from ``cavity``). A CT taken before
        surgery has no applicator: place one with
        :func:`openiort.anatomy.applicator.place_applicator`.

    Raises
    ------
    DicomImportError
        Corrupt, inconsistent or unsupported input; the message names the file.
    CalibrationError
        A malformed calibration file.
    """
    cal = as_calibration(calibration)
    series = read_ct_series(Path(ct_dir), series_instance_uid=series_instance_uid)
    structures: dict[str, NDArray[np.bool_]] = {}
    empty_rois: list[str] = []
    if rtstruct is not None:
        masks = read_rtstruct_masks(Path(rtstruct), series)
        rename = dict(roi_names or {})
        for name, mask in masks.items():
            target = rename.get(name, name)
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
    return Phantom(
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
        },
    )
