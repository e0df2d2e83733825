"""Applicator geometry: balloon and surface dwell positions, prescription points, masks."""

from __future__ import annotations

import numpy as np
import pytest

from openiort.devices import hdr
from openiort.grid import Grid


def test_balloon_dwells_and_prescription_sphere() -> None:
    b = hdr.BalloonApplicator((1.0, 2.0, 3.0), 20.0, (1.0, 0.0, 0.0), 5.0, 5.0)
    geo = b.dwell_geometry()
    # Reach 20 - 5 = 15 mm: 7 positions, 5 mm apart, tip (deep, -x) first.
    np.testing.assert_allclose(geo.positions_mm[:, 0], [-14, -9, -4, 1, 6, 11, 16])
    np.testing.assert_allclose(geo.directions, [[-1.0, 0.0, 0.0]] * 7)
    assert geo.neighbour_pairs() == [(i, i + 1) for i in range(6)]
    pts = b.prescription_points(10.0, 100)
    np.testing.assert_allclose(np.linalg.norm(pts - [1.0, 2.0, 3.0], axis=1), 30.0)
    # Golden-angle points are spread evenly: their mean is near the centre.
    assert np.linalg.norm(pts.mean(axis=0) - [1.0, 2.0, 3.0]) < 0.5


def test_surface_catheters_spacing_and_source_depth() -> None:
    s = hdr.SurfaceApplicator.for_cavity((0.0, 0.0, 0.0), 20.0, (0.0, 0.0, 1.0), (30.0, 20.0))
    geo = s.dwell_geometry()
    # 30 mm wide -> 4 catheters 10 mm apart; 20 mm long -> 5 positions 5 mm apart each.
    assert s.n_catheters == 4 and geo.n == 20
    uvw = s.plane_coordinates(geo.positions_mm)
    np.testing.assert_allclose(uvw[:, 2], 5.0)  # source path 5 mm above the tissue surface
    np.testing.assert_allclose(sorted(set(np.round(uvw[:, 0], 9))), [-15, -5, 5, 15])
    np.testing.assert_allclose(sorted(set(np.round(uvw[:, 1], 9))), [-10, -5, 0, 5, 10])
    # Tissue surface is the cavity floor, opposite the shaft direction.
    np.testing.assert_allclose(s.tissue_centre_mm, (0.0, 0.0, -20.0))
    pairs = geo.neighbour_pairs()
    assert len(pairs) == 4 * 4  # no pair across catheters
    pts = s.prescription_points(7.0, 2.5)
    np.testing.assert_allclose(s.plane_coordinates(pts)[:, 2], -7.0)


def test_surface_masks_on_a_grid() -> None:
    grid = Grid.centred((0.0, 0.0, 0.0), (80.0, 80.0, 80.0), 2.0)
    s = hdr.SurfaceApplicator.for_cavity((1.0, 1.0, 1.0), 15.0, (0.0, 0.0, 1.0))
    # Tissue plane z = -14 mm; voxel centres at odd mm. Slab 5 mm deep: centres with z in
    # [-19, -14], i.e. -19, -17, -15; footprint |x-1|, |y-1| <= 15 mm: x, y in -13..15, 15 x 15.
    slab = s.slab_mask(grid, 5.0)
    assert slab.sum() == 15 * 15 * 3
    zs = grid.axis_mm("z")[np.flatnonzero(slab.any(axis=(1, 2)))]
    np.testing.assert_allclose(zs, [-19.0, -17.0, -15.0])
    flap = s.flap_mask(grid)
    assert not (flap & slab).any()
    assert flap.any()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"radius_mm": -1.0},
        {"step_mm": 0.0},
        {"wall_clearance_mm": 25.0},
        {"shaft_direction": (0.0, 0.0, 0.0)},
    ],
)
def test_bad_balloons(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {
        "centre_mm": (0.0, 0.0, 0.0),
        "radius_mm": 20.0,
        "shaft_direction": (0.0, 1.0, 0.0),
        "step_mm": 5.0,
        "wall_clearance_mm": 5.0,
    }
    args.update(kwargs)
    with pytest.raises(hdr.ApplicatorError):
        hdr.BalloonApplicator(**args)


def test_bad_surface_applicators() -> None:
    with pytest.raises(hdr.ApplicatorError, match="cavity radius"):
        hdr.SurfaceApplicator.for_cavity((0.0, 0.0, 0.0), 0.0, (0.0, 0.0, 1.0))
    with pytest.raises(hdr.ApplicatorError, match="in the applicator plane"):
        hdr.SurfaceApplicator((0, 0, 0), (0, 0, 1), (0, 0, 1), 2, 10.0, 20.0, 5.0, 5.0)
    with pytest.raises(hdr.ApplicatorError, match="at least one catheter"):
        hdr.SurfaceApplicator((0, 0, 0), (0, 0, 1), (1, 0, 0), 0, 10.0, 20.0, 5.0, 5.0)
