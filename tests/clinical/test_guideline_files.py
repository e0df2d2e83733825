"""Guideline files: load-time validation names the file and the rule; bundled data integrity."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from openiort.clinical.rules import (
    GuidelineError,
    bundled_guidelines,
    bundled_policies,
    load_guideline,
)

# In-repo copy of the project's literature reference pack (tests/reference_data/README.md).
REFERENCE = Path(__file__).resolve().parents[1] / "reference_data/clinical/eligibility_rules.yaml"

MINIMAL = {
    "schema_version": 1,
    "id": "TEST-1",
    "title": "A test guideline",
    "citation": "Nobody et al. 2020",
    "file_version": 1,
    "kind": "apbi",
    "reads": "pathology",
    "verdict_groups": ["yes", "no"],
    "rule_groups": ["criteria"],
    "parameters": {"close_margin_below_mm": 2},
    "decision": [
        {"group": "yes", "when": {"all": {"group": "criteria"}}},
        {"group": "no", "when": "always"},
    ],
    "rules": [
        {
            "id": "t-age",
            "group": "criteria",
            "variable": "age_years",
            "operator": ">=",
            "value": 50,
            "text": "Age 50 or older",
            "source": "Nobody et al. 2020, table 1",
            "verification": "verified",
        },
        {
            "id": "t-margin",
            "group": "criteria",
            "variable": "margin_status",
            "operator": "==",
            "value": "negative",
            "text": "Negative margins",
            "source": "Nobody et al. 2020, table 1",
            "verification": "verified",
        },
    ],
}


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "test-guideline.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def with_rule_change(**change) -> dict:
    data = yaml.safe_load(yaml.safe_dump(MINIMAL))
    data["rules"][0].update(change)
    return data


def test_minimal_file_loads(tmp_path):
    path = write(tmp_path, MINIMAL)
    g = load_guideline(path)
    assert g.id == "TEST-1" and [r.id for r in g.rules] == ["t-age", "t-margin"]
    # The recorded hash is that of the file's bytes, so a plan can name the exact rule file.
    assert g.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"operator": "=>"}, "unknown operator '=>'"),
        ({"variable": "tumour_size"}, "unknown variable 'tumour_size'"),
        ({"value": "fifty"}, "must be a number"),
        ({"operator": "between", "value": [50]}, "needs [low, high]"),
        ({"operator": "between", "value": [60, 50]}, "low 60 > high 50"),
        ({"group": "criterion"}, "group 'criterion' is not in rule_groups"),
        ({"verification": "checked"}, "unknown verification level 'checked'"),
        ({"pathway": "lobular"}, "pathway must be any, invasive or dcis"),
        ({"source": ""}, "source must be a non-empty string"),
        ({"variable": "lvsi", "operator": "==", "value": "some"}, "is not a value of 'lvsi'"),
        ({"variable": "lvsi", "operator": "<", "value": 1}, "needs a numeric variable"),
        ({"variable": "brca_mutation", "operator": "==", "value": "yes"}, "true or false"),
        ({"colour": "red"}, "unknown key(s) ['colour']"),
    ],
)
def test_bad_rule_fails_at_load_naming_file_and_rule(tmp_path, change, message):
    path = write(tmp_path, with_rule_change(**change))
    with pytest.raises(GuidelineError) as err:
        load_guideline(path)
    text = str(err.value)
    assert str(path) in text
    assert "rule 't-age'" in text
    assert message in text


def test_every_problem_of_a_file_is_reported_once(tmp_path):
    data = with_rule_change(operator="=>")
    data["rules"][1].update(variable="tumour_size", verification="checked")
    data["decision"][0]["group"] = "maybe"
    data["colour"] = "red"
    with pytest.raises(GuidelineError) as err:
        load_guideline(write(tmp_path, data))
    problems = err.value.problems
    assert len(problems) == 5, problems
    assert all(p.startswith(str(tmp_path)) for p in problems)
    expected = [
        "unknown key(s) ['colour']",
        "rule 't-age': unknown operator '=>'",
        "rule 't-margin': unknown verification level 'checked'",
        "rule 't-margin': unknown variable 'tumour_size'",
        "decision group 'maybe'",
    ]
    for text in expected:
        assert sum(text in p for p in problems) == 1, text


def test_a_rule_names_the_techniques_it_applies_to(tmp_path):
    data = with_rule_change(techniques=["xray", "laser"])
    with pytest.raises(GuidelineError, match=r"rule 't-age': techniques must be"):
        load_guideline(write(tmp_path, data))
    data = with_rule_change(techniques=["electron"])
    g = load_guideline(write(tmp_path, data))
    assert g.rule("t-age").techniques == ("electron",)


def test_duplicate_rule_id_is_rejected(tmp_path):
    data = with_rule_change()
    data["rules"][1]["id"] = "t-age"
    with pytest.raises(GuidelineError, match=r"rule 't-age': duplicate rule id"):
        load_guideline(write(tmp_path, data))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["decision"].pop(), "must have `when: always`"),
        (lambda d: d["decision"][0].update(group="maybe"), "decision group 'maybe'"),
        (lambda d: d["decision"][0].update(when={"some": "criteria"}), "unknown condition 'some'"),
        (
            lambda d: d["decision"][0].update(when={"all": {"rules": ["t-ag"]}}),
            "unknown rule 't-ag'",
        ),
        (lambda d: d["decision"][0].update(when={"all": {"group": "crit"}}), "unknown rule group"),
        (lambda d: d.pop("parameters"), "needs the numeric parameter 'close_margin_below_mm'"),
        (lambda d: d.update(schema_version=2), "schema_version 2"),
        (lambda d: d.update(kind="advice"), "kind must be"),
        (lambda d: d.update(iort={"laser": {"supported_when": "always", "text": "x"}}), "laser"),
    ],
    ids=[
        "no-fallback",
        "bad-group",
        "bad-condition",
        "bad-rule-ref",
        "bad-group-ref",
        "missing-parameter",
        "schema",
        "kind",
        "iort-technique",
    ],
)
def test_bad_file_structure_fails_at_load(tmp_path, mutate, message):
    data = yaml.safe_load(yaml.safe_dump(MINIMAL))
    mutate(data)
    path = write(tmp_path, data)
    with pytest.raises(GuidelineError) as err:
        load_guideline(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_invalid_yaml_is_a_guideline_error(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("rules: [unclosed\n")
    with pytest.raises(GuidelineError, match="not valid YAML"):
        load_guideline(path)


def test_bundled_files_cover_the_issue_guidelines_once_each():
    ids = [g.id for g in bundled_guidelines()]
    assert sorted(ids) == sorted(
        [
            "ASTRO-2009",
            "ASTRO-2017",
            "ASTRO-2024",
            "GEC-ESTRO-2010",
            "ABS-2013",
            "ABS-2018",
            "TARGIT-A",
            "TARGIT-US",
            "TARGIT-E",
            "ELIOT",
        ]
    )
    assert {p.id: p.policy_type for p in bundled_policies()} == {
        "openiort-safe-default": "project-default",
        "TARGIT-A-risk-adapted": "trial-protocol",
        "Mannheim-2019": "centre-policy",
        "TARGIT-E-risk-adapted": "trial-protocol",
    }


def test_bundled_groups_match_the_issue():
    groups = {g.id: g.verdict_groups for g in bundled_guidelines()}
    assert groups["ASTRO-2017"] == ("suitable", "cautionary", "unsuitable")
    assert groups["GEC-ESTRO-2010"] == ("low-risk", "intermediate-risk", "high-risk")
    assert groups["ABS-2018"] == ("appropriate", "not-appropriate")
    assert groups["ELIOT"] == ("eligible", "not-eligible")
    assert set(groups["ASTRO-2024"]) >= {
        "recommended",
        "conditionally-recommended",
        "conditionally-not-recommended",
        "not-recommended",
    }


def test_bundled_rules_keep_the_compiled_sources_and_verification_levels():
    compiled = {r["id"]: r for r in yaml.safe_load(REFERENCE.read_text())["rules"]}
    used: set[str] = set()
    for g in bundled_guidelines() + bundled_policies():
        if g.policy_type == "project-default":
            continue  # openiort's own default cites its sources rule by rule (test_safe_default)
        for rule in g.rules:
            origin = rule.compiled.get("id", rule.id)
            assert origin in compiled, f"{g.path}: {rule.id} has no compiled origin"
            used.add(origin)
            src = compiled[origin]
            if rule.id == origin:  # same rule: same source and level, changes recorded
                assert " ".join(src["source"].split()) == rule.source, rule.id
                assert src["verification"] == rule.verification, rule.id
                for key in ("variable", "operator", "value"):
                    if rule.compiled:
                        assert rule.compiled[key] == src[key], rule.id
    # TARGIT-B is a boost trial (IORT plus whole-breast EBRT), not IORT alone: not encoded.
    assert set(compiled) - used == {"targitb-inc-young", "targitb-inc-older"}


def test_every_verdict_names_its_deciding_rules_or_its_missing_fields():
    from clinical_vignettes import DCIS, INVASIVE, TARGIT_A_FACTS, make_case

    from openiort.clinical.eligibility import evaluate_case

    variants = [
        (INVASIVE, {}),
        (INVASIVE, {"pathology": None}),
        (INVASIVE, {"pathology.margin_mm": None, "patient.age_years": 45}),
        (INVASIVE, {"pathology.size_mm": 25, "pathology.lvsi": "focal"}),
        (INVASIVE, {"patient.age_years": 38, "pathology.histology": None}),
        (DCIS, {}),
        (DCIS, {"pathology.size_mm": 35, "pathology.dcis_nuclear_grade": None}),
    ]
    for base, changes in variants:
        for v in evaluate_case(make_case(base, changes), TARGIT_A_FACTS):
            guideline = {g.id: g for g in bundled_guidelines()}[v.guideline]
            assert v.reasons, (v.guideline, changes)
            for r in v.reasons:
                assert guideline.rule(r.rule_id).source == r.source
            if v.group == "insufficient-data":
                assert v.missing and len(v.possible_groups) > 1
                assert {r.status for r in v.reasons} == {"unknown"}
            else:
                assert v.missing == () and v.possible_groups == (v.group,)
                assert "unknown" not in {r.status for r in v.reasons}
