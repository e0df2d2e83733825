"""The patient's CT series that a plan was made on, as the exported objects must reference it.

A plan on an imported CT is exported into the CT's own Study and Frame of Reference, for the
CT's patient, with the RT Structure Set's contours referencing the CT's images: a PACS and a
planning system then show the plan over the original CT, and openiort writes no CT of its own.
:func:`openiort.inputs.ct.load_ct_reference` reads one from a CT folder.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from openiort.grid import Grid
from openiort.io.errors import DicomExportError

SLICE_MATCH_TOL_MM = 0.05


@dataclass(frozen=True)
class CtReference:
    """Identity and slices of a CT series (no pixel data)."""

    patient_name: str
    patient_id: str
    patient_birth_date: str
    patient_sex: str
    study_instance_uid: str
    study_date: str
    study_time: str
    study_id: str
    accession_number: str
    referring_physician_name: str
    study_description: str
    series_instance_uid: str
    frame_of_reference_uid: str
    patient_position: str
    sop_class_uid: str
    # (position along the slice normal in mm, SOP Instance UID), in order along the normal
    slices: tuple[tuple[float, str], ...]
    normal: tuple[float, float, float]
    issuer_of_patient_id: str = ""

    @property
    def is_axial(self) -> bool:
        return abs(abs(self.normal[2]) - 1.0) < 1e-4

    def sop_uids_for(self, grid: Grid) -> list[str]:
        """The CT image of each z plane of ``grid`` (a plan's phantom on this CT)."""
        if not self.is_axial:
            raise DicomExportError(
                "the plan's CT is not axial: openiort references only axial CT images from its "
                "structure set"
            )
        positions = np.array([p for p, _ in self.slices]) * self.normal[2]  # z in mm
        out = []
        for z in grid.axis_mm("z"):
            k = int(np.argmin(np.abs(positions - z)))
            if abs(positions[k] - z) > SLICE_MATCH_TOL_MM:
                raise DicomExportError(
                    f"the plan's grid plane at z = {z:.2f} mm is on no image of the CT series: "
                    "the plan was not made on this CT"
                )
            out.append(self.slices[k][1])
        return out
