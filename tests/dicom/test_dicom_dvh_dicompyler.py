"""An independent DVH: dicompyler-core's DVH from our RTSTRUCT + RTDOSE against ours.

Both calculators read the same dose on the same voxels; they differ in (a) binning:
dicompyler-core bins doses at 1 cGy, so the test dose gives every compared structure several
Gy (a 1/r fall-off from 20 Gy at the applicator surface; 1 cGy is then < 0.5 % of its doses),
and (b) the structure boundary: dicompyler-core counts the voxel centres inside its own
rasterisation of the contours, ours sub-samples steep voxels, so a boundary voxel's dose can
differ by the change across half a 2 mm voxel (1 mm / r for 1/r: ~5 % at 20 mm). Tolerances,
for structures of 1 cc and more that do not touch the applicator: Dmean within 2 % (boundary
differences average out over the structure), D95 and D2 within 3 % (read at the DVH's tails,
where the few % of the volume concerned lie largely in boundary voxels). Measured: Dmean
within 0.3 %, D95 within 0.3 %, D2 within 1.1 % (skin).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pydicom.dicomio
import pytest
from scipy import ndimage

from openiort.anatomy.phantom import Phantom
from openiort.dosegrid import DoseGrid
from openiort.evaluation.dvh import compute_dvh
from openiort.io.dicom_export import export_plan

POSITIONS = ("HFS", "FFS", "HFP", "FFP")


def dicompyler() -> Any:
    """dicompyler-core 0.5.6 (the latest release) imports ``read_file``, which pydicom 3 no
    longer has; it is the same function as ``dcmread``. Restore the name, then import."""
    if not hasattr(pydicom.dicomio, "read_file"):
        pydicom.dicomio.read_file = pydicom.dcmread  # type: ignore[attr-defined]
    import dicompylercore.dvhcalc as dvhcalc  # a dev dependency: missing fails, never skips

    return dvhcalc


def soft_dose(phantom: Phantom, like: DoseGrid) -> DoseGrid:
    assert phantom.applicator_centre_mm is not None and phantom.applicator_radius_mm is not None
    radius = phantom.applicator_radius_mm
    r = phantom.grid.distance_from_mm(phantom.applicator_centre_mm)
    dose = 20.0 * radius / np.maximum(r, radius)
    return DoseGrid(
        phantom.grid, dose, like.medium, "20 Gy at the applicator surface, 1/r", like.provenance
    )


def compared_structures(phantom: Phantom) -> list[str]:
    near_applicator = ndimage.binary_dilation(
        phantom.structures["applicator"], structure=np.ones((3, 3, 3), dtype=bool)
    )
    return [
        name
        for name, mask in phantom.structures.items()
        if name != "applicator"
        and phantom.volume_cc(name) >= 1.0
        and not (mask & near_applicator).any()
    ]


@pytest.mark.filterwarnings("ignore:The .pydicom.pixel_data_handlers. module:DeprecationWarning")
@pytest.mark.parametrize("position", POSITIONS)
def test_dvh_agrees_with_dicompyler_core(
    position: str,
    tmp_path: Path,
    phantom: Phantom,
    dose: DoseGrid,
    when: datetime,
    make_plan: Callable[[str], dict[str, Any]],
) -> None:
    dvhcalc = dicompyler()
    test_dose = soft_dose(phantom, dose)
    export_plan(
        phantom, test_dose, make_plan("xray"), tmp_path, patient_position=position, when=when
    )
    rs = pydicom.dcmread(tmp_path / "RS.dcm")
    numbers = {r.ROIName: int(r.ROINumber) for r in rs.StructureSetROISequence}
    names = compared_structures(phantom)
    assert {"skin", "chest_wall", "ribs", "lung", "heart"} <= set(names)
    for name in names:
        ours = compute_dvh(test_dose.dose_gy, phantom.structures[name], phantom.grid)
        theirs = dvhcalc.get_dvh(str(tmp_path / "RS.dcm"), str(tmp_path / "RD.dcm"), numbers[name])
        assert theirs.volume == pytest.approx(phantom.volume_cc(name), rel=0.01), name
        assert ours.mean_gy == pytest.approx(theirs.mean, rel=0.02), name  # see module doc
        for metric in (95, 2):  # tails of the DVH: 3 % (module docstring)
            assert ours.dose_at_volume_pct(metric) == pytest.approx(
                theirs.statistic(f"D{metric}").value, rel=0.03
            ), f"{name} D{metric}"
