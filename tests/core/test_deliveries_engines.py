"""Typed deliveries, the engine registry and the session of the day.

Each registered engine recomputes a plan's dose from the plan's typed delivery alone (the same
numbers the planner produced: the planners call the engines), the delivery survives its JSON
form, and the session of the day turns the sealed values into the day's console values.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from typer.testing import CliRunner

from openiort.case import load_case
from openiort.cli import app
from openiort.delivery import ElectronDelivery, HdrDelivery, XrayDelivery, parse_delivery
from openiort.devices.electron import load_electron_device
from openiort.devices.hdr import ir192_half_life_d
from openiort.devices.xray import load_example_source
from openiort.engines import (
    REGISTRY,
    EngineError,
    engine_names,
    make_engine,
    resolve_engine_name,
)
from openiort.pipeline import plan_case
from openiort.plan import PlanResult
from openiort.session import SessionError, TreatmentSession, console_values

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()
EXAMPLES = {
    "xray": "left_upper_outer_30mm.yaml",
    "electron": "left_electron_eliot.yaml",
    "hdr": "left_hdr_balloon_30mm.yaml",
}
DAY = dt.datetime(2026, 12, 7, 9, 30, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def plans() -> dict[str, PlanResult]:
    return {t: plan_case(load_case(REPO / "examples" / f)) for t, f in EXAMPLES.items()}


def test_every_technique_has_a_registered_engine() -> None:
    assert engine_names("xray") == ["xray.table", "xray.mc"]
    assert engine_names("electron") == ["electron.beamdata"]
    assert engine_names("hdr") == ["hdr.tg43", "hdr.mc"]
    assert set(REGISTRY) == {"xray.table", "xray.mc", "electron.beamdata", "hdr.tg43", "hdr.mc"}
    assert resolve_engine_name("xray", "mc") == "xray.mc"  # the name the CLI accepted before
    with pytest.raises(EngineError, match=r"hdr\.tg43"):
        resolve_engine_name("hdr", "xray.mc")


def test_an_engine_of_another_technique_exits_2(tmp_path: Path) -> None:
    case = REPO / "examples" / EXAMPLES["hdr"]
    result = runner.invoke(app, ["plan", str(case), "--out", str(tmp_path / "o"), "--engine", "mc"])
    assert result.exit_code == 2
    assert "not an engine for hdr plans" in result.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("technique", sorted(EXAMPLES))
def test_engine_recomputes_the_plan_dose_from_the_delivery(
    technique: str, plans: dict[str, PlanResult]
) -> None:
    plan = plans[technique]
    device = {
        "xray": load_example_source,
        "electron": load_electron_device,
        "hdr": lambda: None,
    }[technique]()
    engine = make_engine(engine_names(technique)[0], device)  # type: ignore[arg-type]
    dose = engine.compute(plan.delivery, plan.phantom)
    assert engine.technique == technique
    # Bit-identical: the planner computed its dose through the same engine and delivery.
    np.testing.assert_array_equal(dose.dose_gy, plan.dose.dose_gy)


def test_an_engine_refuses_another_techniques_delivery(plans: dict[str, PlanResult]) -> None:
    engine = make_engine("xray.table", load_example_source())
    with pytest.raises(EngineError, match="XrayDelivery"):
        engine.compute(plans["hdr"].delivery, plans["hdr"].phantom)


@pytest.mark.parametrize("technique", sorted(EXAMPLES))
def test_delivery_survives_plan_json(technique: str, plans: dict[str, PlanResult]) -> None:
    plan = plans[technique]
    text = json.dumps(plan.to_json_dict(), allow_nan=False)
    again = parse_delivery(json.loads(text)["delivery"])
    assert again == plan.delivery
    assert again.device.status == "example"  # every built-in device data set is example data


def test_xray_delivery_matches_the_plan(plans: dict[str, PlanResult]) -> None:
    plan = plans["xray"]
    d = plan.delivery
    assert isinstance(d, XrayDelivery)
    assert d.applicator_diameter_cm == plan.details.applicator_diameter_cm
    assert round(d.treatment_time_min, 3) == plan.details.treatment_time_min


def test_xray_session_divides_the_time_by_the_days_output(plans: dict[str, PlanResult]) -> None:
    d = plans["xray"].delivery
    assert isinstance(d, XrayDelivery)
    values = console_values(d, TreatmentSession(at_utc=DAY, output_factor=1.02))
    assert values.settings[0].today == pytest.approx(d.treatment_time_min / 1.02, rel=1e-12)
    with pytest.raises(SessionError, match="not console inputs"):
        console_values(d, TreatmentSession(at_utc=DAY, pressure_hpa=1013))
    with pytest.raises(SessionError, match="plausible range"):
        console_values(d, TreatmentSession(at_utc=DAY, output_factor=2.0))


def test_electron_mu_at_sea_level_follow_the_worksheet(plans: dict[str, PlanResult]) -> None:
    d = plans["electron"].delivery
    assert isinstance(d, ElectronDelivery)
    assert d.chamber_correction_mode == "pressure"
    assert d.reference_pressure_hpa == 934.7  # the example machine's worksheet reference
    values = console_values(d, TreatmentSession(at_utc=DAY, pressure_hpa=1013.0))
    # Worksheet hand calculation: MU = exact MU at 934.7 hPa x 1013 / 934.7, rounded; the
    # example (15 mm gland, operating-room geometry): 8 MeV, 5 cm, flat, 2333.3 cGy at the
    # maximum / 1.394 cGy/MU = 1673.84 MU at 934.7 hPa.
    assert d.monitor_units_exact == pytest.approx(2100 / 0.9 / 1.394, abs=0.01)
    assert values.settings[0].today == round(1673.84 * 1013.0 / 934.7) == 1814
    with pytest.raises(SessionError, match="give the day's pressure"):
        console_values(d, TreatmentSession(at_utc=DAY))
    with pytest.raises(SessionError, match="corrected twice"):
        console_values(d, TreatmentSession(at_utc=DAY, pressure_hpa=1013, output_factor=1.0))
    with pytest.raises(SessionError, match="pressure only"):
        console_values(d, TreatmentSession(at_utc=DAY, pressure_hpa=1013, temperature_c=22))
    with pytest.raises(SessionError, match="plausible range"):
        console_values(d, TreatmentSession(at_utc=DAY, pressure_hpa=101.3))  # kPa typed as hPa


def _decay_table(reference: dt.datetime, days: list[float]) -> list[float]:
    """A certificate-style decay table: S_K(t) / S_K(ref) from the ICRP-107 half-life."""
    half_life = 73.827  # d, ICRP Publication 107 (the value in devices/data/tg43/ir192_decay.csv)
    return [math.exp(-math.log(2) * t / half_life) for t in days]


def test_hdr_session_decays_the_source_across_a_daylight_saving_change(
    plans: dict[str, PlanResult],
) -> None:
    d = plans["hdr"].delivery
    assert isinstance(d, HdrDelivery)
    madrid = ZoneInfo("Europe/Madrid")
    reference = dt.datetime(2026, 10, 20, 12, 0, tzinfo=madrid)  # CEST, UTC+2
    calibrated = d.model_copy(update={"strength_reference_utc": reference.isoformat()})
    # 25 October 2026 the clocks go back: a wall-clock difference would be 1 h off.
    treated = [dt.datetime(2026, 10, 30, 12, 0, tzinfo=madrid), reference + dt.timedelta(days=30)]
    # In UTC: Python subtracts datetimes of one tzinfo by wall clock, which is the trap here.
    utc = dt.UTC
    elapsed_d = [
        (t.astimezone(utc) - reference.astimezone(utc)).total_seconds() / 86400 for t in treated
    ]
    assert elapsed_d[0] == pytest.approx(10 + 1 / 24)  # one hour more than the calendar says
    for at, expected in zip(treated, _decay_table(reference, elapsed_d), strict=True):
        values = console_values(
            calibrated, TreatmentSession(at_utc=at), half_life_d=ir192_half_life_d()
        )
        assert values.factors[0].value == pytest.approx(expected, rel=1e-6)
        total = values.settings[-1]
        assert total.today == pytest.approx(d.total_time_s / expected, rel=1e-6)
    with pytest.raises(SessionError, match="before the source's calibration"):
        console_values(
            calibrated,
            TreatmentSession(at_utc=reference - dt.timedelta(days=1)),
            half_life_d=ir192_half_life_d(),
        )


def _hand_mu(plan: PlanResult, pressure_hpa: float) -> int:
    """The MU of the plan's own hand-calculation block at ``pressure_hpa``: dose / isodose /
    output factor as the block prints them, times P / P_ref of the monitor chamber."""
    lines = {line.quantity.strip(): line.value for line in plan.sections["mu_worksheet"].lines}
    dose_cgy = float(lines["dose D"].removesuffix(" cGy"))
    isodose = float(lines["isodose"].removesuffix(" %"))
    (of,) = [v for k, v in lines.items() if k.startswith("output factor OF")]
    reference = plan.delivery.reference_pressure_hpa
    assert reference is not None and plan.delivery.chamber_correction_mode == "pressure"
    mu = dose_cgy / (isodose / 100.0) / float(of.removesuffix(" cGy/MU"))
    assert lines["MU = reference MU x k_air, rounded"] == f"{plan.delivery.monitor_units} MU"
    return round(mu * pressure_hpa / reference)


def test_iort_console_prints_the_days_values(tmp_path: Path, plans: dict[str, PlanResult]) -> None:
    """The console's MU of the day equal the plan's own hand calculation at the day's pressure
    (the worksheet case 6 cm / 45 deg / 12 MeV, 1608 / 1743 MU, is tested in
    tests/electron/test_electron_console.py and test_electron_machine_data.py)."""
    plan = plans["electron"]
    (tmp_path / "plan.json").write_text(json.dumps(plan.to_json_dict()))
    expected = _hand_mu(plan, 1013.0)
    assert expected != plan.delivery.monitor_units  # the day's air changes the MU
    args = ["console", str(tmp_path), "--date", "2026-12-07T09:30+01:00", "--pressure-hpa", "1013"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["settings"][0]["today"] == expected
    assert out["factors"][0]["name"] == "air (monitor chamber)"
    text = runner.invoke(app, args)
    assert "EXAMPLE DATA" in text.stdout and str(expected) in text.stdout
    bad = runner.invoke(app, ["console", str(tmp_path), "--date", "2026-12-07T09:30"])
    assert bad.exit_code == 2 and "time zone" in bad.output
    missing = runner.invoke(app, ["console", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "cannot read" in missing.output


@pytest.mark.parametrize("technique", sorted(EXAMPLES))
def test_records_read_the_typed_delivery_as_they_read_older_plans(
    technique: str, plans: dict[str, PlanResult]
) -> None:
    from openiort.records.plan_data import planned_delivery

    plan_json = json.loads(json.dumps(plans[technique].to_json_dict()))
    typed = planned_delivery(plan_json)
    legacy = planned_delivery({k: v for k, v in plan_json.items() if k != "delivery"})
    assert typed.applicator == legacy.applicator
    assert typed.monitor_units == legacy.monitor_units
    assert typed.energy_mev == legacy.energy_mev
    assert typed.prescription_dose_gy == legacy.prescription_dose_gy
    if typed.time_s is not None:
        # Older plans kept the time rounded to 0.001 min (0.06 s); the typed one is exact.
        assert typed.time_s == pytest.approx(legacy.time_s, abs=0.031)
