"""Per-structure dose as a voxel-centre reader of the exported RT Dose gets it.

plan.json's metrics come from DVHs with sub-voxel sampling in steep gradients
(:mod:`openiort.evaluation.dvh`). A third-party reader of the RT Dose (dicompyler-core, a
planning system, a script) takes one dose value per dose voxel, at its centre, and counts the
voxel as inside a structure when its centre is. These figures are that reading of the very grid
the RT Dose is written from, so a hospital can check its system against them.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from openiort.anatomy.phantom import Phantom
from openiort.dosegrid import DoseGrid

DVH_METHOD = (
    "metrics: cumulative DVH of each structure on the dose grid; voxels whose dose changes by "
    "more than the gradient threshold across one voxel are sampled at sub-voxel points "
    "(trilinear interpolation of log-dose), the others at their centre. voxel_centre: mean and "
    "maximum of the dose at the centres of the dose voxels whose centre lies in the structure, "
    "as a reader of the exported RT Dose computes them"
)


def mask_on_dose_grid(phantom: Phantom, dose: DoseGrid, name: str) -> NDArray[np.bool_]:
    """The structure at the dose voxels' centres (the nearest structure voxel)."""
    mask = phantom.structures[name]
    if dose.grid == phantom.grid:
        return mask
    z, y, x = dose.grid.axes_mm()
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    index = phantom.grid.position_to_index(np.stack([xx, yy, zz], axis=-1))
    rounded = np.rint(index).astype(np.int64)
    inside = np.all((rounded >= 0) & (rounded < np.asarray(phantom.grid.shape)), axis=-1)
    out = np.zeros(dose.grid.shape, dtype=bool)
    k = rounded[inside]
    out[inside] = mask[k[:, 0], k[:, 1], k[:, 2]]
    return out


def voxel_centre_figures(
    phantom: Phantom, dose: DoseGrid, names: list[str]
) -> dict[str, dict[str, float | int]]:
    """``{name: {mean_gy, max_gy, voxels}}`` for each structure with voxel centres inside."""
    out: dict[str, dict[str, float | int]] = {}
    for name in names:
        if name not in phantom.structures:
            continue
        values = dose.dose_gy[mask_on_dose_grid(phantom, dose, name)]
        if values.size == 0:
            continue
        out[name] = {
            "mean_gy": round(float(values.mean()), 4),
            "max_gy": round(float(values.max()), 4),
            "voxels": int(values.size),
        }
    return out
