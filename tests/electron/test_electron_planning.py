"""Electron IORT planning: settings choice, MU, alternatives, errors, dose in a phantom."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from openiort.anatomy.phantom import Phantom
from openiort.case import Case, parse_case
from openiort.devices.electron import ElectronDevice, ElectronSettingError, load_electron_device
from openiort.planning.electron import (
    ElectronPlanningError,
    ElectronPlanSettings,
    MuRequest,
    monitor_units,
    plan_electron,
)


def make_case(thickness: float | None = 20.0, width: float | None = 40.0, **intent: Any) -> Case:
    anatomy = {
        k: v
        for k, v in (("target_thickness_mm", thickness), ("target_width_mm", width))
        if v is not None
    }
    return parse_case(
        {
            "patient": {"id": "E-TEST"},
            "anatomy": anatomy,
            "intent": {"technique": "electron", **intent},
        }
    )


@pytest.fixture(scope="module")
def device() -> ElectronDevice:
    return load_electron_device()


def test_lowest_sufficient_energy_and_smallest_covering_applicator(device: ElectronDevice) -> None:
    plan = plan_electron(make_case(20.0, 40.0), ElectronPlanSettings(pressure_hpa=950.0))
    a, b, e = plan.applicator_diameter_cm, plan.bevel_deg, plan.energy_mev
    assert b == 0
    # energy: measured R90 covers 20 mm; the next lower energy's does not
    assert device.r90_measured(a, b, e) >= 20.0
    lower = [x for x in device.energies_mev if x < e]
    assert all(device.r90_measured(a, b, x) < 20.0 for x in lower)
    # applicator: its 90 % isodose at zmax is at least 40 mm wide; every smaller one's is not
    assert device.beam(a, b, e).characteristics.width90_mm >= 40.0
    for smaller in (x for x in device.applicators_cm if x < a):
        reasons = [
            r
            for r in plan.rejected_alternatives
            if r.applicator_cm == smaller and r.energy_mev is not None
        ]
        assert reasons and "90 % isodose" in reasons[0].reason
    assert (a, b, e) == (5, 0, 10)
    # MU as the worksheet computes them, and the independent check within its action level
    assert plan.monitor_units == monitor_units(MuRequest(2100, a, b, e, 950.0))
    assert plan.second_check.within_action_level
    assert plan.prescription_gy == 21.0 and plan.isodose_pct == 90.0
    # the delivered maximum differs from 21 / 0.9 Gy only by the MU rounding (< 1 MU)
    assert abs(plan.delivered_dose_max_gy - 21.0 / 0.9) < plan.output_factor_cgy_per_mu / 100.0
    # every rejected alternative has a reason; lower and higher energies are both listed
    energies = {
        r.energy_mev
        for r in plan.rejected_alternatives
        if r.applicator_cm == a and r.bevel_deg == b
    }
    assert {6, 8, 12} <= energies
    assert all(r.reason for r in plan.rejected_alternatives)
    assert plan.warnings == []


def test_plan_json_has_the_report_fields() -> None:
    plan = plan_electron(
        make_case(15.0, 50.0, prescription_gy=21), ElectronPlanSettings(pressure_hpa=1000.0)
    )
    d = json.loads(json.dumps(plan.to_dict()))
    assert d["technique"] == "electron"
    assert isinstance(d["monitor_units"], int)
    for key in ("r90_mm", "r80_mm", "r50_mm", "rp_mm", "surface_dose_pct", "zmax_mm", "r90_mc_mm"):
        assert key in d["beam"]
    assert set(d["dose_at_depth_gy"]) >= {"0", "5", "10", "20"}
    assert len(d["depth_profile"]["depth_mm"]) == len(d["depth_profile"]["dose_gy"]) > 50
    assert d["device"]["beam_data_sha256"] == load_electron_device().beam_data_sha256
    assert d["second_check"]["monitor_units"] > 0
    # depth profile: prescription (90 %) is reached at the target's deep face or deeper
    depth = np.array(d["depth_profile"]["depth_mm"])
    dose = np.array(d["depth_profile"]["dose_gy"])
    assert dose[np.argmin(np.abs(depth - 14.5))] >= 21.0
    # behind the disc (at 15 mm) only the transmitted fraction remains
    assert dose[depth >= 15.0].max() < 0.03 * dose.max()


@pytest.mark.parametrize(
    ("inclination", "bevel"), [(0, 0), (7, 0), (10, 15), (22.5, 15), (25, 30), (40, 45), (60, 45)]
)
def test_bevel_follows_the_gland_surface_inclination(inclination: float, bevel: int) -> None:
    plan = plan_electron(
        make_case(10.0, 30.0),
        ElectronPlanSettings(pressure_hpa=950.0, surface_inclination_deg=inclination),
    )
    assert plan.bevel_deg == bevel
    assert sum(1 for r in plan.rejected_alternatives if r.applicator_cm is None) == 3
    assert any("cannot lie flat" in w for w in plan.warnings) == (inclination > 45)


def test_bolus_reduces_the_reach() -> None:
    without = plan_electron(make_case(12.0, 30.0), ElectronPlanSettings(pressure_hpa=950.0))
    with_bolus = plan_electron(
        make_case(12.0, 30.0), ElectronPlanSettings(pressure_hpa=950.0, bolus_mm=5.0)
    )
    assert with_bolus.energy_mev > without.energy_mev
    assert with_bolus.dose_at_depth_gy["0"] > without.dose_at_depth_gy["0"]


def test_missing_pressure_uses_reference_with_warning(device: ElectronDevice) -> None:
    plan = plan_electron(make_case())
    assert plan.pressure_hpa == device.reference_pressure_hpa
    assert any("air pressure not given" in w for w in plan.warnings)


@pytest.mark.parametrize(
    ("case_kwargs", "plan_kwargs", "error", "match"),
    [
        ({"thickness": 40.0}, {}, ElectronPlanningError, "not suitable for electron IORT"),
        ({"thickness": 28.0}, {"bevel_deg": 45}, ElectronPlanningError, "flatter bevel"),
        ({"thickness": 29.5}, {"applicator_cm": 5}, ElectronPlanningError, "larger applicator"),
        ({"thickness": 5.0}, {"bolus_mm": 0.0}, ElectronPlanningError, "too thin.*use 6 mm bolus"),
        (
            {"thickness": 10.0, "width": 140.0},
            {},
            ElectronPlanningError,
            "exceeds the 90 % isodose width",
        ),
        ({"thickness": None}, {}, ElectronPlanningError, "anatomy.target_thickness_mm"),
        ({"width": None}, {}, ElectronPlanningError, "anatomy.target_width_mm"),
        ({}, {"energy_mev": 7}, ElectronSettingError, "energy 7 MeV is not in the LIAC HWL data"),
        ({}, {"energy_mev": 6}, ElectronPlanningError, "under-dosed"),
        ({}, {"applicator_cm": 11}, ElectronSettingError, "applicator 11 cm"),
        ({}, {"bevel_deg": 20}, ElectronSettingError, "bevel 20 deg"),
        ({}, {"pressure_hpa": 200.0}, ElectronPlanningError, "air pressure"),
        ({}, {"prescription_gy": 50.0}, ElectronPlanningError, "worksheet limit"),
        ({}, {"bolus_mm": -1.0}, ElectronPlanningError, "bolus"),
        ({}, {"surface_inclination_deg": 95.0}, ElectronPlanningError, "inclination"),
        ({}, {"disc": "tungsten"}, ElectronSettingError, "unknown shielding disc"),
    ],
)
def test_bad_inputs_give_clear_errors(
    case_kwargs: dict, plan_kwargs: dict, error: type, match: str
) -> None:
    assert issubclass(error, ValueError)
    with pytest.raises(error, match=match):
        plan_electron(
            make_case(**case_kwargs),
            ElectronPlanSettings(**{"pressure_hpa": 950.0, **plan_kwargs}),
        )


def test_forced_small_applicator_warns_instead_of_choosing() -> None:
    plan = plan_electron(
        make_case(15.0, 60.0), ElectronPlanSettings(pressure_hpa=950.0, applicator_cm=4)
    )
    assert plan.applicator_diameter_cm == 4
    assert any("forced applicator 4 cm" in w for w in plan.warnings)


def test_steel_disc_and_no_disc_warnings() -> None:
    steel = plan_electron(make_case(), ElectronPlanSettings(pressure_hpa=950.0, disc="steel"))
    assert steel.disc is not None and steel.disc["type"] == "steel"
    assert any("not from published data" in w for w in steel.warnings)
    bare = plan_electron(make_case(), ElectronPlanSettings(pressure_hpa=950.0, disc=None))
    assert bare.disc is None
    assert any("no shielding disc" in w for w in bare.warnings)
    assert bare.dose_at_depth_gy["30"] > 20 * steel.dose_at_depth_gy["30"]


def test_technique_mismatch_is_a_warning() -> None:
    case = parse_case(
        {
            "patient": {"id": "X"},
            "anatomy": {"target_thickness_mm": 15, "target_width_mm": 40},
            "intent": {"technique": "xray"},
        }
    )
    plan = plan_electron(case, ElectronPlanSettings(pressure_hpa=950.0))
    assert any("technique is 'xray'" in w for w in plan.warnings)


def test_plan_in_phantom_reports_target_and_organ_doses(eliot: Callable[..., Phantom]) -> None:
    phantom = eliot(target_thickness_mm=20.0, spacing_mm=2.0)
    plan = plan_electron(
        make_case(20.0, 40.0), ElectronPlanSettings(pressure_hpa=950.0), phantom=phantom
    )
    assert plan.dose is not None
    assert plan.dose.provenance.device_data_sha256 == load_electron_device().beam_data_sha256
    assert plan.geometry["axis"] == pytest.approx([0.0, 1.0, 0.0])
    assert plan.geometry["entry_point_mm"][1] == pytest.approx(0.0, abs=1.0)
    assert set(plan.structures) >= {"lung", "heart", "ribs", "chest_wall", "skin", "target"}
    dmax = plan.delivered_dose_max_gy
    # in the disc's shadow: transmission bound 2 % of the dose at its face (<= dose max);
    # beside it, lateral out-of-field dose only
    assert plan.disc is not None
    z, y, x = phantom.grid.axes_mm()
    zz, _, xx = np.meshgrid(z, y, x, indexing="ij")
    shadow = xx**2 + zz**2 <= (plan.disc["diameter_mm"] / 2) ** 2
    for organ in ("lung", "heart"):
        mask = phantom.structures[organ]
        assert 0 < plan.dose.dose_gy[mask & shadow].max() <= 0.02 * dmax, organ
        assert 0 < plan.structures[organ].max_gy < 0.1 * dmax, organ
    # ribs outside the disc's shadow receive some lateral dose, but far below the prescription
    assert plan.structures["ribs"].max_gy < 0.25 * plan.prescription_gy
    # skin is retracted out of the beam
    assert plan.structures["skin"].max_gy < 0.2 * dmax
    # the target: the build-up region near the surface (surface dose < 90 %) and the field edge
    # are below the prescription; most of the gland layer receives it
    assert plan.target_coverage_pct is not None
    assert 40.0 < plan.target_coverage_pct < 100.0
    assert plan.structures["target"].max_gy <= dmax * 1.1  # disc backscatter at most +9 %
    d = json.loads(json.dumps(plan.to_dict()))
    assert d["dose_grid"]["medium"] == "water_in_medium"
    assert d["structures"]["heart"]["max_gy"] > 0


def test_skin_in_the_beam_is_flagged(eliot: Callable[..., Phantom]) -> None:
    phantom = eliot(target_thickness_mm=20.0, spacing_mm=2.0)
    z, y, x = phantom.grid.axes_mm()
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    phantom.structures["skin"] = (yy >= 0) & (yy < 2.5) & (np.abs(xx) < 10) & (np.abs(zz) < 10)
    plan = plan_electron(
        make_case(20.0, 40.0), ElectronPlanSettings(pressure_hpa=950.0), phantom=phantom
    )
    assert any("retract the skin" in w for w in plan.warnings)


def test_plan_places_the_eliot_layer_from_the_tumour_bed(eliot: Callable[..., Phantom]) -> None:
    """With a tumour-bed centre and a chest wall, the planner builds the ELIOT geometry itself:
    applicator tilted 30 deg from the fascia normal -> depth axis = normal, bevel 30 deg."""
    phantom = eliot(target_thickness_mm=20.0, spacing_mm=2.0)
    phantom.applicator_centre_mm = (0.0, 8.0, 0.0)
    tilt = np.radians(30.0)
    phantom.shaft_direction = (
        -np.sin(tilt),
        -np.cos(tilt),
        0.0,
    )  # applicator comes in along +x, +y
    plan = plan_electron(
        make_case(18.0, 40.0), ElectronPlanSettings(pressure_hpa=950.0), phantom=phantom
    )
    g = plan.geometry
    assert g["placement"].startswith("ELIOT")
    assert g["axis"] == pytest.approx([0.0, 1.0, 0.0], abs=0.02)
    assert g["surface_inclination_deg"] == pytest.approx(30.0, abs=1.5)
    assert g["bevel_direction"] == pytest.approx([1.0, 0.0, 0.0], abs=0.03)
    assert plan.bevel_deg == 30
    # the fascia (chest-wall voxel face) is at y = 19 mm; the entry 18 mm before it
    assert g["entry_point_mm"][1] == pytest.approx(1.0, abs=0.6)
    assert plan.target_mask is not None
    assert plan.target_coverage_pct is not None and plan.target_coverage_pct > 80.0


def test_default_disc_covers_the_beam_and_small_discs_are_flagged() -> None:
    flat = plan_electron(make_case(15.0, 40.0), ElectronPlanSettings(pressure_hpa=950.0))
    assert flat.disc is not None
    # centred on the beam, wider than the applicator by the 2 x 10 mm default margin
    assert flat.disc["centre_xy_mm"] == pytest.approx([0.0, 0.0], abs=0.5)
    assert flat.disc["diameter_mm"] >= 10 * flat.applicator_diameter_cm + 20.0
    assert not any("beyond the disc" in w for w in flat.warnings)
    bevelled = plan_electron(
        make_case(12.0, 40.0), ElectronPlanSettings(pressure_hpa=950.0, surface_inclination_deg=45)
    )
    assert bevelled.bevel_deg == 45
    assert bevelled.disc is not None and bevelled.disc["centre_xy_mm"][0] > 3.0  # drifts to +x
    small = plan_electron(
        make_case(15.0, 40.0), ElectronPlanSettings(pressure_hpa=950.0, disc_diameter_mm=40.0)
    )
    assert any("smaller than the applicator" in w for w in small.warnings)
    assert any("beyond the disc" in w for w in small.warnings)
