"""Supplemental EBRT after IORT: TARGIT-A trial triggers and centre policies.

Triggers from shared/reference/clinical/evidence_notes.md 1.7: protocol (>= 4 nodes,
extranodal spread), Lancet 2010 (lobular), Mannheim policy (multifocality, LVI, nodal
invasion, EIC, ILC, margin < 1 cm), TARGIT-E protocol risk factors.
"""

from __future__ import annotations

import pytest
import yaml
from clinical_vignettes import INVASIVE, make_case

from openiort.clinical.pathology import (
    PathologyMissingError,
    decide_ebrt,
    load_policy,
    review_pathology,
)
from openiort.clinical.rules import GuidelineError

MANNHEIM = load_policy("Mannheim-2019")
WIDE = {"pathology.margin_mm": 12}  # clear of the Mannheim 1 cm margin trigger


def ids(decision) -> set[str]:
    return {r.rule_id for r in decision.reasons}


def test_trial_triggers_alone_keep_a_textbook_case_on_iort_alone():
    d = decide_ebrt(make_case(INVASIVE))
    assert d.decision == "iort-alone"
    assert {"targita-ebrt-nodes4", "targita-ebrt-ene", "targita-ebrt-lobular"} <= ids(d)
    assert any("No centre policy given" in n for n in d.notes)
    assert any("21.6 %" in n for n in d.notes)  # the prepathology stratum's rate


@pytest.mark.parametrize(
    ("changes", "policy", "decision", "rule"),
    [
        ({"pathology.histology": "lobular"}, None, "add-ebrt", "targita-ebrt-lobular"),
        (
            {"pathology.nodal_stage": "pN2a", "pathology.positive_nodes": 5},
            None,
            "add-ebrt",
            "targita-ebrt-nodes4",
        ),
        (
            {"pathology.nodal_stage": "pN2a", "pathology.positive_nodes": None},
            None,
            "add-ebrt",
            "targita-ebrt-nodes4",
        ),
        (
            {
                "pathology.extranodal_extension": True,
                "pathology.nodal_stage": "pN1a",
                "pathology.positive_nodes": 1,
            },
            None,
            "add-ebrt",
            "targita-ebrt-ene",
        ),
        (
            {"pathology.nodal_stage": "pN1a", "pathology.positive_nodes": 2},
            None,
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


def test_missing_pathology_fields_give_insufficient_data_unless_a_trigger_holds():
    d = decide_ebrt(make_case(INVASIVE, {"pathology.extranodal_extension": None}))
    assert d.decision == "insufficient-data"
    assert d.missing == ("pathology.extranodal_extension",)
    lobular = decide_ebrt(
        make_case(
            INVASIVE, {"pathology.extranodal_extension": None, "pathology.histology": "lobular"}
        )
    )
    assert lobular.decision == "add-ebrt"


def test_er_negative_is_an_advisory_note_not_a_trigger():
    d = decide_ebrt(make_case(INVASIVE, {"preoperative.er_status": "negative"}))
    assert d.decision == "iort-alone"
    assert any("targita-tool-er" in n for n in d.notes)


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


def _bundled_text(name: str) -> str:
    from importlib import resources

    return resources.files("openiort.clinical").joinpath(f"policies/{name}").read_text()
