"""The plan-report section and the three commands, through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import jinja2
import pytest
import typer
import yaml
from clinical_vignettes import INVASIVE, make_case, variant
from typer.testing import CliRunner

import openiort
from openiort.clinical.commands import eligibility, evidence, pathology
from openiort.clinical.pathology import load_policy
from openiort.clinical.section import build_clinical_section

app = typer.Typer()
app.command("eligibility")(eligibility)
app.command("pathology")(pathology)
app.command("evidence")(evidence)
runner = CliRunner()

REPORT_TEMPLATES = Path(openiort.__file__).parent / "report" / "templates"


def write_case(tmp_path: Path, data: dict, name: str = "case.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def render_section(section) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(REPORT_TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    return env.get_template("sections/clinical.html").render(section=section)


def test_section_collects_verdicts_ebrt_evidence_and_burden():
    section = build_clinical_section(
        make_case(INVASIVE), centre_policy=load_policy("Mannheim-2019")
    )
    assert len(section.verdicts) == 10
    assert section.supplemental_ebrt is not None
    assert section.supplemental_ebrt.decision == "add-ebrt"  # margin 5 mm < 1 cm (Mannheim)
    assert {p["field"] for p in section.pending_fields} >= {"preoperative.bilateral_cancer"}
    data = json.loads(json.dumps(section.to_dict()))
    assert data["notice"] == openiort.RESEARCH_NOTICE
    assert data["verdicts"][0]["reasons"][0].keys() >= {"rule_id", "text", "source"}


def test_section_before_pathology_has_no_ebrt_decision():
    section = build_clinical_section(make_case(INVASIVE, {"pathology": None}))
    assert section.supplemental_ebrt is None
    html = render_section(section)
    assert "Final pathology not yet recorded" in html


def test_template_renders_the_dataclass_and_its_json_form_alike():
    section = build_clinical_section(make_case(INVASIVE))
    from_object = render_section(section)
    from_json = render_section(json.loads(json.dumps(section.to_dict())))
    assert from_object == from_json
    for v in section.verdicts:
        assert v.guideline in from_object
    assert "astro17-suit-margin" in from_object
    assert "2.11 %" in from_object and "[recalled]" in from_object
    assert openiort.RESEARCH_NOTICE in from_object


def test_eligibility_json_has_the_issue_schema(tmp_path):
    path = write_case(tmp_path, INVASIVE)
    result = runner.invoke(
        app,
        [
            "eligibility",
            str(path),
            "--json",
            "--fact",
            "preoperative.bilateral_cancer=false",
            "--fact",
            "patient.prior_ipsilateral_cancer_or_rt=no",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["case_id"] == "VIG-INV"
    by_id = {v["guideline"]: v for v in data["verdicts"]}
    for v in data["verdicts"]:
        assert v.keys() >= {
            "guideline",
            "group",
            "reasons",
            "missing",
            "iort_supported",
            "provisional",
        }
        for r in v["reasons"]:
            assert r.keys() >= {"rule_id", "text", "source"}
    assert by_id["TARGIT-A"]["group"] == "eligible"  # the pending fields came as --fact
    assert by_id["ASTRO-2024"]["iort_supported"] is False
    assert by_id["ASTRO-2024"]["provisional"] is True


def test_eligibility_table(tmp_path):
    result = runner.invoke(app, ["eligibility", str(write_case(tmp_path, INVASIVE))])
    assert result.exit_code == 0
    assert "ASTRO-2017" in result.stdout and "suitable" in result.stdout
    flat = " ".join(result.stdout.split())
    assert "--fact" in flat and "bilateral_cancer" in flat


def test_bad_case_exits_2_with_one_line_per_problem(tmp_path):
    bad = variant(INVASIVE, {"patient.age_years": 7, "pathology.margin": 3})
    result = runner.invoke(app, ["eligibility", str(write_case(tmp_path, bad))])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2
    assert any("patient.age_years" in line for line in lines)
    assert any("pathology.margin" in line for line in lines)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eligibility", "absent.yaml"], "cannot read the file"),
        (["eligibility", "{case}", "--fact", "patient.age_years=50"], "--fact"),
        (["pathology", "{case}", "--policy", "no-such-policy"], "no such policy"),
        (["pathology", "{nopath}"], "no pathology block"),
    ],
    ids=["missing-file", "bad-fact", "bad-policy", "no-pathology"],
)
def test_input_errors_exit_2(tmp_path, args, message):
    case = write_case(tmp_path, INVASIVE)
    nopath = write_case(tmp_path, variant(INVASIVE, {"pathology": None}), "nopath.yaml")
    args = [a.format(case=case, nopath=nopath) for a in args]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_contradictory_case_exits_2(tmp_path):
    bad = variant(INVASIVE, {"pathology.nodal_stage": "pN2a"})  # with positive_nodes 0
    result = runner.invoke(app, ["eligibility", str(write_case(tmp_path, bad))])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {tmp_path / 'case.yaml'}: ")
    assert "pathology.positive_nodes" in result.stderr


def test_pathology_command(tmp_path):
    path = write_case(tmp_path, INVASIVE)
    result = runner.invoke(app, ["pathology", str(path), "--json", "--policy", "Mannheim-2019"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["supplemental_ebrt"]["decision"] == "add-ebrt"
    assert [p["guideline"] for p in data["supplemental_ebrt"]["policies"]] == [
        "TARGIT-A-risk-adapted",
        "Mannheim-2019",
    ]
    assert data["supplemental_ebrt"]["safe_default"] is False
    assert data["supplemental_ebrt"]["safe_default_decision"] == "discuss"
    table = runner.invoke(app, ["pathology", str(path)])
    assert table.exit_code == 0
    flat = " ".join(table.stdout.split())
    # no policy chosen: the margin of 5 mm is under the 1 cm of the published TARGIT policies
    assert "Supplemental whole-breast EBRT: discuss" in flat
    assert (
        "openiort-safe-default (openiort's safe default: a project default, not a published" in flat
    )


ISSUE_CASE = variant(
    INVASIVE,
    {
        "pathology.grade": 3,
        "pathology.margin_mm": 0,
        "pathology.eic": True,
        "pathology.eic_size_mm": 25,
        "pathology.lvsi": "extensive",
        "preoperative.biopsy_grade": 3,
    },
)


def test_pathology_command_on_the_issue_case_adds_ebrt_by_default(tmp_path):
    path = write_case(tmp_path, ISSUE_CASE)
    table = runner.invoke(app, ["pathology", str(path)])
    assert table.exit_code == 0, table.output
    flat = " ".join(table.stdout.split())
    assert "Supplemental whole-breast EBRT: add-ebrt" in flat
    assert "add whole-breast EBRT (without boost)" in flat
    assert "iort-alone" not in flat.split("Supplemental whole-breast EBRT:")[1]
    assert "project default, not a published policy" in flat
    data = json.loads(runner.invoke(app, ["pathology", str(path), "--json"]).stdout)
    ebrt = data["supplemental_ebrt"]
    assert ebrt["decision"] == "add-ebrt" and ebrt["safe_default"] is True
    assert ebrt["decided_by"][0]["policy_type"] == "project-default"
    met = {r["rule_id"] for r in ebrt["reasons"] if r["status"] == "met"}
    assert {"safe-margin-positive", "safe-eic", "safe-lvsi"} <= met
    groups = {v["guideline"]: v["group"] for v in data["verdicts"]}
    assert groups["ASTRO-2017"] == "unsuitable" and groups["GEC-ESTRO-2010"] == "high-risk"
    mannheim = runner.invoke(app, ["pathology", str(path), "--json", "--policy", "Mannheim-2019"])
    assert json.loads(mannheim.stdout)["supplemental_ebrt"]["decision"] == "add-ebrt"


def test_a_malformed_department_policy_exits_2_with_one_line_per_problem(tmp_path):
    case = write_case(tmp_path, INVASIVE)
    policy = yaml.safe_load(
        (Path(openiort.__file__).parent / "clinical/policies/mannheim-2019.yaml").read_text()
    )
    policy["id"] = "Our-Centre"
    policy["rules"][0]["operator"] = "=>"
    policy["rules"][1]["value"] = "ten"
    policy["kind"] = "apbi"
    path = tmp_path / "ours.yaml"
    path.write_text(yaml.safe_dump(policy))
    result = runner.invoke(app, ["pathology", str(case), "--policy", str(path)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 4, lines  # kind, policy_type with kind apbi, operator, value
    assert all(line.startswith(f"error: {path}: ") for line in lines)
    assert any("needs kind: ebrt_policy" in line for line in lines)
    assert any("unknown operator '=>'" in line for line in lines)
    assert any("must be a number" in line for line in lines)


def test_evidence_command_writes_the_summary_and_json(tmp_path):
    path = write_case(tmp_path, INVASIVE)
    out = tmp_path / "out"
    result = runner.invoke(app, ["evidence", str(path), "--out", str(out), "--distance-km", "30"])
    assert result.exit_code == 0, result.output
    html = (out / "patient-summary.html").read_text()
    assert openiort.PATIENT_NOTICE in html
    data = json.loads((out / "evidence.json").read_text())
    assert data["evidence"]["trial"] == "TARGIT-A"
    assert data["burden"]["schedules"][0]["travel"]["trips"] == 31
    assert "TARGIT-A" in result.stdout
