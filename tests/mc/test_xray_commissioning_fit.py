"""The joint commissioning fit of the 50 kV source model (issue 15, item 1).

Fast: the tests read the shipped fit (data/xray50_commissioning_fit.yaml); one reduced-statistics
Monte Carlo run checks that the shipped parameters reproduce a shipped figure.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from openiort.datafiles import read_data
from openiort.devices.xray import load_example_source
from openiort.dose.mc import commissioning_fit as cf


@pytest.fixture(scope="module")
def fit() -> dict:
    return cf.load_fit()


def _rows(fit: dict, group: str) -> list[dict]:
    return [r for r in fit["residuals"] if r["group"] == group]


def test_every_datum_has_a_residual_and_a_weight(fit: dict) -> None:
    groups = [r["group"] for r in fit["residuals"]]
    assert groups.count("surface_rate") == 8
    assert groups.count("hvl") == 3
    assert groups.count("local_slope") == 4
    assert groups.count("targit_ratio") == 24
    for r in fit["residuals"]:
        assert r["sigma_pct"] > 0 and math.isfinite(r["residual_after_pct"])


def test_published_figures_are_the_package_ones(fit: dict) -> None:
    src = load_example_source()
    ref = src.applicator(3.0).surface_rate_v40_gy_min
    for r in _rows(fit, "surface_rate"):
        d = float(r["datum"].split()[0])
        assert r["published"] == pytest.approx(
            src.applicator(d).surface_rate_v40_gy_min / ref, abs=1e-4
        )
    _, slopes = cf.slope_targets()
    assert [r["published"] for r in _rows(fit, "local_slope")] == pytest.approx(list(slopes))
    assert list(slopes) == [5.8, 3.0, 1.4, 1.0]  # Shaikh et al. JACMP 2020
    hvl = read_data("openiort.dose.mc", cf.TARGETS_FILE).yaml()["hvl"]
    assert [r["published"] for r in _rows(fit, "hvl")] == [
        hvl["in_air"]["value_mm_al"],
        hvl["after_plastic"]["value_mm_al"],
        hvl["after_water"]["lower_bound_mm_al"],
    ]


def test_scan_records_every_evaluation_and_the_minimum(fit: dict) -> None:
    rows = read_data("openiort.dose.mc", cf.SCAN_FILE).rows()
    stages = {r["stage"] for r in rows}
    assert stages == {"coarse", "fine"}
    assert sum(r["stage"] == "coarse" for r in rows) == len(cf.COARSE_THICKNESS_UM) * len(
        cf.COARSE_AL_MM
    ) * len(cf.COARSE_APPLICATOR_AL_MM)
    # the fitted point is the lowest chi2 among those meeting the published bound
    feasible = [r for r in rows if float(r["hvl_water20_mm_al"]) >= 1.3]
    best = min(feasible, key=lambda r: float(r["chi2"]))
    assert min(float(r["chi2"]) for r in rows) == pytest.approx(
        fit["parameters"]["minimum_without_the_bounds"]["chi2"], abs=0.01
    )
    p = fit["parameters"]
    for name in cf.PARAMETER_NAMES:
        assert float(best[name]) == pytest.approx(p[name]["fitted"])
        lo, hi = p[name]["interval"]
        assert lo <= p[name]["fitted"] <= hi
    assert float(best["chi2"]) == pytest.approx(fit["chi2"]["after"], rel=1e-3)


def test_the_source_model_carries_the_fitted_parameters(fit: dict) -> None:
    from openiort.dose.mc.spectrum import source_model
    from openiort.dose.mc.xray_source import applicator_filtration

    p = fit["parameters"]
    s = source_model()["spectrum"]
    assert s["target_thickness_um"] == pytest.approx(p["target_thickness_um"]["fitted"])
    al = next(f for f in s["filters"] if f["material"] == "Al")
    assert al["thickness_mm"] == pytest.approx(p["al_mm"]["fitted"])
    assert applicator_filtration().thickness_mm == pytest.approx(p["applicator_al_mm"]["fitted"])


# ------------------------------------------------------------- the "Done when"


def test_surface_rates_each_within_3pct(fit: dict) -> None:
    worst = max(abs(r["residual_after_pct"]) for r in _rows(fit, "surface_rate"))
    assert worst <= 3.0  # issue 15: within 3 % each


def test_surface_rates_rms_within_2pct(fit: dict) -> None:
    res = [r["residual_after_pct"] for r in _rows(fit, "surface_rate")]
    assert math.sqrt(float(np.mean(np.square(res)))) <= 2.0  # issue 15: 2 % rms


def _hvl(fit: dict, label: str) -> dict:
    return next(r for r in _rows(fit, "hvl") if r["datum"] == label)


def test_hvl_in_air_within_20pct(fit: dict) -> None:
    assert abs(_hvl(fit, "in air")["residual_after_pct"]) <= 20.0  # issue 15: within 20 % of 0.1


def test_hvl_after_plastic_within_20pct(fit: dict) -> None:
    # issue 15: within 20 % of 0.64 mm Al
    assert abs(_hvl(fit, "after 10 mm plastic")["residual_after_pct"]) <= 20.0


def test_hvl_after_20mm_water_above_1_3mm(fit: dict) -> None:
    assert _hvl(fit, "after 20 mm water (lower bound)")["model_after"] > 1.3  # issue 15


@pytest.mark.parametrize("distance", ["10 mm", "20 mm", "30 mm"])
def test_local_slopes_within_5pct(fit: dict, distance: str) -> None:
    row = next(r for r in _rows(fit, "local_slope") if r["datum"] == distance)
    assert abs(row["residual_after_pct"]) <= 5.0  # issue 15: within 5 % at 10-30 mm


# ------------------------------------------------------------------ reproducibility


def test_shipped_hvls_follow_from_the_shipped_spectrum(fit: dict) -> None:
    from openiort.dose.mc.spectrum import load_spectrum

    edges, probs, _ = load_spectrum()
    air = cf._hvl_after(probs, edges, "water", 0.0)
    assert air == pytest.approx(_hvl(fit, "in air")["model_after"], abs=2e-4)
    water20 = cf._hvl_after(probs, edges, "water", 20.0)
    assert water20 == pytest.approx(
        _hvl(fit, "after 20 mm water (lower bound)")["model_after"], abs=2e-4
    )


def test_direct_monte_carlo_reproduces_the_shipped_surface_readings(fit: dict) -> None:
    """The shipped source model in its applicators run directly (not through the per-bin
    responses), 1.5 and 5.0 cm, reduced statistics: the ratio of the chamber readings agrees with
    the fit's within 3 standard deviations (the shipped residual difference of the two)."""
    from openiort.dose.mc.commissioning import depth_shell_edges_mm
    from openiort.dose.mc.sphere import SPHERE_RADIUS_MM, shell_dose
    from openiort.dose.mc.xray_source import applicator, xray50_source

    source = xray50_source(cf.SHAFT_AXIS)
    depths = cf.APPLICATOR_DEPTHS_MM[: cf.SURFACE_FIT_DEPTHS]
    readings, uncs = {}, {}
    for i, d in enumerate((1.5, 5.0)):
        app = applicator(d)
        r = shell_dose(
            source,
            [(app.radius_mm, app.material), (SPHERE_RADIUS_MM, "water")],
            depth_shell_edges_mm(app.radius_mm, depths),
            300_000,
            777 + i,
            response="water",
            workers=1,
            equatorial_band_cos=cf.EQUATOR_BAND_COS,
        )
        dose = r.dose_gy_per_photon[::2]
        readings[d] = cf.chamber_reading(depths, dose, app.radius_mm)
        uncs[d] = float(r.rel_unc[0])
    shipped = fit["mc_check"]
    ratio = readings[1.5] / readings[5.0]
    shipped_ratio = (
        shipped["reading_gy_per_photon"]["1.5"] / shipped["reading_gy_per_photon"]["5.0"]
    )
    sigma = math.sqrt(
        uncs[1.5] ** 2
        + uncs[5.0] ** 2
        + shipped["rel_unc"]["1.5"] ** 2
        + shipped["rel_unc"]["5.0"] ** 2
    )
    assert ratio / shipped_ratio - 1 == pytest.approx(0.0, abs=3 * sigma)
