"""Balloon symmetry and conformance on a post-implant CT (issue 14): a synthetic CT, 1 mm voxels,
a 40 mm balloon in a block of tissue with air round it.

Tolerances: a spherical balloon's diameters deviate from their mean by under 0.1 mm (by
symmetry, exactly 0 on a grid centred on it) and its pockets are 0 %; a 40/40/34 mm ellipsoid
has principal diameters within 0.5 mm of 40, 40 and 34 mm (voxelised contour; measured 40.01,
40.01, 33.97 mm) and is reported asymmetric (4 mm > 2 mm); an air pocket of 6 x 6 x 4 mm = 0.144 cc
against the balloon is reported within one voxel volume (0.001 cc).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from openiort.anatomy.phantom import Phantom
from openiort.grid import Grid
from openiort.planning.hdr_quality import (
    ct_balloon_indices,
    principal_diameters_mm,
    ptv_eval_mask,
)

N = 91  # voxels a side, 1 mm, the balloon's centre on the middle voxel
C = N // 2
RADIUS_MM = 20.0


def _ct(balloon: NDArray[np.bool_], pocket: NDArray[np.bool_] | None = None) -> Phantom:
    grid = Grid(origin_mm=(0.0, 0.0, 0.0), spacing_mm=(1.0, 1.0, 1.0), shape=(N, N, N))
    ids = np.zeros(grid.shape, dtype=np.uint8)  # air
    ids[3:-3, 3:-3, 3:-3] = 1  # tissue block: 42 mm round the centre
    density = np.where(ids == 1, 1.0, 0.0012).astype(np.float32)
    sphere = grid.distance_from_mm((C, C, C)) <= RADIUS_MM
    ids[sphere], density[sphere] = 2, 1.0  # the fitted balloon, saline
    if pocket is not None:
        ids[pocket], density[pocket] = 0, 0.0012
    return Phantom(
        grid=grid,
        material_ids=ids,
        density_g_cm3=density,
        materials=("air", "soft_tissue", "water"),
        structures={"applicator": sphere},
        applicator_centre_mm=(float(C), float(C), float(C)),
        applicator_radius_mm=RADIUS_MM,
    )


def _ellipsoid(semi_axes_mm: tuple[float, float, float]) -> NDArray[np.bool_]:
    z, y, x = np.indices((N, N, N)) - C
    a, b, c = semi_axes_mm  # along x, y, z
    return np.asarray((x / a) ** 2 + (y / b) ** 2 + (z / c) ** 2 <= 1.0)


def _quality() -> dict[str, Any]:
    return {
        "protocol": "B-39",
        "indices": [],
        "notes": ["Conformance and symmetry are reported only on a CT", "TG-43 note"],
    }


def test_a_spherical_balloon_is_symmetric_and_conformal() -> None:
    ct = _ct(_ellipsoid((RADIUS_MM, RADIUS_MM, RADIUS_MM)))
    quality = _quality()
    warnings = ct_balloon_indices(ct, ct.structures["applicator"], quality)
    assert warnings == []
    assert quality["symmetry"]["max_deviation_mm"] < 0.1
    assert quality["symmetry"]["diameters_mm"] == pytest.approx([40.0] * 3, abs=0.5)
    assert quality["conformance"]["pocket_percent_of_ptv_eval"] == 0.0
    assert [i["within"] for i in quality["indices"]] == [True, True]
    assert quality["notes"][0].startswith("Symmetry:") and quality["notes"][1] == "TG-43 note"


def test_an_ellipsoidal_balloon_is_reported_asymmetric() -> None:
    contour = _ellipsoid((20.0, 20.0, 17.0))  # 40 / 40 / 34 mm
    assert principal_diameters_mm(contour, (1.0, 1.0, 1.0)) == pytest.approx(
        [40.0, 40.0, 34.0], abs=0.5
    )
    quality = _quality()
    warnings = ct_balloon_indices(_ct(contour), contour, quality)
    symmetry = quality["symmetry"]
    assert symmetry["max_deviation_mm"] == pytest.approx(4.0, abs=0.5)
    assert symmetry["within"] is False and quality["indices"][0]["within"] is False
    assert len(warnings) == 1 and "balloon symmetry" in warnings[0]


def test_an_air_pocket_against_the_balloon_is_measured() -> None:
    pocket = np.zeros((N, N, N), dtype=bool)
    pocket[C + 21 : C + 25, C - 3 : C + 3, C - 3 : C + 3] = True  # z, y, x: 4 x 6 x 6 mm
    ct = _ct(_ellipsoid((RADIUS_MM,) * 3), pocket)
    quality = _quality()
    ct_balloon_indices(ct, ct.structures["applicator"], quality)
    conformance = quality["conformance"]
    assert conformance["pocket_cc"] == pytest.approx(0.144, abs=0.001)
    ptv_cc = float(ptv_eval_mask(ct, (C, C, C), RADIUS_MM).sum()) * 0.001
    assert ptv_cc > 60.0  # the pocket does not cut PTV_EVAL back as if it were skin
    assert conformance["pocket_percent_of_ptv_eval"] == pytest.approx(
        100 * 0.144 / ptv_cc, abs=100 * 0.001 / ptv_cc
    )
    assert conformance["within"] is True  # 0.2 % <= 10 %


def test_pockets_beyond_the_limit_are_warned() -> None:
    ct = _ct(_ellipsoid((RADIUS_MM,) * 3))
    d = ct.grid.distance_from_mm((C, C, C))
    z = np.indices((N, N, N))[0]
    pocket = (d > RADIUS_MM) & (d <= RADIUS_MM + 5.0) & (z > C)  # a 5 mm air cap, half round
    ct = _ct(ct.structures["applicator"], pocket)
    quality = _quality()
    warnings = ct_balloon_indices(ct, ct.structures["applicator"], quality)
    assert quality["conformance"]["pocket_percent_of_ptv_eval"] > 10.0
    assert quality["conformance"]["within"] is False
    assert len(warnings) == 1 and "conformance" in warnings[0]
