"""Breast phantom: structure volumes against analytic values (tolerance 2 %, see below)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from openiort.anatomy.breast_phantom import anatomy_parameters, build_breast_phantom
from openiort.case import CaseError, parse_case

# 2 % of a volume is a 0.67 % error of its linear size: 0.1 mm for the 15 mm applicator sphere,
# 0.5 mm for the 80 mm breast, i.e. a tenth to a half of the 1 mm voxel. A voxelisation
# convention error that moves a surface by half a voxel (10 % of the 15 mm sphere's volume,
# 2.8 % of the 80 mm hemi-ellipsoid's) fails; the random error of counting voxel centres inside
# smooth surfaces on a 1 mm grid does not (measured here: < 0.07 % for every structure).
VOLUME_TOLERANCE = 0.02


def _sphere_cc(radius_mm: float) -> float:
    return 4 / 3 * np.pi * radius_mm**3 / 1000


@pytest.fixture(scope="module")
def deep_case_phantom() -> Any:
    """A cavity far from skin and chest wall, so the 10 mm target rind is never cropped."""
    data = {
        "patient": {"id": "GEOM-1"},
        "preoperative": {"laterality": "left", "clock_position": 3},
        "anatomy": {
            "cavity_diameter_mm": 30,
            "skin_distance_mm": 20,
            "chest_wall_distance_mm": 20,
            "breast_base_diameter_mm": 160,
            "breast_projection_mm": 80,
        },
        "intent": {"technique": "xray"},
    }
    case = parse_case(data)
    return case, build_breast_phantom(case, applicator_radius_mm=15.0)


def test_applicator_cavity_and_target_volumes(deep_case_phantom: Any) -> None:
    _, ph = deep_case_phantom
    assert ph.volume_cc("applicator") == pytest.approx(_sphere_cc(15), rel=VOLUME_TOLERANCE)
    assert ph.volume_cc("cavity") == pytest.approx(_sphere_cc(15), rel=VOLUME_TOLERANCE)
    shell = _sphere_cc(25) - _sphere_cc(15)
    assert ph.volume_cc("target") == pytest.approx(shell, rel=VOLUME_TOLERANCE)


def test_breast_volume_is_the_hemi_ellipsoid(deep_case_phantom: Any) -> None:
    _, ph = deep_case_phantom
    analytic = 2 / 3 * np.pi * 80**2 * 80 / 1000
    with_applicator = ph.volume_cc("breast") + ph.volume_cc("applicator")
    assert with_applicator == pytest.approx(analytic, rel=VOLUME_TOLERANCE)


def test_heart_is_the_whole_ellipsoid_for_left_cases(deep_case_phantom: Any) -> None:
    _, ph = deep_case_phantom
    sx, sy, sz = anatomy_parameters()["heart"]["semi_axes_mm"]
    assert ph.volume_cc("heart") == pytest.approx(
        4 / 3 * np.pi * sx * sy * sz / 1000, rel=VOLUME_TOLERANCE
    )


def test_measured_distances_are_honoured(deep_case_phantom: Any) -> None:
    _, ph = deep_case_phantom
    cx, cy, cz = ph.applicator_centre_mm
    # chest-wall distance: cavity edge to the fascia plane y = 0
    assert -cy - 15 == pytest.approx(20, abs=1e-6)
    # skin distance: cavity edge to the nearest outer skin surface; voxel centres give +/-1 mm
    skin_pts = ph.grid.index_to_position_mm(
        np.argwhere(ph.structures["skin"] & ph.structures["breast"]).astype(float)
    )
    nearest = np.linalg.norm(skin_pts - np.array([cx, cy, cz]), axis=1).min()
    skin_thickness = anatomy_parameters()["skin_thickness_mm"]
    assert nearest - 15 == pytest.approx(20 - skin_thickness, abs=1.5)
    # clock 3 = patient's left = +x from the nipple axis for either breast
    assert cx > anatomy_parameters()["nipple_to_midline_mm"]


def test_right_breast_has_no_heart_and_mirrors() -> None:
    case = parse_case(
        {
            "patient": {"id": "GEOM-2"},
            "preoperative": {"laterality": "right", "quadrant": "upper_outer"},
            "anatomy": {
                "cavity_diameter_mm": 25,
                "skin_distance_mm": 10,
                "chest_wall_distance_mm": 10,
            },
            "intent": {"technique": "xray"},
        }
    )
    ph = build_breast_phantom(case, applicator_radius_mm=12.5)
    assert "heart" not in ph.structures
    cx, _, cz = ph.applicator_centre_mm
    assert cx < -anatomy_parameters()["nipple_to_midline_mm"]  # outer = lateral = -x on the right
    assert cz > 0  # upper


def test_target_is_cropped_under_the_skin_and_at_the_chest_wall(demo_case: Any) -> None:
    ph = build_breast_phantom(demo_case, applicator_radius_mm=15.0)
    target = ph.structures["target"]
    assert not (target & ph.structures["skin"]).any()
    assert not (target & ph.structures["chest_wall"]).any()
    assert ph.volume_cc("target") < _sphere_cc(25) - _sphere_cc(15)


def test_cavity_larger_than_the_breast_is_a_clear_error() -> None:
    case = parse_case(
        {
            "patient": {"id": "GEOM-3"},
            "preoperative": {"laterality": "left"},
            "anatomy": {
                "cavity_diameter_mm": 60,
                "skin_distance_mm": 30,
                "chest_wall_distance_mm": 20,
                "breast_base_diameter_mm": 100,
                "breast_projection_mm": 60,
            },
            "intent": {"technique": "xray"},
        }
    )
    with pytest.raises(CaseError, match="larger than the breast"):
        build_breast_phantom(case, applicator_radius_mm=25.0)


@pytest.mark.parametrize("spacing_mm", [2.0, 3.0, 4.0])
def test_coarse_grids_keep_a_skin_layer(demo_case: Any, spacing_mm: float) -> None:
    ph = build_breast_phantom(demo_case, applicator_radius_mm=15.0, spacing_mm=spacing_mm)
    assert ph.structures["skin"].any() and ph.structures["target"].any()
