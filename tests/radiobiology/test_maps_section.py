"""EQD2 maps of dose grids, EQD2 versus depth, summation, and the report section."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from importlib import resources
from typing import Any

import jinja2
import numpy as np
import pytest

from openiort.dosegrid import DoseGrid, Provenance
from openiort.grid import Grid
from openiort.radiobiology import (
    LqModel,
    ModelChoice,
    RadiobiologyError,
    Rbe,
    Timing,
    build_radiobiology_section,
    eqd2,
    eqd2_map,
    eqd2_sum,
    eqd2_versus_depth,
    evaluate_schedule,
)
from openiort.radiobiology.maps import rbe_at_depth
from openiort.radiobiology.protraction import protraction_factor

PROV = Provenance("test", "0", "none", "0" * 64, "0" * 64, "none")

# An x-ray-like depth profile of dose to water per session (Gy); shape only, not device data.
DEPTH_MM = [0.0, 5.0, 10.0, 20.0]
DOSE_WATER_GY = [24.8, 11.2, 6.0, 2.4]
# the library's default tumour (alpha/beta 2.88 Gy, repair half-time 0.3 h), by hand
TUMOUR = LqModel(2.88, repair_half_time_h=0.3)


def _grid(dose: np.ndarray, normalisation: str = "dose to water (V4.0)", **kw: Any) -> DoseGrid:
    grid = Grid((0.0, 0.0, 0.0), (2.0, 2.0, 2.0), dose.shape)
    return DoseGrid(grid, dose, "water_in_water", normalisation, PROV, **kw)


def test_eqd2_map_matches_the_pointwise_formula() -> None:
    rng = np.random.default_rng(1)
    dose = rng.uniform(0, 25, size=(4, 5, 6))
    out = eqd2_map(_grid(dose), "tumour", Timing(1, 20.0))
    g = protraction_factor(20.0, 0.3)
    expected = dose * (1 + g * dose / 2.88) / (1 + 2 / 2.88)  # LQ with G, alpha/beta 2.88
    np.testing.assert_allclose(out.dose_gy, expected, rtol=1e-12)
    assert out.grid == _grid(dose).grid and out.per_session is False
    assert out.normalisation.startswith("EQD2") and "2.88" in out.normalisation
    assert any("repair half-time = 0.3 h" in n for n in out.notes)
    assert any("RBE = 1" in n for n in out.notes)


def test_eqd2_map_of_fractionated_per_session_dose() -> None:
    dose = np.full((2, 2, 2), 2.0)
    out = eqd2_map(_grid(dose), "late", Timing(25))  # 25 sessions of 2 Gy: EQD2 = 50 Gy
    np.testing.assert_allclose(out.dose_gy, 50.0, rtol=1e-12)
    total = eqd2_map(_grid(np.full((2, 2, 2), 50.0), per_session=False), "late", Timing(25))
    np.testing.assert_allclose(total.dose_gy, 50.0, rtol=1e-12)


def test_uncertainty_propagates_with_the_elasticity() -> None:
    # LQ single fraction: dlnEQD2/dlnD = (1 + 2 d/ab)/(1 + d/ab); 20 Gy, ab 2.88 -> 1.8736
    dose = np.full((1, 1, 2), 20.0)
    out = eqd2_map(_grid(dose, rel_uncertainty=np.full((1, 1, 2), 0.02)), "tumour")
    assert out.rel_uncertainty is not None
    elasticity = (1 + 2 * 20 / 2.88) / (1 + 20 / 2.88)
    np.testing.assert_allclose(out.rel_uncertainty, 0.02 * elasticity, rtol=1e-6)


def test_nominal_targit_dose_is_refused() -> None:
    with pytest.raises(RadiobiologyError, match="nominal TARGIT"):
        eqd2_map(_grid(np.ones((1, 1, 1)), normalisation="20 Gy TARGIT at surface"))


def test_eqd2_sum() -> None:
    dose = np.array([[[20.0, 5.0]]])
    iort = eqd2_map(_grid(dose), "tumour")
    wb = evaluate_schedule("START-B", "tumour").eqd2_gy
    total = eqd2_sum(iort, wb)
    np.testing.assert_allclose(total.dose_gy, iort.dose_gy + wb, rtol=1e-12)
    assert "assumed uniform" in total.notes[-1]
    both = eqd2_sum(iort, iort)
    np.testing.assert_allclose(both.dose_gy, 2 * iort.dose_gy)
    with pytest.raises(RadiobiologyError, match="different tissues"):
        eqd2_sum(iort, eqd2_map(_grid(dose), "late"))
    with pytest.raises(RadiobiologyError, match="not physical dose"):
        eqd2_sum(iort, _grid(dose))


def test_eqd2_versus_depth_and_rbe_table() -> None:
    prof = eqd2_versus_depth(DEPTH_MM, DOSE_WATER_GY, "tumour", Timing(1, 20.0))
    g = protraction_factor(20.0, 0.3)
    np.testing.assert_allclose(
        prof.eqd2_gy, eqd2(np.array(DOSE_WATER_GY), TUMOUR, Timing(1, 20.0)), rtol=1e-12
    )
    assert prof.protraction_factor == pytest.approx(g)
    rbe = rbe_at_depth(DEPTH_MM, [0.0, 20.0], [1.0, 1.4])
    np.testing.assert_allclose(rbe, [1.0, 1.1, 1.2, 1.4])
    with pytest.raises(RadiobiologyError, match="outside"):
        rbe_at_depth([25.0], [0.0, 20.0], [1.0, 1.4])
    with pytest.raises(RadiobiologyError, match="strictly increasing"):
        eqd2_versus_depth([5.0, 0.0], [1.0, 2.0])
    with pytest.raises(RadiobiologyError, match="equal length"):
        eqd2_versus_depth([0.0, 5.0], [1.0])


def _render(section: object) -> str:
    root = resources.files("openiort.report").joinpath("templates")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(root)), autoescape=True, undefined=jinja2.StrictUndefined
    )
    return env.get_template("sections/radiobiology.html").render(section=section)


def test_section_contents_and_json() -> None:
    s = build_radiobiology_section(DEPTH_MM, DOSE_WATER_GY, 20.0, "xray")
    d: Any = s.to_dict()
    json.dumps(d)  # plain JSON
    assert "figure_svg" not in d and "figure_svg" in s.to_dict(include_figures=True)
    assert [r["depth_mm"] for r in d["depth_table"]] == DEPTH_MM
    surf = d["depth_table"][0]
    assert surf["eqd2_tumour_gy"] == pytest.approx(eqd2(24.8, TUMOUR, Timing(1, 20.0)))
    wb = evaluate_schedule("START-B", "late").eqd2_gy
    assert surf["boost_sum_late_eqd2_gy"] == pytest.approx(surf["eqd2_late_gy"] + wb)
    labels = [r["schedule_id"] for r in d["ebrt_reference"]]
    assert labels == ["conventional-50-25", "START-B", "FAST-Forward", "EORTC-boost"]
    assert any("RBE of 50 kV" in w for w in s.warnings)
    assert any("UNVERIFIED_recall" in w for w in s.warnings)
    assert {r["parameter"] for r in s.sensitivity} >= {
        "alpha/beta 95% CI low",
        "repair half-time range high",
    }
    for svg in (s.figure_svg, s.summation_figure_svg):
        root = ET.fromstring(svg)  # well-formed, self-contained
        assert root.tag.endswith("svg") and "http" not in svg.replace(
            'xmlns="http://www.w3.org/2000/svg"', ""
        )


def test_section_dense_profile_table_and_models() -> None:
    depth = np.arange(0.0, 40.5, 0.5)
    dose = 24.0 * np.exp(-depth / 6.0)
    s = build_radiobiology_section(depth, dose, 2.0, "electron", model=ModelChoice("lq-l", 8.0))
    assert [r["depth_mm"] for r in s.depth_rows] == [0, 2, 5, 10, 15, 20, 30, 40]
    row = s.depth_rows[2]
    assert row["dose_water_gy"] == pytest.approx(24.0 * np.exp(-5 / 6.0), rel=1e-12)
    assert any("MeV electrons" in w for w in s.warnings)
    usc = build_radiobiology_section(
        DEPTH_MM, DOSE_WATER_GY, 2.0, "electron", model=ModelChoice("usc")
    )
    assert usc.tumour.alpha_beta_gy == pytest.approx(8.605, abs=1e-3)
    assert usc.late.alpha_beta_gy == 3.1
    assert any("NOT breast" in w for w in usc.warnings)
    with pytest.raises(RadiobiologyError, match="unknown technique"):
        build_radiobiology_section(DEPTH_MM, DOSE_WATER_GY, 2.0, "protons")
    with pytest.raises(RadiobiologyError, match="not a whole-breast"):
        build_radiobiology_section(
            DEPTH_MM, DOSE_WATER_GY, 2.0, "xray", whole_breast_schedule="boost-16-8"
        )


def test_template_renders_the_section() -> None:
    s = build_radiobiology_section(DEPTH_MM, DOSE_WATER_GY, 20.0, "xray", rbe=1.2)
    html = _render(s)
    assert "<svg" in html and "&lt;svg" not in html  # figures inline, not escaped
    assert "Qi XS" in html and "UNVERIFIED_recall" in html  # sources and status printed
    assert "1.2 (user)" in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html
    # the plan report includes the partial from its own dict too (plan.json content)
    assert "EQD2" in html


def test_dose_to_medium_is_flagged() -> None:
    grid = Grid((0.0, 0.0, 0.0), (2.0, 2.0, 2.0), (1, 1, 2))
    dose = DoseGrid(grid, np.array([[[10.0, 20.0]]]), "medium_in_medium", "MC dose", PROV)
    out = eqd2_map(dose, "late")
    assert any("dose to medium" in n for n in out.notes)
    assert not any("dose to medium" in n for n in eqd2_map(_grid(dose.dose_gy)).notes)


def test_eqd2_map_with_an_rbe_per_voxel_and_its_source() -> None:
    dose = np.array([[[10.0, 5.0]]])
    rbe = Rbe(np.array([[[1.0, 1.4]]]), source="test table")
    out = eqd2_map(_grid(dose), "late", rbe=rbe)
    late = LqModel(3.1)  # the library's default late tissue, alpha/beta 3.1 Gy, acute
    np.testing.assert_allclose(out.dose_gy, eqd2(dose, late, rbe=rbe), rtol=1e-12)
    np.testing.assert_allclose(out.dose_gy[0, 0, 1], eqd2(7.0, late), rtol=1e-12)
    assert any(
        "RBE (varies with position) = 1 to 1.4" in n and "test table" in n for n in out.notes
    )
    assert not any("RBE = 1.0 (default)" in n for n in out.notes)
    with pytest.raises(RadiobiologyError, match="broadcast"):
        eqd2_map(_grid(dose), "late", rbe=Rbe(np.ones((1, 2, 2))))
