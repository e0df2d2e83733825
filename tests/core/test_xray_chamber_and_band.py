"""Issue 15 items 2-3: the V4.0 chamber's volume averaging, the per-depth uncertainty band, and
the dose-definition labels of an x-ray plan."""

from __future__ import annotations

import numpy as np
import pytest

from openiort.case import load_case
from openiort.devices.xray import load_example_source
from openiort.devices.xray_chamber import surface_chamber_factor, volume_averaging_factor
from openiort.devices.xray_uncertainty import depth_dose_band
from openiort.dose.mc.commissioning import surface_reading_residuals_pct
from openiort.planning.xray import plan_xray

# Reading / point dose of the PTW 34013 averaged over the project's Monte Carlo depth-dose. The
# issue's review quoted 0.845 (1.5 cm) to 0.946 (5 cm) for the model before the joint fit
# (1 um gold, 0.25 mm Al); the jointly fitted model (3.75 um, no tip Al, 0.11 mm Al applicator
# filtration; issue 15 item 1, dose/mc/VALIDATION.md) gives 0.833 and 0.944: quoted to 3 decimals.
ISSUE_FACTORS = {1.5: 0.833, 5.0: 0.944}


@pytest.fixture(scope="module")
def source():
    return load_example_source()


def test_chamber_factor_matches_the_issue_and_falls_with_gradient(source):
    factors = [surface_chamber_factor(source, d).factor for d in source.diameters_cm]
    for d, expected in ISSUE_FACTORS.items():
        assert surface_chamber_factor(source, d).factor == pytest.approx(expected, abs=0.0015)
    assert factors == sorted(factors)  # smaller applicator, steeper gradient, lower reading
    for d in source.diameters_cm:
        f = surface_chamber_factor(source, d)
        assert f.factor_low <= f.factor <= f.factor_high < 1.0


def test_chamber_factor_limits(source):
    # A vanishing chamber reads the point dose (tolerance: midpoint-rule discretisation).
    assert volume_averaging_factor(source, 3.0, 1e-3, 1e-3) == pytest.approx(1.0, abs=1e-4)
    # Deeper, where the gradient is shallower, the averaging matters less.
    assert volume_averaging_factor(source, 3.0, 0.85, 0.9, depth_mm=20.0) > (
        surface_chamber_factor(source, 3.0).factor
    )


def test_band_components_and_total(source):
    band = {p.depth_mm: p for p in depth_dose_band(source, 3.0)}
    for p in band.values():
        parts = (p.model_spread_pct, p.positioning_pct, p.chamber_cq_depth_pct, p.mc_statistics_pct)
        assert p.total_pct == pytest.approx(sum(x * x for x in parts) ** 0.5, abs=0.02)
    # Positioning: Shaikh et al. 3.0 % per 0.1 mm at 10 mm from the source, 1.4 % at 20 mm
    # (the 3 cm applicator's surface is 15 mm from the source: between them).
    assert 1.4 < band[0.0].positioning_pct < 3.0
    assert band[0.0].chamber_cq_depth_pct == 0.0
    assert band[20.0].total_pct > band[5.0].total_pct


def test_plan_json_names_definitions_physical_dose_and_band():
    plan = plan_xray(load_case("examples/left_upper_outer_30mm.yaml"), spacing_mm=2.0)
    doc = plan.to_json_dict()
    defs = doc["dose_definitions"]
    for key in ("prescription", "dose_at_depth_gy", "dvhs_and_metrics", "dicom_rtdose"):
        assert "TARGIT" in defs[key] or "V4.0" in defs[key]
    pd = doc["physical_dose"]
    assert pd["physical_point_dose_gy"] == pytest.approx(
        pd["surface_dose_v40_gy"] / pd["chamber_factor"], rel=1e-3
    )
    lo, hi = pd["physical_point_dose_range_gy"]
    assert lo <= pd["physical_point_dose_gy"] <= hi
    depths = [p["depth_mm"] for p in doc["depth_dose_uncertainty"]["points"]]
    assert {5.0, 10.0, 20.0} <= set(depths)


def test_report_shows_physics_section_band_and_definitions():
    from openiort.report.html import render_report

    plan = plan_xray(load_case("examples/left_upper_outer_30mm.yaml"), spacing_mm=2.0)
    html = render_report(plan, plan.to_json_dict())
    assert "Physics: estimated physical point dose to water" in html
    assert "depth-dose uncertainty band" in html  # the plot's legend
    assert "V4.0 definition (Zeiss; nominal, not chamber-corrected)" in html
    assert "V4.0 / physical" not in html  # the old label called V4.0 the physical dose


def test_surface_reading_residuals_with_and_without_the_chamber(source):
    point = surface_reading_residuals_pct(source, with_chamber=False)
    chamber = surface_reading_residuals_pct(source, with_chamber=True)
    assert set(point) == set(chamber) == set(source.diameters_cm)
    # the chamber reads the small applicators' steeper surface dose low: relative to the 5 cm
    # applicator the 1.5 cm one loses 1 - 0.833 / 0.944 = 12 % (VALIDATION.md, issue 15); the
    # common scales cancel in the double ratio, which is exactly the ratio of the factors
    double = ((1 + chamber[1.5] / 100) / (1 + point[1.5] / 100)) / (
        (1 + chamber[5.0] / 100) / (1 + point[5.0] / 100)
    )
    factors = (
        surface_chamber_factor(source, 1.5).factor / surface_chamber_factor(source, 5.0).factor
    )
    assert double == pytest.approx(factors, rel=1e-9)
    assert 100 * (1 - factors) == pytest.approx(100 * (1 - 0.833 / 0.944), abs=0.2)
    # the jointly fitted model (issue 15 item 1) meets the issue's criterion as chamber readings
    assert max(abs(v) for v in chamber.values()) <= 3.0
    assert float(np.sqrt(np.mean(np.square(list(chamber.values()))))) <= 2.0
