"""HDR planning on synthetic water phantoms: applicators, optimisation, metrics, warnings."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest

from openiort.anatomy.phantom import Phantom
from openiort.case import parse_case
from openiort.devices import hdr
from openiort.dose import tg43
from openiort.planning.hdr import (
    HdrPlanError,
    HdrPlanResult,
    optimise_dwell_times,
    plan_hdr,
    plan_hdr_from_case,
)

SK_U = 40000.0


@pytest.fixture(scope="module")
def balloon_plan(water_cube: Callable[..., Phantom]) -> HdrPlanResult:
    phantom = water_cube(skin_at_mm=30.0, lung_beyond_mm=30.0)
    return plan_hdr(phantom, 10.0, 10.0, "balloon", sk_u=SK_U, source_id="GammaMed_HDR_Plus")


@pytest.fixture(scope="module")
def surface_plan(water_cube: Callable[..., Phantom]) -> HdrPlanResult:
    phantom = water_cube(cavity_material="air")
    return plan_hdr(phantom, 10.0, 5.0, "surface", sk_u=SK_U)


def test_balloon_dwell_positions_on_the_catheter(balloon_plan: HdrPlanResult) -> None:
    # 15 mm balloon, 5 mm steps, last dwell >= 5 mm inside the wall: -10..10 mm on the axis
    # (shaft along -y), source pointing away from the skin (+y).
    pos = balloon_plan.dwell_positions_mm
    np.testing.assert_allclose(pos[:, [0, 2]], 0.0, atol=1e-12)
    np.testing.assert_allclose(sorted(pos[:, 1]), [-10, -5, 0, 5, 10], atol=1e-12)
    np.testing.assert_allclose(balloon_plan.dwell_directions, [[0, 1, 0]] * 5, atol=1e-12)


def test_balloon_plan_delivers_the_prescription(balloon_plan: HdrPlanResult) -> None:
    # Mean dose over the prescription points is the prescription before rounding; rounding to
    # 0.1 s on dwell times of tens of seconds moves it by < 0.1 % (tolerance 0.2 %).
    p = balloon_plan
    assert p.prescription_points_gy["mean"] == pytest.approx(10.0, rel=2e-3)
    assert p.dose_at_depth_gy["10"] == pytest.approx(10.0, rel=2e-3)
    # Dose falls with depth; near the surface it is ~ inverse-square higher (25/15)^2 = 2.8.
    d = p.dose_at_depth_gy
    assert d["0"] > d["5"] > d["10"] > d["20"]
    assert 2.4 < d["0"] / d["10"] < 3.2
    # Dwell times are multiples of the 0.1 s timer step.
    np.testing.assert_allclose(p.dwell_times_s * 10, np.round(p.dwell_times_s * 10), atol=1e-9)


def test_balloon_voxel_dose_matches_independent_point_sum(balloon_plan: HdrPlanResult) -> None:
    # Independent path: sum over dwells of the polar TG-43 API at a voxel centre.
    p = balloon_plan
    point = np.array([25.0, 1.0, 1.0])  # a voxel centre of the 2 mm grid (centres at odd mm)
    idx = tuple(np.rint(p.grid.position_to_index(point)).astype(int))
    expected = 0.0
    for pos, d, t in zip(p.dwell_positions_mm, p.dwell_directions, p.dwell_times_s, strict=True):
        rel_cm = (point - pos) / 10.0
        r = float(np.linalg.norm(rel_cm))
        theta = math.degrees(math.acos(float(np.dot(rel_cm, d)) / r))
        expected += float(tg43.dose_rate_per_sk(p.source_id, r, theta)) * SK_U * t / 3600 / 100
    assert p.dose_gy[idx] == pytest.approx(expected, rel=1e-10)


def test_balloon_metrics_and_report(balloon_plan: HdrPlanResult) -> None:
    p = balloon_plan
    # TRAK = S_K x total time (ICRU 58): U x h = uGy at 1 m.
    assert p.trak_ugy_at_1m == pytest.approx(SK_U * p.total_time_s / 3600, rel=1e-12)
    assert p.treatment_time_min == pytest.approx(p.total_time_s / 60, rel=1e-12)
    # Target: 10 mm shell outside the balloon (no 'target' structure in this phantom), all of
    # it nearer the sources than the prescription sphere except near the catheter axis.
    assert p.target_volume_cc == pytest.approx(4 / 3 * math.pi * (2.5**3 - 1.5**3), rel=0.05)
    assert p.target_v90_percent > 95.0
    assert p.target_v100_percent >= p.target_v90_percent - 5.0
    assert p.target_v150_percent >= p.target_v200_percent
    assert p.v150_cc >= p.v200_cc > 0.0
    d = p.to_dict()
    json.dumps(d)
    for key in (
        "dwell_times_s",
        "total_time_s",
        "treatment_time_min",
        "trak_ugy_at_1m",
        "coverage",
        "hot_spots",
        "dose_at_depth_gy",
        "warnings",
        "provenance",
    ):
        assert key in d
    assert set(d["dose_at_depth_gy"]) == {"0", "5", "10", "20"}
    assert len(d["dwell_times_s"]) == 5
    dg = p.to_dose_grid()
    assert dg.medium == "water_in_water"
    assert dg.provenance.device_data_sha256 == hdr.source_data_sha256("GammaMed_HDR_Plus")


def test_balloon_warnings_near_skin_and_lung(balloon_plan: HdrPlanResult) -> None:
    text = "\n".join(balloon_plan.warnings)
    assert "Near skin" in text and "Kassas" in text and "overestimates" in text
    assert "Lung:" in text and "treats lung" in text
    assert "Air:" not in text
    assert "example" not in text  # a strength was given


def test_surface_applicator_geometry(surface_plan: HdrPlanResult) -> None:
    # Surface applicator specification (hdr_applicators.yaml): catheters 1 cm apart, source
    # path 5 mm from the tissue surface. The cavity (radius 15 mm) gives a 30 mm x 30 mm
    # applicator: 4 catheters of 7 dwell positions.
    p = surface_plan
    geo = p.applicator_geometry
    assert geo["n_catheters"] == 4 and geo["catheter_spacing_mm"] == 10.0
    assert geo["source_to_tissue_mm"] == 5.0
    pos = p.dwell_positions_mm
    assert pos.shape == (28, 3)
    # Tissue surface is the cavity floor at y = +15 mm (opposite the shaft, which points -y);
    # the source plane is 5 mm above it, at y = +10 mm.
    np.testing.assert_allclose(pos[:, 1], 10.0, atol=1e-12)
    xs = sorted(set(np.round(pos[:, 0], 9)))
    np.testing.assert_allclose(np.diff(xs), 10.0)
    assert p.prescription_points_gy["mean"] == pytest.approx(10.0, rel=2e-3)
    assert p.dose_at_depth_gy["5"] == pytest.approx(10.0, rel=2e-3)
    # Target: tissue under the 30 x 30 mm footprint down to 5 mm: on the 2 mm grid (centres at
    # odd mm) 16 x 16 columns x 3 layers (y = 15, 17, 19) of 0.008 cc voxels.
    assert p.target_volume_cc == pytest.approx(16 * 16 * 3 * 0.008, rel=1e-12)


def test_surface_plan_warns_about_the_open_cavity(surface_plan: HdrPlanResult) -> None:
    text = "\n".join(surface_plan.warnings)
    assert "Air:" in text and "open cavity above the surface applicator" in text


def test_example_strength_and_non_consensus_source_are_flagged(
    water_cube: Callable[..., Phantom],
) -> None:
    phantom = water_cube()
    p = plan_hdr(phantom, 8.0, 10.0, source_id="mHDR_v2r_ESTRO")
    text = "\n".join(p.warnings)
    assert p.sk_is_example and "example value" in text
    assert "provisional" in text
    assert any("PROVISIONAL" in n for n in p.notes)
    # Times scale as 1/S_K: a source twice as strong needs half the time (0.1 s rounding).
    p2 = plan_hdr(phantom, 8.0, 10.0, source_id="mHDR_v2r_ESTRO", sk_u=2 * p.sk_u)
    assert p2.total_time_s == pytest.approx(p.total_time_s / 2, abs=0.1 * p.dwell_times_s.size)


def test_smoothness_evens_the_dwell_times(water_cube: Callable[..., Phantom]) -> None:
    phantom = water_cube()
    rough = plan_hdr(phantom, 10.0, 10.0, sk_u=SK_U, smoothness=0.0)
    smooth = plan_hdr(phantom, 10.0, 10.0, sk_u=SK_U, smoothness=1.0)

    def cv(t: np.ndarray) -> float:
        return float(t.std() / t.mean())

    assert cv(smooth.dwell_times_s) < 0.5 * cv(rough.dwell_times_s)
    lp = plan_hdr(phantom, 10.0, 10.0, sk_u=SK_U, method="lp")
    assert lp.prescription_points_gy["mean"] == pytest.approx(10.0, rel=2e-3)


# ---------------------------------------------------------------------------- optimiser


@pytest.mark.parametrize("method", ["nnls", "lp"])
def test_optimiser_solves_an_exact_problem(method: str) -> None:
    # Independent reference: diagonal influence matrix, exact solution t_i = Rx / a_ii.
    a = np.diag([1.0, 2.0, 4.0])
    t = optimise_dwell_times(a, 2.0, [], 0.0, method)
    np.testing.assert_allclose(t, [2.0, 1.0, 0.5], rtol=1e-8)


def test_lp_and_nnls_are_optimal_in_their_own_norms() -> None:
    # NNLS minimises the squared deviation and LP the absolute deviation: each must be at
    # least as good as the other in its own norm (1e-9 slack for solver tolerance).
    rng = np.random.default_rng(7)
    a = rng.uniform(0.1, 1.0, (40, 6))
    t_ls = optimise_dwell_times(a, 1.0, [], 0.0, "nnls")
    t_lp = optimise_dwell_times(a, 1.0, [], 0.0, "lp")
    r_ls, r_lp = a @ t_ls - 1.0, a @ t_lp - 1.0
    assert np.sum(r_ls**2) <= np.sum(r_lp**2) + 1e-9
    assert np.sum(np.abs(r_lp)) <= np.sum(np.abs(r_ls)) + 1e-9


def test_optimiser_bad_inputs() -> None:
    a = np.ones((3, 2))
    with pytest.raises(HdrPlanError, match="smoothness"):
        optimise_dwell_times(a, 1.0, [(0, 1)], -1.0)
    with pytest.raises(HdrPlanError, match="method"):
        optimise_dwell_times(a, 1.0, [], 0.0, "simplex")
    with pytest.raises(HdrPlanError, match="no dose"):
        optimise_dwell_times(np.zeros((3, 2)), 1.0, [])


# ------------------------------------------------------------------------------ bad input


def test_plan_bad_inputs(water_cube: Callable[..., Phantom]) -> None:
    phantom = water_cube()
    with pytest.raises(HdrPlanError, match="prescription must be"):
        plan_hdr(phantom, 0.0, 10.0)
    with pytest.raises(HdrPlanError, match="prescription depth"):
        plan_hdr(phantom, 10.0, -1.0)
    with pytest.raises(HdrPlanError, match="unknown HDR applicator 'needle'"):
        plan_hdr(phantom, 10.0, 10.0, "needle")
    with pytest.raises(hdr.UnknownSourceError, match="Ir-999"):
        plan_hdr(phantom, 10.0, 10.0, source_id="Ir-999")
    with pytest.raises(HdrPlanError, match="air-kerma strength"):
        plan_hdr(phantom, 10.0, 10.0, sk_u=-5.0)
    with pytest.raises(HdrPlanError, match="shaft_direction"):
        plan_hdr(replace(phantom, shaft_direction=None), 10.0, 10.0)


def test_applicator_that_does_not_fit_the_grid(water_cube: Callable[..., Phantom]) -> None:
    phantom = replace(water_cube(size_mm=40.0), cavity_radius_mm=30.0)
    with pytest.raises(hdr.ApplicatorError, match="outside the phantom grid"):
        plan_hdr(phantom, 10.0, 10.0, sk_u=SK_U)


def test_prescription_beyond_the_body_is_refused(water_cube: Callable[..., Phantom]) -> None:
    # Skin 20 mm from the centre with air beyond on one side only leaves points on the other
    # sides; air all round the prescription sphere is refused.
    phantom = water_cube(skin_at_mm=20.0)
    p = plan_hdr(phantom, 10.0, 10.0, sk_u=SK_U)
    assert any("outside the body" in w for w in p.warnings)
    air_everywhere = replace(phantom, material_ids=np.where(phantom.structures["cavity"], 0, 1))
    air_everywhere = replace(
        air_everywhere, material_ids=air_everywhere.material_ids.astype(np.uint8)
    )
    with pytest.raises(HdrPlanError, match="no prescription point lies in tissue"):
        plan_hdr(air_everywhere, 10.0, 10.0, sk_u=SK_U)


def test_plan_from_case(water_cube: Callable[..., Phantom]) -> None:
    case = parse_case(
        {"patient": {"id": "HDR-1"}, "intent": {"technique": "hdr", "prescription_gy": 12}}
    )
    p = plan_hdr_from_case(case, water_cube(), sk_u=SK_U)
    assert p.prescription_gy == 12.0 and p.prescription_depth_mm == 10.0
    xray = parse_case({"patient": {"id": "X-1"}, "intent": {"technique": "xray"}})
    with pytest.raises(HdrPlanError, match="not 'hdr'"):
        plan_hdr_from_case(xray, water_cube())
    no_rx = parse_case({"patient": {"id": "H-2"}, "intent": {"technique": "hdr"}})
    with pytest.raises(HdrPlanError, match="prescription_gy"):
        plan_hdr_from_case(no_rx, water_cube())
