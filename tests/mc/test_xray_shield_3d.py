"""Issue 15 item 5: the shield in the table engine's 3D dose, so that DVHs and limits see it."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import yaml

from openiort.case import parse_case
from openiort.planning.xray import plan_xray


def _demo(shield: dict[str, object] | None) -> dict[str, object]:
    demo = Path(str(resources.files("openiort").joinpath("data/demo_case.yaml")))
    data = yaml.safe_load(demo.read_text())
    data["intent"]["xray_shield"] = shield
    data["anatomy"]["chest_wall_distance_mm"] = 8.0
    return data


def test_chest_wall_dose_behind_a_1mm_shield_falls_by_the_transmission() -> None:
    bare = plan_xray(parse_case(_demo(None)), spacing_mm=2.0)
    shielded = plan_xray(
        parse_case(_demo({"location": "chest_wall", "thickness_mm": 1.0})), spacing_mm=2.0
    )
    sh = shielded.details.shield  # type: ignore[union-attr]
    assert sh is not None
    wall = shielded.phantom.structures["chest_wall"]
    ratio = shielded.dose.dose_gy[wall] / bare.dose.dose_gy[wall]
    # every chest-wall voxel lies behind the sheet: exactly the transmission (float rounding)
    assert np.allclose(ratio, sh.transmission, rtol=1e-9)
    # the metrics see it (sub-voxel sampling interpolates across the sheet's face: 15 %)
    assert shielded.metrics["chest_wall"].max_gy == pytest.approx(
        bare.metrics["chest_wall"].max_gy * sh.transmission, rel=0.15
    )
    # the shield's voxels are a structure, in front of the chest wall, and tissue in front of
    # the shield keeps its dose
    shield = shielded.phantom.structures["shield"]
    assert shield.any() and not (shield & wall).any()
    target = shielded.phantom.structures["target"]
    front = target & ~shield & (shielded.dose.dose_gy == bare.dose.dose_gy)
    assert front.sum() > 0.9 * target.sum()
