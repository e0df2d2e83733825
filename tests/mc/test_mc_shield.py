"""A flexible tungsten-loaded shield beside a 50 kV applicator (issue 15, item 5).

No published measured transmission of such a shield in a 50 kV beam was found, so the Monte
Carlo transmission is checked against the narrow-beam attenuation of the same composition in
the model's primary spectrum at the shield (NIST-based cross sections,
openiort.dose.mc.physics): the dose behind also holds scatter, which the shield attenuates
more than the primary and which rebuilds behind it, so the two agree within 30 % (found
0.81-0.91 for 2-0.5 mm with the jointly fitted source model, 1e6 histories), not exactly.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import yaml

from openiort.case import CaseError, parse_case
from openiort.dose.mc.commissioning import primary_spectrum_at_depth
from openiort.dose.mc.physics import mass_attenuation_cm2_g, mass_energy_absorption_cm2_g
from openiort.dose.mc.shield import ShieldError, shield_effect, shield_material

HISTORIES = 60_000  # a few seconds; transmission's statistical uncertainty about 6 % at 0.5 mm


def _narrow_beam(front_depth_mm: float, thickness_mm: float, pei_mm: float) -> float:
    m = shield_material("tungsten_silicone_80")
    e, fluence = primary_spectrum_at_depth(front_depth_mm, pei_mm=pei_mm)
    weight = fluence * e * mass_energy_absorption_cm2_g("water", e)
    mu_per_mm = mass_attenuation_cm2_g(m, e) * m["density_g_cm3"] / 10.0
    return float((weight * np.exp(-mu_per_mm * thickness_mm)).sum() / weight.sum())


def test_material_from_its_composition() -> None:
    m = shield_material("tungsten_silicone_80")
    assert m["composition"]["W"] == pytest.approx(0.80)
    assert sum(m["composition"].values()) == pytest.approx(1.0, abs=1e-12)
    # rule of mixtures 1 / (0.80 / 19.25 + 0.20 / 0.97), by hand
    assert m["density_g_cm3"] == pytest.approx(1 / (0.80 / 19.25 + 0.20 / 0.97), rel=1e-3)


def test_transmission_follows_the_narrow_beam_attenuation() -> None:
    effect = shield_effect(3.0, 10.0, 0.5, histories=HISTORIES)
    expected = _narrow_beam(10.0, 0.5, pei_mm=15.0)  # 3.75 %
    assert effect.transmission == pytest.approx(expected, rel=0.30)
    assert effect.transmission_rel_unc < 0.10
    # photons only: in front the water's own backscatter beyond is lost (a decrease)
    assert 0.75 < effect.front_ratio < 1.0


def test_bad_shields_are_refused() -> None:
    with pytest.raises(ShieldError, match="thickness"):
        shield_effect(3.0, 10.0, 20.0, histories=1000)
    with pytest.raises(ShieldError, match="front face"):
        shield_effect(3.0, 0.2, 1.0, histories=1000)


def test_a_plan_reports_the_shield() -> None:
    from openiort.planning.xray import plan_xray

    demo = Path(str(resources.files("openiort").joinpath("data/demo_case.yaml")))
    data = yaml.safe_load(demo.read_text())
    data["intent"]["xray_shield"] = {"location": "chest_wall", "thickness_mm": 0.5}
    data["anatomy"]["chest_wall_distance_mm"] = 8.0
    plan = plan_xray(parse_case(data), spacing_mm=4.0)
    sh = plan.details.shield  # type: ignore[union-attr]
    assert sh is not None and sh.front_depth_mm == pytest.approx(7.5)
    assert sh.dose_behind_table_gy == pytest.approx(
        sh.dose_behind_without_gy * sh.transmission, rel=1e-3
    )
    # the MC's own depth-dose agrees with the table's (same source model) within a few %
    assert sh.dose_behind_mc_gy == pytest.approx(sh.dose_behind_table_gy, rel=0.1)
    assert any("shield" in w and "organ limits include it" in w for w in plan.warnings)
    data["anatomy"]["chest_wall_distance_mm"] = None
    with pytest.raises(CaseError, match="chest_wall_distance_mm"):
        plan_xray(parse_case(data), spacing_mm=4.0)
