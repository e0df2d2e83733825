"""A 10-fraction balloon course with the department's source: dwell table, quality indices,
RT Plan, radiobiology of the course, patient wording, and the inputs refused."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pydicom
import pytest
import yaml
from typer.testing import CliRunner

from openiort.case import CaseError, parse_case
from openiort.cli import app
from openiort.clinical.summary import build_patient_summary
from openiort.delivery import parse_delivery
from openiort.devices.hdr_source import load_hdr_source_record
from openiort.io.dicom_export import export_plan
from openiort.pipeline import plan_case
from openiort.planning.dwell_optimisation import HdrPlanError
from openiort.planning.hdr_case import plan_hdr_case
from openiort.radiobiology.course import course_bed
from openiort.report.outputs import write_plan_outputs
from openiort.session import make_session, session_console_values

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples/left_hdr_balloon_30mm.yaml"
RECORD = REPO / "tests/data/department_hdr_source/source.yaml"


def _case_data(**intent: Any) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    data["anatomy"]["cavity_diameter_mm"] = 40
    data["anatomy"]["skin_distance_mm"] = 7
    data["intent"].update({"prescription_gy": 3.4, "fractions": 10, **intent})
    return data


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The 4 cm balloon at 7 mm from the skin, 10 x 3.4 Gy, planned once with its outputs."""
    out = tmp_path_factory.mktemp("course")
    case = parse_case(_case_data())
    plan = plan_case(case, RECORD)
    written = write_plan_outputs(plan, out / "plan")
    plan_json = plan.to_json_dict()
    export_plan(plan.phantom, plan.dose, plan_json, out / "dicom", dose_bits=16)
    return {
        "case": case,
        "plan": plan,
        "json": plan_json,
        "report": written["report.html"].read_text(),
        "rp": out / "dicom" / "RP.dcm",
    }


def test_the_course_is_per_fraction_and_total(course: dict[str, Any]) -> None:
    pj = course["json"]
    assert pj["course"] == {
        "fractions": 10,
        "prescription_per_fraction_gy": 3.4,
        "total_prescription_gy": 34.0,
        "min_interval_h": 6.0,
    }
    delivery = parse_delivery(pj["delivery"])
    assert delivery.fractions == 10 and delivery.min_interval_h == 6.0
    assert any(d["field"] == "intent.min_interval_h" for d in pj["defaults_applied"])
    assert "3.4 Gy per fraction x 10 fractions = 34 Gy" in course["report"]


def test_the_plan_is_at_the_certificate_reference(course: dict[str, Any]) -> None:
    delivery = parse_delivery(course["json"]["delivery"])
    assert delivery.air_kerma_strength_u == 40700.0
    assert delivery.strength_reference_utc == "2026-11-02T11:00:00+00:00"
    assert delivery.device.status == "department"
    assert delivery.device.serial == "TEST-IR-0001"
    assert delivery.afterloader_name == "TEST AFTERLOADER"
    # 30 days after the reference the afterloader shows times longer by 2^(30/73.827)
    at = dt.datetime(2026, 12, 2, 11, 0, tzinfo=dt.UTC)
    values = session_console_values(delivery, make_session(at))
    factor = 2.0 ** (30.0 / 73.827)
    for setting, dwell in zip(values.settings, delivery.dwells, strict=False):
        assert setting.today == pytest.approx(dwell.time_s * factor, rel=1e-9)
    assert values.strength_today_u == pytest.approx(40700.0 / factor, rel=1e-9)


def _report_rows(report: str) -> list[tuple[int, float, float]]:
    table = report.split('<table class="dwell-table">', 1)[1].split("</table>", 1)[0]
    rows = re.findall(
        r"<tr><td>\d+</td><td>(\d+)</td><td>([\d.]+)</td><td>([\d.]+)</td></tr>", table
    )
    return [(int(c), float(p), float(t)) for c, p, t in rows]


def test_dwell_table_plan_json_report_and_rt_plan_agree(course: dict[str, Any]) -> None:
    table = course["json"]["dwell_table"]
    rows = [(r["channel"], r["from_tip_mm"], r["time_s"]) for r in table["rows"]]
    assert rows and _report_rows(course["report"]) == rows
    assert table["total_time_s"] == pytest.approx(sum(r[2] for r in rows), abs=1e-9)
    delivery = parse_delivery(course["json"]["delivery"])
    rp = pydicom.dcmread(course["rp"])
    from_rt: list[tuple[int, float, float]] = []
    for channel in rp.ApplicationSetupSequence[0].ChannelSequence:
        points = channel.BrachyControlPointSequence
        assert float(channel.ChannelLength) == delivery.channel_length_mm
        for arrive, leave in zip(points[::2], points[1::2], strict=True):
            from_tip = float(arrive.ControlPointRelativePosition) + delivery.tip_offset_mm
            time_s = float(leave.CumulativeTimeWeight) - float(arrive.CumulativeTimeWeight)
            from_rt.append((int(channel.ChannelNumber), round(from_tip, 1), round(time_s, 1)))
    assert from_rt == rows
    total = sum(float(c.ChannelTotalTime) for c in rp.ApplicationSetupSequence[0].ChannelSequence)
    assert total == pytest.approx(table["total_time_s"], abs=0.05)


def test_rt_plan_carries_the_source_record_and_geometry(course: dict[str, Any]) -> None:
    rp = pydicom.dcmread(course["rp"])
    source = rp.SourceSequence[0]
    assert source.SourceStrengthReferenceDate == "20261102"
    assert source.SourceStrengthReferenceTime == "110000"
    assert source.SourceSerialNumber == "TEST-IR-0001"
    assert source.SourceModelID == "GammaMed HDR 192"
    assert "GammaMed HDR 192Ir Plus" in source.SourceDescription
    assert rp.TreatmentMachineSequence[0].TreatmentMachineName == "TEST AFTERLOADER"
    assert rp.FractionGroupSequence[0].NumberOfFractionsPlanned == 10
    ref = rp.DoseReferenceSequence[0]
    assert ref.DoseReferenceStructureType == "COORDINATES"
    assert len(ref.DoseReferencePointCoordinates) == 3
    channel = rp.ApplicationSetupSequence[0].ChannelSequence[0]
    assert channel.SourceApplicatorID == "single_lumen_bal"
    assert channel.SourceApplicatorType == "FLEXIBLE"
    assert int(channel.TransferTubeNumber) == 1
    assert float(channel.TransferTubeLength) == 950.0


def test_rt_plan_passes_dciodvfy(course: dict[str, Any]) -> None:
    tool = shutil.which("dciodvfy")
    if tool is None:
        pytest.skip("dicom3tools' dciodvfy is not installed")
    result = subprocess.run([tool, str(course["rp"])], capture_output=True, text=True, timeout=120)
    errors = [x for x in (result.stdout + result.stderr).splitlines() if x.startswith("Error")]
    assert errors == []


def test_balloon_quality_of_a_4_cm_balloon_7_mm_from_the_skin(course: dict[str, Any]) -> None:
    quality = course["json"]["balloon_quality"]
    indices = {i["name"]: i for i in quality["indices"]}
    # The phantom places the balloon 7 mm under the skin (voxel size 1 mm: within half a voxel).
    assert indices["balloon-to-skin distance"]["value"] == pytest.approx(7.0, abs=0.5)
    assert indices["balloon-to-skin distance"]["limit_text"].startswith(">= 5 mm")
    coverage = indices["PTV_EVAL receiving >= 90 % of the prescription"]
    assert coverage["limit_text"] == ">= 90 %" and coverage["within"]
    assert indices["V150 (tissue, balloon excluded)"]["limit_text"] == "<= 50 cc"
    assert indices["V200 (tissue, balloon excluded)"]["limit_text"] == "<= 10 cc"
    assert indices["skin maximum"]["limit_text"] == "<= 145 %"
    assert indices["rib maximum"]["within"] is None
    for name in ("V150 (tissue, balloon excluded)", "V200 (tissue, balloon excluded)"):
        assert indices[name]["value"] == pytest.approx(
            course["json"]["hot_spots"][name[:4].lower() + "_cc"], abs=1e-3
        )
    # PTV_EVAL: a 1 cm shell round a 2 cm radius sphere holds 4/3 pi (3^3 - 2^3) = 79.6 cc;
    # the skin and chest-wall limits take some of it away.
    assert 40.0 < quality["ptv_eval_cc"] < 79.6
    assert 'id="balloon-quality"' in course["report"]


def test_the_course_radiobiology_matches_the_published_schedule(course: dict[str, Any]) -> None:
    """34 Gy in 10 fractions (3.4 Gy twice daily, at least 6 h apart): EQD2 for alpha/beta 4 Gy
    is 42 Gy (Hannoun-Levi JM et al. J Contemp Brachytherapy 2012;4:14-20, PMC3551373,
    abstract: "median EQD2 (alpha/beta = 4) was 42 Gy" without the dose gradient; rounded to
    the Gy, so +-0.5 Gy). Repair at 6 h with the tumour's 0.3 h half-time is complete to
    2^-20."""
    result = course_bed(3.4, 10, "breast_tumour_rmh_goc", 6.0)
    assert result.alpha_beta_gy == 4.0
    assert result.eqd2_gy == pytest.approx(42.0, abs=0.5)
    assert result.eqd2_gy == pytest.approx(34.0 * (3.4 + 4.0) / 6.0, rel=1e-5)
    section = course["json"]["radiobiology"]
    assert section["fractions"] == 10
    late = next(c for c in section["course"] if c["tissue"] == "breast_induration")
    # Late tissue (repair half-time 4 h): fractions 6 h apart leave repair incomplete.
    assert late["incomplete_repair_factor"] > 1.3
    assert late["bed_gy"] > late["bed_complete_repair_gy"]


def test_incomplete_repair_of_two_fractions_is_the_thames_term() -> None:
    # two fractions 6 h apart, one repair half-time of 4 h: theta = 2^-1.5
    r = course_bed(3.0, 2, "breast_induration", 6.0)
    theta = 2.0 ** (-6.0 / 4.0)
    expected = 2 * 3.0 + (3.0**2 / r.alpha_beta_gy) * (2 + 2 * theta)
    assert r.bed_gy == pytest.approx(expected, rel=1e-12)


def test_patient_summary_words_a_course_after_surgery(course: dict[str, Any]) -> None:
    summary = build_patient_summary(course["case"])
    assert "course of 10" in summary.what_is_planned
    assert "once, during your operation" not in summary.what_is_planned
    assert "after the operation" in summary.technique_name
    assert not any("before you wake up" in s for s in summary.on_the_day)


def test_balloon_under_the_protocol_minimum_is_refused() -> None:
    data = _case_data()
    data["anatomy"]["skin_distance_mm"] = 3
    with pytest.raises(HdrPlanError, match="under the protocol minimum 5 mm"):
        plan_hdr_case(parse_case(data))


def test_zero_fractions_is_refused() -> None:
    with pytest.raises(CaseError, match="fractions"):
        parse_case(_case_data(fractions=0))


def test_fractions_only_for_hdr() -> None:
    data = _case_data()
    data["intent"]["technique"] = "xray"
    with pytest.raises(CaseError, match="a course of fractions is for technique 'hdr'"):
        parse_case(data)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("source_model: GammaMed_HDR_Plus", "has no TG-43 data"),
        ("reference: 2026-11-02T12:00:00+01:00", "is in the future"),
    ],
)
def test_cli_refuses_a_bad_source_and_writes_nothing(
    tmp_path: Path, change: str, message: str
) -> None:
    folder = tmp_path / "src"
    folder.mkdir()
    text = RECORD.read_text()
    new = (
        "source_model: Not_A_Source"
        if change.startswith("source_model")
        else "reference: 2099-11-02T12:00:00+01:00"
    )
    (folder / "source.yaml").write_text(text.replace(change, new))
    runner = CliRunner()
    assert runner.invoke(app, ["devices", "manifest", str(folder)]).exit_code == 0
    case_path = tmp_path / "case.yaml"
    case_path.write_text(yaml.safe_dump(_case_data()))
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        ["plan", str(case_path), "--source-data", str(folder / "source.yaml"), "--out", str(out)],
    )
    assert result.exit_code == 2
    assert message in result.output
    assert not out.exists()


def test_cli_refuses_zero_fractions_and_writes_nothing(tmp_path: Path) -> None:
    case_path = tmp_path / "case.yaml"
    case_path.write_text(yaml.safe_dump(_case_data(fractions=0)))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["plan", str(case_path), "--out", str(out)])
    assert result.exit_code == 2
    assert "intent.fractions" in result.output
    assert not out.exists()


def test_the_record_is_refused_for_an_x_ray_file() -> None:
    xray = REPO / "tests/data/department_xray_source/source.yaml"
    from openiort.devices.hdr_source import HdrSourceRecordError

    with pytest.raises(HdrSourceRecordError, match="afterloader_name is required"):
        load_hdr_source_record(xray)


def test_the_surface_applicator_is_chosen_in_the_case_file() -> None:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    data["intent"]["hdr_applicator"] = "surface"
    plan = plan_hdr_case(parse_case(data))
    assert plan.details.applicator == "surface"
    assert plan.details.applicator_geometry["model"] == "surface"
    assert plan.details.balloon_quality is None  # the balloon protocol's indices do not apply
    assert len({d.channel for d in plan.delivery.dwells}) > 1
