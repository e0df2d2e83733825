"""GEC-ESTRO 2010 and ABS 2013/2018 verdicts on clinical vignettes.

Expected groups from the tables in shared/reference/clinical/evidence_notes.md 1.3-1.4
(Polgar et al. Radiother Oncol 2010; Shah et al. Brachytherapy 2013 and the 2018 update).
"""

from __future__ import annotations

import pytest
from clinical_vignettes import DCIS, INVASIVE, reason_ids, verdict_of

GEC = [
    ("textbook-62y", INVASIVE, {}, "low-risk", {"gec-low-age", "gec-low-pn"}),
    (
        "age51-size30-margin2",
        INVASIVE,
        {"patient.age_years": 51, "pathology.size_mm": 30, "pathology.margin_mm": 2},
        "low-risk",
        {"gec-low-age", "gec-low-size", "gec-low-margin"},
    ),
    ("itc-pN0(i+)", INVASIVE, {"pathology.nodal_stage": "pN0(i+)"}, "low-risk", {"gec-low-pn"}),
    (
        "age50-boundary",
        INVASIVE,
        {"patient.age_years": 50},
        "intermediate-risk",
        {"gec-low-age", "gec-int-age"},
    ),
    ("age45", INVASIVE, {"patient.age_years": 45}, "intermediate-risk", {"gec-int-age"}),
    (
        "lobular",
        INVASIVE,
        {"pathology.histology": "lobular"},
        "intermediate-risk",
        {"gec-low-hist", "gec-int-hist"},
    ),
    (
        "close-margin-1.5",
        INVASIVE,
        {"pathology.margin_mm": 1.5},
        "intermediate-risk",
        {"gec-low-margin", "gec-int-margin"},
    ),
    (
        "pN1mi-by-ALND",
        INVASIVE,
        {
            "pathology.nodal_stage": "pN1mi",
            "pathology.positive_nodes": 1,
            "pathology.nodal_surgery": "ALND",
        },
        "intermediate-risk",
        {"gec-int-pn"},
    ),
    (
        "multifocal-within-20mm",
        INVASIVE,
        {"pathology.focality": "multifocal_within_20mm", "pathology.multifocal_total_size_mm": 18},
        "intermediate-risk",
        {"gec-int-focal"},
    ),
    ("pure-dcis", DCIS, {}, "intermediate-risk", {"gec-low-dcis", "gec-int-dcis"}),
    ("age40-boundary", INVASIVE, {"patient.age_years": 40}, "high-risk", {"gec-high-age"}),
    ("size31", INVASIVE, {"pathology.size_mm": 31}, "high-risk", {"gec-high-size"}),
    ("size35", INVASIVE, {"pathology.size_mm": 35}, "high-risk", {"gec-high-size"}),
    ("focal-lvi", INVASIVE, {"pathology.lvsi": "focal"}, "high-risk", {"gec-high-lvi"}),
    (
        "eic",
        INVASIVE,
        {"pathology.eic": True, "pathology.eic_size_mm": 12},
        "high-risk",
        {"gec-high-eic"},
    ),
    (
        "no-axillary-staging",
        INVASIVE,
        {
            "pathology.nodal_stage": "pNx",
            "pathology.positive_nodes": None,
            "pathology.nodal_surgery": "none",
        },
        "high-risk",
        {"gec-high-pn"},
    ),
    ("positive-margin", INVASIVE, {"pathology.margin_mm": 0}, "high-risk", {"gec-high-margin"}),
]


@pytest.mark.parametrize(
    ("base", "changes", "group", "rules"), [c[1:] for c in GEC], ids=[c[0] for c in GEC]
)
def test_gec_estro_groups(base, changes, group, rules):
    v = verdict_of("GEC-ESTRO-2010", base, changes)
    assert v.group == group
    assert rules <= reason_ids(v)


def test_gec_estro_age_50_is_marked_provisional_because_table_and_abstract_differ():
    # Polgar 2010: table "> 50 years", abstract "at least 50 years".
    v = verdict_of("GEC-ESTRO-2010", INVASIVE, {"patient.age_years": 50})
    assert v.provisional
    assert any("gec-low-age" in w and "50" in w for w in v.provisional_why)
    assert not verdict_of("GEC-ESTRO-2010", INVASIVE, {"patient.age_years": 51}).provisional


def test_gec_estro_missing_lvsi_blocks_low_risk_but_not_high_risk():
    open_ = verdict_of("GEC-ESTRO-2010", INVASIVE, {"pathology.lvsi": None})
    assert open_.group == "insufficient-data"
    assert open_.missing == ("pathology.lvsi",)
    high = verdict_of("GEC-ESTRO-2010", INVASIVE, {"pathology.lvsi": None, "pathology.size_mm": 35})
    assert high.group == "high-risk"


ABS13 = [
    ("textbook", INVASIVE, {}, "appropriate", {"abs13-age", "abs13-nodes"}),
    (
        "age50-size30",
        INVASIVE,
        {"patient.age_years": 50, "pathology.size_mm": 30},
        "appropriate",
        {"abs13-age", "abs13-size"},
    ),
    ("dcis-no-axillary-staging", DCIS, {}, "appropriate", {"abs13-hist", "abs13-size"}),
    (
        "close-margin-is-negative",
        INVASIVE,
        {"pathology.margin_mm": 0.5},
        "appropriate",
        {"abs13-margin"},
    ),
    ("age49", INVASIVE, {"patient.age_years": 49}, "not-appropriate", {"abs13-age"}),
    ("size31", INVASIVE, {"pathology.size_mm": 31}, "not-appropriate", {"abs13-size"}),
    (
        "pN1mi",
        INVASIVE,
        {"pathology.nodal_stage": "pN1mi", "pathology.positive_nodes": 1},
        "not-appropriate",
        {"abs13-nodes"},
    ),
    (
        "itc-pN0(i+)-is-node-negative",
        INVASIVE,
        {"pathology.nodal_stage": "pN0(i+)"},
        "appropriate",
        {"abs13-nodes"},
    ),
    ("ink-margin", INVASIVE, {"pathology.margin_mm": 0}, "not-appropriate", {"abs13-margin"}),
    ("lvsi", INVASIVE, {"pathology.lvsi": "extensive"}, "not-appropriate", {"abs13-lvsi"}),
]


@pytest.mark.parametrize(
    ("base", "changes", "group", "rules"), [c[1:] for c in ABS13], ids=[c[0] for c in ABS13]
)
def test_abs2013_groups(base, changes, group, rules):
    v = verdict_of("ABS-2013", base, changes)
    assert v.group == group
    assert rules <= reason_ids(v)
    assert not v.provisional


@pytest.mark.parametrize(
    ("changes", "group", "rules"),
    [
        ({}, "appropriate", {"abs18-age"}),
        ({"patient.age_years": 45}, "appropriate", {"abs18-age"}),
        ({"patient.age_years": 44}, "not-appropriate", {"abs18-age"}),
        ({"pathology.size_mm": 35}, "not-appropriate", {"abs18-size"}),
        ({"preoperative.er_status": "negative"}, "appropriate", {"abs18-er"}),
    ],
    ids=["textbook", "age45", "age44", "size35", "er-negative"],
)
def test_abs2018_groups_are_provisional_secondary_source(changes, group, rules):
    v = verdict_of("ABS-2018", INVASIVE, changes)
    assert v.group == group
    assert rules <= reason_ids(v)
    assert v.provisional
    assert any("verified_secondary" in w for w in v.provisional_why)


def test_abs2018_missing_er_cannot_change_the_verdict():
    # "ER positive or negative": both values satisfy the criterion.
    v = verdict_of("ABS-2018", INVASIVE, {"preoperative.er_status": None})
    assert v.group == "appropriate"
