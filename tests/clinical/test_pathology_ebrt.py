"""Supplemental EBRT after IORT: the shipped trial and centre policies, a department's own.

Triggers from shared/reference/clinical/evidence_notes.md 1.7: protocol (>= 4 nodes,
extranodal spread), Lancet 2010 (lobular), Mannheim policy (multifocality, LVI, nodal
invasion, EIC, ILC, margin < 1 cm), TARGIT-E protocol risk factors. Without a chosen policy
openiort's safe default decides (test_safe_default.py).
"""

from __future__ import annotations

import pytest
import yaml
from clinical_vignettes import INVASIVE, make_case

from openiort.clinical.pathology import (
    SAFE_DEFAULT_POLICY_ID,
    PathologyMissingError,
    PolicyError,
    decide_ebrt,
    load_policy,
    review_pathology,
)
from openiort.clinical.rules import GuidelineError
from openiort.errors import OpenIortInputError

MANNHEIM = load_policy("Mannheim-2019")
TARGIT = load_policy("TARGIT-A-risk-adapted")
WIDE = {"pathology.margin_mm": 12}  # clear of the Mannheim 1 cm margin trigger


def ids(decision) -> set[str]:
    return {r.rule_id for r in decision.reasons}


def test_trial_triggers_alone_keep_a_textbook_case_on_iort_alone():
    d = decide_ebrt(make_case(INVASIVE), TARGIT)
    assert d.decision == "iort-alone"
    assert {"targita-ebrt-nodes4", "targita-ebrt-ene", "targita-ebrt-lobular"} <= ids(d)
    assert [v.guideline for v in d.verdicts] == ["TARGIT-A-risk-adapted"]  # not twice
    assert not d.safe_default and d.decided_by[0]["policy_type"] == "trial-protocol"
    # the margin of 5 mm is under the 1 cm of the published TARGIT policies: the default
    # would ask for a discussion, and says so beside the chosen policy's answer
    assert d.safe_default_decision == "discuss"
    assert any("safe default" in n and "safe-xray-margin-1cm" in n for n in d.notes)
    assert any("21.6 %" in n for n in d.notes)  # the prepathology stratum's rate


def test_without_a_policy_the_safe_default_decides():
    d = decide_ebrt(make_case(INVASIVE))
    assert d.decision == "discuss"
    assert d.safe_default and [v.guideline for v in d.verdicts] == [SAFE_DEFAULT_POLICY_ID]
    assert any("project default, not a published policy" in n for n in d.notes)
    same = decide_ebrt(make_case(INVASIVE), load_policy(SAFE_DEFAULT_POLICY_ID))
    assert same.to_dict() == d.to_dict()


@pytest.mark.parametrize(
    ("changes", "policy", "decision", "rule"),
    [
        ({"pathology.histology": "lobular"}, TARGIT, "add-ebrt", "targita-ebrt-lobular"),
        (
            {"pathology.nodal_stage": "pN2a", "pathology.positive_nodes": 5},
            TARGIT,
            "add-ebrt",
            "targita-ebrt-nodes4",
        ),
        (
            {"pathology.nodal_stage": "pN2a", "pathology.positive_nodes": None},
            TARGIT,
            "add-ebrt",
            "targita-ebrt-nodes4",
        ),
        (
            {
                "pathology.extranodal_extension": True,
                "pathology.nodal_stage": "pN1a",
                "pathology.positive_nodes": 1,
            },
            TARGIT,
            "add-ebrt",
            "targita-ebrt-ene",
        ),
        (
            {"pathology.nodal_stage": "pN1a", "pathology.positive_nodes": 2},
            TARGIT,
            "iort-alone",
            "targita-ebrt-nodes4",
        ),
        ({"pathology.margin_mm": 5}, MANNHEIM, "add-ebrt", "targita-ebrt-margin"),
        ({"pathology.margin_mm": 10}, MANNHEIM, "iort-alone", "targita-ebrt-margin"),
        (
            {**WIDE, "pathology.nodal_stage": "pN1mi", "pathology.positive_nodes": None},
            MANNHEIM,
            "add-ebrt",
            "targita-ebrt-nodal",
        ),
        (
            {**WIDE, "pathology.nodal_stage": "pN0(i+)"},
            MANNHEIM,
            "iort-alone",
            "targita-ebrt-nodal",
        ),
        ({**WIDE, "pathology.lvsi": "focal"}, MANNHEIM, "add-ebrt", "targita-ebrt-lvi"),
        (
            {**WIDE, "pathology.eic": True, "pathology.eic_size_mm": 8},
            MANNHEIM,
            "add-ebrt",
            "targita-ebrt-eic",
        ),
        (
            {
                **WIDE,
                "pathology.focality": "multifocal_within_20mm",
                "pathology.multifocal_total_size_mm": 18,
            },
            MANNHEIM,
            "add-ebrt",
            "targita-ebrt-multifocal",
        ),
    ],
    ids=[
        "lobular",
        "pN2a-5-nodes",
        "pN2a-count-unknown",
        "extranodal",
        "pN1a-2-nodes",
        "mannheim-margin-5mm",
        "mannheim-margin-10mm",
        "mannheim-pN1mi",
        "mannheim-itc",
        "mannheim-lvi",
        "mannheim-eic",
        "mannheim-multifocal",
    ],
)
def test_triggers(changes, policy, decision, rule):
    d = decide_ebrt(make_case(INVASIVE, changes), policy)
    assert d.decision == decision
    assert rule in ids(d)


def test_centre_policy_decisions_are_provisional_single_centre_rules():
    d = decide_ebrt(make_case(INVASIVE, {"pathology.margin_mm": 5}), MANNHEIM)
    assert d.provisional
    assert any("verified_centre_policy" in w for w in d.provisional_why)
    assert [v.guideline for v in d.verdicts] == ["TARGIT-A-risk-adapted", "Mannheim-2019"]


@pytest.mark.parametrize("policy", [None, TARGIT], ids=["safe-default", "targit-a"])
def test_missing_pathology_fields_give_insufficient_data_unless_a_trigger_holds(policy):
    d = decide_ebrt(make_case(INVASIVE, {"pathology.extranodal_extension": None}), policy)
    assert d.decision == "insufficient-data"
    assert d.missing == ("pathology.extranodal_extension",)
    lobular = decide_ebrt(
        make_case(
            INVASIVE, {"pathology.extranodal_extension": None, "pathology.histology": "lobular"}
        ),
        policy,
    )
    assert lobular.decision == "add-ebrt"


def test_er_negative_is_an_advisory_note_of_targit_a_and_discuss_by_default():
    case = make_case(INVASIVE, {"preoperative.er_status": "negative", **WIDE})
    d = decide_ebrt(case, TARGIT)
    assert d.decision == "iort-alone"
    assert any("targita-tool-er" in n for n in d.notes)
    assert d.safe_default_decision == "discuss"
    assert decide_ebrt(case).decision == "discuss"


def test_a_centre_policy_for_another_technique_is_applied_alone_with_a_note():
    electron = {"technique": "electron", "timing": "during_lumpectomy", "prescription_gy": 21}
    d = decide_ebrt(make_case(INVASIVE, {"intent": electron}), MANNHEIM)
    assert [v.guideline for v in d.verdicts] == ["Mannheim-2019"]  # no TARGIT-A triggers
    assert any("written for 50 kV x-ray IORT" in n for n in d.notes)
    assert not any("21.6 %" in n for n in d.notes)  # a TARGIT-A (x-ray) figure


def test_targit_e_policy_size_trigger_is_provisional():
    policy = load_policy("targit-e-protocol")
    d = decide_ebrt(make_case(INVASIVE, {"pathology.size_mm": 25, **WIDE}), policy)
    assert d.decision == "add-ebrt"
    assert "targite-ebrt-size" in ids(d)
    assert any("targite-ebrt-size" in w for w in d.provisional_why)


def test_second_procedure_note_and_no_pathology_error():
    d = decide_ebrt(make_case(INVASIVE, {"intent.timing": "second_procedure"}))
    assert any("second procedure" in n for n in d.notes)
    with pytest.raises(PathologyMissingError, match="no pathology block"):
        decide_ebrt(make_case(INVASIVE, {"pathology": None}))


def test_review_re_evaluates_the_apbi_guidelines_on_final_pathology():
    review = review_pathology(make_case(INVASIVE, {"pathology.size_mm": 25}), MANNHEIM)
    groups = {v.guideline: v.group for v in review.verdicts}
    assert groups == {
        "ABS-2013": "appropriate",
        "ABS-2018": "appropriate",
        "ASTRO-2009": "cautionary",
        "ASTRO-2017": "cautionary",
        "ASTRO-2024": "conditionally-recommended",
        "GEC-ESTRO-2010": "low-risk",
    }
    assert all(v.basis == "pathology" for v in review.verdicts)
    assert review.to_dict()["supplemental_ebrt"]["decision"] == "add-ebrt"


def test_a_clinic_policy_file_is_loaded_and_checked(tmp_path):
    data = yaml.safe_load(_bundled_text("mannheim-2019.yaml"))
    data["id"] = "Our-Centre-2026"
    data["rules"] = [r for r in data["rules"] if r["id"] != "targita-ebrt-margin"]
    path = tmp_path / "our-centre.yaml"
    path.write_text(yaml.safe_dump(data))
    ours = load_policy(path)
    assert ours.id == "Our-Centre-2026"
    d = decide_ebrt(make_case(INVASIVE, {"pathology.margin_mm": 5}), ours)
    assert d.decision == "iort-alone"  # our centre has no margin trigger

    data["kind"] = "apbi"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(GuidelineError, match="needs kind: ebrt_policy"):
        load_policy(path)
    with pytest.raises(GuidelineError, match="no such policy"):
        load_policy(tmp_path / "absent.yaml")


def _department_policy() -> dict:
    data = yaml.safe_load(_bundled_text("mannheim-2019.yaml"))
    data["id"] = "Our-Centre-2026"
    data["title"] = "Our centre's policy"
    data.pop("policy_type")
    return data


def test_a_department_policy_with_a_discuss_group_is_loaded(tmp_path):
    data = _department_policy()
    data["verdict_groups"] = ["add-ebrt", "discuss", "iort-alone"]
    data["rule_groups"] = ["trigger", "discuss"]
    lobular = next(r for r in data["rules"] if r["id"] == "mannheim-ebrt-lobular")
    lobular["group"] = "discuss"
    data["decision"].insert(1, {"group": "discuss", "when": {"any": {"group": "discuss"}}})
    path = tmp_path / "ours.yaml"
    path.write_text(yaml.safe_dump(data))
    ours = load_policy(path)
    assert ours.policy_type == "department"  # not stated: a department's own
    d = decide_ebrt(make_case(INVASIVE, {**WIDE, "pathology.histology": "lobular"}), ours)
    # the TARGIT-A trial-wide lobular trigger still applies beside a TARGIT centre's policy
    assert d.decision == "add-ebrt"
    assert [p["policy_type"] for p in d.decided_by] == ["trial-protocol", "department"]
    only = decide_ebrt(
        make_case(INVASIVE, {**WIDE, "pathology.histology": "lobular", "intent": _HDR}), ours
    )
    assert only.decision == "discuss" and only.safe_default_decision == "discuss"


_HDR = {"technique": "hdr", "timing": "during_lumpectomy", "prescription_gy": 7}


def test_a_malformed_department_policy_reports_every_problem(tmp_path):
    data = _department_policy()
    data["id"] = "Mannheim-2019"  # a shipped policy's id
    data["policy_type"] = "project-default"
    data["verdict_groups"] = ["add-ebrt", "maybe"]
    data["rules"][0]["operator"] = "=>"
    data["rules"][1]["variable"] = "margin_width"
    data["rules"][2]["verification"] = "checked"
    path = tmp_path / "ours.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    error = err.value
    assert isinstance(error, OpenIortInputError)
    assert error.source == str(path) and str(path) in str(error)
    problems = error.problems
    expected = [
        "verdict_groups [add-ebrt, iort-alone] or [add-ebrt, discuss, iort-alone]",
        "policy_type project-default is openiort's own safe default",
        "id 'Mannheim-2019' is the id of a shipped policy",
        "rule 'targita-ebrt-eic': unknown operator '=>'",
        "rule 'targita-ebrt-margin': unknown variable 'margin_width'",
        "rule 'targita-ebrt-lvi': unknown verification level 'checked'",
        "decision group 'iort-alone' is not in verdict_groups",
    ]
    assert len(problems) == len(expected), problems
    for text in expected:
        assert sum(text in p for p in problems) == 1, (text, problems)
    assert not any(p.startswith(str(path)) for p in problems)  # the file is the source


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules: [unclosed\n", "not valid YAML"),
        ("- a list\n", "must be a mapping"),
    ],
)
def test_an_unreadable_department_policy_is_one_clear_problem(tmp_path, text, message):
    path = tmp_path / "ours.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert len(err.value.problems) == 1 and message in err.value.problems[0]


def _bundled_text(name: str) -> str:
    from importlib import resources

    return resources.files("openiort.clinical").joinpath(f"policies/{name}").read_text()
