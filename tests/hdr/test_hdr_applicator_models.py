"""The applicator models of hdr_protocol.yaml: multi-lumen balloon geometry, positions from the
channel tip, and a multi-lumen plan on a water phantom."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from openiort.anatomy.phantom import Phantom
from openiort.devices.hdr import ApplicatorError, BalloonApplicator
from openiort.devices.hdr_source import hdr_protocol
from openiort.planning.hdr import plan_hdr, positions_from_tip_mm

SK_U = 40000.0


def _balloon(offsets: tuple[float, ...]) -> BalloonApplicator:
    return BalloonApplicator(
        centre_mm=(0.0, 0.0, 0.0),
        radius_mm=20.0,
        shaft_direction=(0.0, -1.0, 0.0),
        step_mm=5.0,
        wall_clearance_mm=5.0,
        lumen_offsets_mm=offsets,
    )


@pytest.mark.parametrize("model", ["multi_lumen_balloon_3", "multi_lumen_balloon_4"])
def test_multi_lumen_balloons_have_their_published_lumens(model: str) -> None:
    offsets = tuple(hdr_protocol()["applicators"][model]["lumens_offset_mm"])
    geometry = _balloon(offsets).dwell_geometry()
    channels = np.unique(geometry.catheter_index)
    assert channels.tolist() == list(range(len(offsets) + 1))
    axis = np.array([0.0, -1.0, 0.0])
    for lumen, offset in enumerate((0.0, *offsets)):
        pos = geometry.positions_mm[geometry.catheter_index == lumen]
        off_axis = pos - np.outer(pos @ axis, axis)
        np.testing.assert_allclose(np.linalg.norm(off_axis, axis=1), offset, atol=1e-9)
        # every dwell at least the wall clearance inside the 20 mm balloon
        assert np.linalg.norm(pos, axis=1).max() <= 15.0 + 1e-9
    # the off-axis lumens lie evenly round the central one
    firsts = [
        geometry.positions_mm[geometry.catheter_index == k][0] for k in range(1, len(offsets) + 1)
    ]
    angles = sorted(np.degrees(np.arctan2(p[2], p[0])) % 360 for p in firsts)
    np.testing.assert_allclose(np.diff(angles), 360.0 / len(offsets), atol=1e-6)


def test_positions_count_from_each_channels_tip() -> None:
    geometry = _balloon((5.0, 5.0, 5.0, 5.0)).dwell_geometry()
    from_tip = positions_from_tip_mm(geometry)
    offset = hdr_protocol()["applicators"]["tip_offset_mm"]
    for lumen in range(5):
        steps = from_tip[geometry.catheter_index == lumen]
        assert steps[0] == offset
        np.testing.assert_allclose(np.diff(steps), 5.0)


def test_a_lumen_outside_the_balloon_is_refused() -> None:
    with pytest.raises(ApplicatorError, match="lumen offset"):
        _balloon((18.0,))


def test_a_multi_lumen_plan_uses_every_channel(water_cube: Callable[..., Phantom]) -> None:
    phantom = water_cube(skin_at_mm=30.0)
    plan = plan_hdr(phantom, 3.4, 10.0, "balloon", sk_u=SK_U, lumen_offsets_mm=(5.0,) * 4)
    channels = {d.channel for d in plan.delivery.dwells}
    assert channels == {1, 2, 3, 4, 5}
    table = plan.dwell_table()
    assert [r["channel"] for r in table["rows"]] == [d.channel for d in plan.delivery.dwells]
    assert table["total_time_s"] == pytest.approx(sum(r["time_s"] for r in table["rows"]))
    assert plan.balloon_quality is not None
    assert plan.prescription_points_gy["mean"] == pytest.approx(3.4, rel=0.02)


def test_air_in_the_cavity_is_not_the_skin(water_cube: Callable[..., Phantom]) -> None:
    """An air-filled cavity round the balloon is inside the body: the balloon-to-skin distance
    is measured to the body's outer surface (skin 30 mm from the centre, balloon radius 15 mm,
    2 mm voxels: 15 mm within a voxel)."""
    from openiort.planning.hdr_quality import balloon_skin_distance_mm

    phantom = water_cube(skin_at_mm=30.0, cavity_material="air")
    balloon = BalloonApplicator(
        centre_mm=(0.0, 0.0, 0.0),
        radius_mm=15.0,
        shaft_direction=(0.0, -1.0, 0.0),
        step_mm=5.0,
        wall_clearance_mm=5.0,
    )
    distance = balloon_skin_distance_mm(phantom, balloon)
    assert distance == pytest.approx(15.0, abs=2.0)
