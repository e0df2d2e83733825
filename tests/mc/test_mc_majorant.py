"""Regional majorants: which media each cell holds, and when one majorant serves all."""

from __future__ import annotations

import numpy as np
import pytest

from openiort.dose.mc.majorant import SINGLE_CLASS_RATIO, majorant_cells
from openiort.dose.mc.physics import build_tables, resolve_material


def _tables(*names: str) -> np.ndarray:
    return build_tables([resolve_material(n) for n in names]).arrays.mu_rho


def _members(cells, k: int) -> set[int]:
    return set(cells.class_members[cells.class_start[k] : cells.class_start[k + 1]].tolist())


def test_cells_hold_the_media_of_their_voxels_including_partial_cells() -> None:
    mat = np.zeros((10, 12, 9), dtype=np.uint8)  # (z, y, x): 2 x 2 x 2 cells of 8^3, partial
    mat[9, 11, 8] = 1  # bone in the far corner: in the last, partial cell only
    mu_rho = _tables("water", "cortical_bone")
    cells = majorant_cells(mat, mu_rho, np.array([1.0, 1.92]), np.array([1.0, 1.0, 2.0]))
    assert cells.shape_xyz.tolist() == [2, 2, 2]
    assert cells.cell_mm.tolist() == [8.0, 8.0, 16.0]
    classes = cells.cell_class.reshape(2, 2, 2)
    assert _members(cells, classes[1, 1, 1]) == {0, 1}
    others = {int(k) for k in classes.ravel()} - {int(classes[1, 1, 1])}
    assert [_members(cells, k) for k in others] == [{0}]


def test_media_of_similar_attenuation_share_one_majorant() -> None:
    mat = np.zeros((16, 16, 16), dtype=np.uint8)
    mat[:8] = 1
    mu_rho = _tables("water", "muscle")
    rho_hi = np.array([1.0, 1.05])
    attenuation = mu_rho * rho_hi[:, None]
    assert np.all(attenuation.max(axis=0) <= SINGLE_CLASS_RATIO * attenuation.min(axis=0))
    cells = majorant_cells(mat, mu_rho, rho_hi, np.ones(3))
    assert cells.class_start.tolist() == [0, 2]  # one class holding both media
    assert set(cells.cell_class.tolist()) == {0}


def test_too_many_materials_are_refused() -> None:
    with pytest.raises(ValueError, match="materials"):
        majorant_cells(np.zeros((2, 2, 2), np.uint8), np.ones((256, 3)), np.ones(256), np.ones(3))
