"""ASTRO 2009, 2017 and 2024 verdicts on clinical vignettes, including every boundary.

Expected groups are read from the guideline tables as compiled in
shared/reference/clinical/evidence_notes.md section 1.1-1.2 (Smith 2009, Correa 2017,
Shaitelman 2024); each case states the rule ids that must appear among the reasons.
"""

from __future__ import annotations

import pytest
from clinical_vignettes import DCIS, INVASIVE, reason_ids, verdict_of

# --- ASTRO 2017 ---------------------------------------------------------------------------

ASTRO17 = [
    # id, base, changes, group, rules that must be among the reasons
    ("textbook-62y-14mm", INVASIVE, {}, "suitable", {"astro17-suit-age", "astro17-suit-margin"}),
    (
        "age50-size20-margin2-boundaries",
        INVASIVE,
        {"patient.age_years": 50, "pathology.size_mm": 20, "pathology.margin_mm": 2},
        "suitable",
        {"astro17-suit-age", "astro17-suit-size", "astro17-suit-margin", "astro17-suit-tstage"},
    ),
    (
        "itc-only-pN0(i+)",
        INVASIVE,
        {"pathology.nodal_stage": "pN0(i+)"},
        "suitable",
        {"astro17-suit-pn"},
    ),
    (
        "dcis-rtog9804-profile",
        DCIS,
        {},
        "suitable",
        {"astro17-suit-dcis-screen", "astro17-suit-dcis-grade", "astro17-suit-dcis-size"},
    ),
    (
        "dcis-25mm-boundary",
        DCIS,
        {"pathology.size_mm": 25, "pathology.margin_mm": 3},
        "suitable",
        {"astro17-suit-dcis-size", "astro17-suit-dcis-margin"},
    ),
    (
        "size25-cautionary",
        INVASIVE,
        {"pathology.size_mm": 25},
        "cautionary",
        {"astro17-suit-size", "astro17-caut-size", "astro17-caut-tstage"},
    ),
    (
        "size30-boundary-cautionary",
        INVASIVE,
        {"pathology.size_mm": 30},
        "cautionary",
        {"astro17-caut-size"},
    ),
    (
        "close-margin-1.9",
        INVASIVE,
        {"pathology.margin_mm": 1.9},
        "cautionary",
        {"astro17-suit-margin", "astro17-caut-margin"},
    ),
    (
        "er-negative",
        INVASIVE,
        {"preoperative.er_status": "negative"},
        "cautionary",
        {"astro17-suit-er", "astro17-caut-er"},
    ),
    (
        "lobular",
        INVASIVE,
        {"pathology.histology": "lobular"},
        "cautionary",
        {"astro17-suit-hist", "astro17-caut-hist"},
    ),
    (
        "age45-otherwise-suitable",
        INVASIVE,
        {"patient.age_years": 45},
        "cautionary",
        {"astro17-suit-age", "astro17-caut-age4049"},
    ),
    (
        "age40-boundary-otherwise-suitable",
        INVASIVE,
        {"patient.age_years": 40},
        "cautionary",
        {"astro17-caut-age4049"},
    ),
    (
        "dcis-28mm",
        DCIS,
        {"pathology.size_mm": 28},
        "cautionary",
        {"astro17-suit-dcis-size", "astro17-caut-dcis"},
    ),
    ("age39", INVASIVE, {"patient.age_years": 39}, "unsuitable", {"astro17-uns-age"}),
    (
        "age45-with-25mm-tumour",
        INVASIVE,
        {"patient.age_years": 45, "pathology.size_mm": 25},
        "unsuitable",
        {"astro17-caut-age4049", "astro17-suit-size"},
    ),
    (
        "age49-with-focal-lvsi",
        INVASIVE,
        {"patient.age_years": 49, "pathology.lvsi": "focal"},
        "unsuitable",
        {"astro17-caut-age4049", "astro17-suit-lvsi"},
    ),
    ("size35", INVASIVE, {"pathology.size_mm": 35}, "unsuitable", {"astro17-uns-size"}),
    ("size31", INVASIVE, {"pathology.size_mm": 31}, "unsuitable", {"astro17-uns-size"}),
    (
        "micromet-pN1mi",
        INVASIVE,
        {"pathology.nodal_stage": "pN1mi", "pathology.positive_nodes": 1},
        "unsuitable",
        {"astro17-uns-pn"},
    ),
    ("ink-margin", INVASIVE, {"pathology.margin_mm": 0}, "unsuitable", {"astro17-uns-margin"}),
    ("brca", INVASIVE, {"patient.brca_mutation": True}, "unsuitable", {"astro17-uns-brca"}),
    ("dcis-35mm", DCIS, {"pathology.size_mm": 35}, "unsuitable", {"astro17-uns-dcis"}),
]


@pytest.mark.parametrize(
    ("base", "changes", "group", "rules"),
    [c[1:] for c in ASTRO17],
    ids=[c[0] for c in ASTRO17],
)
def test_astro2017_groups_and_deciding_rules(base, changes, group, rules):
    v = verdict_of("ASTRO-2017", base, changes)
    assert v.group == group
    assert rules <= reason_ids(v)
    assert v.missing == ()


def test_astro2017_margin_2mm_is_the_exact_boundary():
    # Correa 2017 / Smith 2009: suitable "negative by at least 2 mm", close "< 2 mm".
    at = verdict_of("ASTRO-2017", INVASIVE, {"pathology.margin_mm": 2.0})
    below = verdict_of("ASTRO-2017", INVASIVE, {"pathology.margin_mm": 1.99})
    assert (at.group, below.group) == ("suitable", "cautionary")


def test_astro2017_pn1mi_verdict_is_provisional_because_placement_was_inferred():
    v = verdict_of(
        "ASTRO-2017", INVASIVE, {"pathology.nodal_stage": "pN1mi", "pathology.positive_nodes": 1}
    )
    assert v.group == "unsuitable"
    assert v.provisional
    assert any("verified_with_inference" in w and "astro17-uns-pn" in w for w in v.provisional_why)


def test_astro2017_missing_margin_blocks_an_otherwise_suitable_case():
    v = verdict_of("ASTRO-2017", INVASIVE, {"pathology.margin_mm": None})
    assert v.group == "insufficient-data"
    assert v.missing == ("pathology.margin_mm",)
    assert set(v.possible_groups) == {"unsuitable", "suitable", "cautionary"}
    assert {"astro17-suit-margin", "astro17-uns-margin"} <= reason_ids(v)


def test_astro2017_missing_age_blocks_suitable_but_not_unsuitable():
    blocked = verdict_of("ASTRO-2017", INVASIVE, {"patient.age_years": None})
    assert blocked.group == "insufficient-data"
    assert blocked.missing == ("patient.age_years",)
    # A 40 mm tumour is unsuitable at any age: the missing age cannot change the verdict.
    decided = verdict_of(
        "ASTRO-2017", INVASIVE, {"patient.age_years": None, "pathology.size_mm": 40}
    )
    assert decided.group == "unsuitable"
    assert decided.missing == ()


def test_astro2017_missing_lcis_cannot_change_a_verdict():
    # "Associated LCIS allowed": both values satisfy the rule.
    v = verdict_of("ASTRO-2017", INVASIVE, {"pathology.lcis_associated": None})
    assert v.group == "suitable"


def test_astro2017_missing_histology_leaves_the_pathway_open():
    v = verdict_of("ASTRO-2017", INVASIVE, {"pathology.histology": None})
    assert v.group == "insufficient-data"
    assert "pathology.histology" in v.missing


def test_astro2017_before_pathology_is_provisional_on_preoperative_findings():
    v = verdict_of("ASTRO-2017", INVASIVE, {"pathology": None})
    assert v.group == "insufficient-data"
    assert v.basis == "preoperative"
    assert v.provisional
    assert "final pathology is not yet known" in v.provisional_why[0]
    assert "pathology.margin_mm" in v.missing
    # Already unsuitable before surgery: imaging shows 40 mm.
    big = verdict_of(
        "ASTRO-2017", INVASIVE, {"pathology": None, "preoperative.imaging_size_mm": 40}
    )
    assert big.group == "unsuitable"
    assert "astro17-uns-size" in reason_ids(big)
    assert big.provisional and big.basis == "preoperative"


# ASTRO 2017 IORT statements (guidelinecentral.com/guideline/8687, evidence_notes.md 1.1).
@pytest.mark.parametrize(
    ("base", "changes", "extra", "supported", "rules"),
    [
        # electron IORT: invasive and suitable only
        (
            INVASIVE,
            {"intent.technique": "electron", "intent.dose_definition": None},
            None,
            True,
            {"astro17-iort-electron", "astro17-iort-invasive"},
        ),
        (
            INVASIVE,
            {
                "intent.technique": "electron",
                "intent.dose_definition": None,
                "pathology.size_mm": 25,
            },
            None,
            False,
            {"astro17-iort-electron"},
        ),
        # a suitable pure DCIS is eligible for APBI but not for IORT
        (DCIS, {}, None, False, {"astro17-iort-invasive"}),
        # low-energy x-ray IORT: only within a registry or trial
        (INVASIVE, {}, {"intent.within_registry_or_trial": True}, True, {"astro17-iort-registry"}),
        (
            INVASIVE,
            {},
            {"intent.within_registry_or_trial": False},
            False,
            {"astro17-iort-registry"},
        ),
        (
            INVASIVE,
            {"patient.age_years": 45},
            {"intent.within_registry_or_trial": True},
            False,
            {"astro17-iort-kv"},
        ),
    ],
    ids=[
        "electron-suitable",
        "electron-cautionary",
        "electron-suitable-dcis",
        "xray-registry",
        "xray-outside-registry",
        "xray-cautionary",
    ],
)
def test_astro2017_iort_statements(base, changes, extra, supported, rules):
    v = verdict_of("ASTRO-2017", base, changes, extra)
    assert v.iort_supported is supported
    assert rules <= {r.rule_id for r in v.iort_reasons}


def test_astro2017_xray_iort_without_registry_information_is_open():
    v = verdict_of("ASTRO-2017", INVASIVE)
    assert v.group == "suitable"
    assert v.iort_supported is None
    assert v.iort_missing == ("intent.within_registry_or_trial",)


def test_astro2017_says_nothing_about_hdr_iort_and_always_asks_for_counselling():
    v = verdict_of(
        "ASTRO-2017", INVASIVE, {"intent.technique": "hdr", "intent.dose_definition": None}
    )
    assert v.iort_supported is None
    assert "no statement" in v.iort_text
    assert any("astro17-iort-counsel" in n for n in v.notes)


# --- ASTRO 2009 (superseded) --------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "changes", "group", "rules"),
    [
        (INVASIVE, {"patient.age_years": 65}, "suitable", {"astro09-suit-age"}),
        (INVASIVE, {"patient.age_years": 60}, "suitable", {"astro09-suit-age"}),
        (INVASIVE, {"patient.age_years": 59}, "cautionary", {"astro09-caut-age"}),
        (INVASIVE, {"patient.age_years": 50}, "cautionary", {"astro09-caut-age"}),
        (DCIS, {"patient.age_years": 65}, "cautionary", {"astro09-dcis", "astro09-caut-dcis"}),
        (INVASIVE, {"patient.age_years": 49}, "unsuitable", {"astro09-uns-age"}),
        (
            DCIS,
            {"patient.age_years": 65, "pathology.size_mm": 35},
            "unsuitable",
            {"astro09-uns-dcis"},
        ),
    ],
    ids=["65y", "age60", "age59", "age50", "dcis-20mm", "age49", "dcis-35mm"],
)
def test_astro2009_groups(base, changes, group, rules):
    v = verdict_of("ASTRO-2009", base, changes)
    assert v.group == group
    assert rules <= reason_ids(v)
    assert v.iort_supported is None  # the 2009 statement has no IORT statements encoded


# --- ASTRO 2024 ---------------------------------------------------------------------------

ASTRO24 = [
    ("textbook", INVASIVE, {}, "recommended", {"astro24-rec-size", "astro24-nr-nodes"}),
    (
        "age40-size20",
        INVASIVE,
        {"patient.age_years": 40, "pathology.size_mm": 20},
        "recommended",
        {"astro24-rec-age", "astro24-rec-size"},
    ),
    (
        "itc-pN0(i+)",
        INVASIVE,
        {"pathology.nodal_stage": "pN0(i+)"},
        "recommended",
        {"astro24-nr-nodes"},
    ),
    ("dcis-low-18mm", DCIS, {}, "recommended", {"astro24-dcis-rec-size"}),
    (
        "grade3",
        INVASIVE,
        {"pathology.grade": 3},
        "conditionally-recommended",
        {"astro24-cond-grade"},
    ),
    (
        "er-negative",
        INVASIVE,
        {"preoperative.er_status": "negative"},
        "conditionally-recommended",
        {"astro24-cond-er"},
    ),
    (
        "size25",
        INVASIVE,
        {"pathology.size_mm": 25},
        "conditionally-recommended",
        {"astro24-cond-size"},
    ),
    (
        "size30-boundary",
        INVASIVE,
        {"pathology.size_mm": 30},
        "conditionally-recommended",
        {"astro24-cond-size"},
    ),
    (
        "dcis-high-grade",
        DCIS,
        {"pathology.dcis_nuclear_grade": "high"},
        "conditionally-recommended",
        {"astro24-dcis-cond-grade"},
    ),
    (
        "focal-lvi",
        INVASIVE,
        {"pathology.lvsi": "focal"},
        "conditionally-not-recommended",
        {"astro24-cnr-lvi"},
    ),
    (
        "lobular",
        INVASIVE,
        {"pathology.histology": "lobular"},
        "conditionally-not-recommended",
        {"astro24-cnr-lobular"},
    ),
    (
        "her2-without-therapy",
        INVASIVE,
        {"preoperative.her2_status": "positive", "preoperative.anti_her2_therapy_planned": False},
        "conditionally-not-recommended",
        {"astro24-cnr-her2"},
    ),
    ("age39", INVASIVE, {"patient.age_years": 39}, "not-recommended", {"astro24-nr-age"}),
    (
        "pN1mi",
        INVASIVE,
        {"pathology.nodal_stage": "pN1mi", "pathology.positive_nodes": None},
        "not-recommended",
        {"astro24-nr-nodes"},
    ),
    ("ink-margin", INVASIVE, {"pathology.margin_mm": 0}, "not-recommended", {"astro24-nr-margin"}),
    ("brca", INVASIVE, {"patient.brca_mutation": True}, "not-recommended", {"astro24-nr-brca"}),
    ("size35", INVASIVE, {"pathology.size_mm": 35}, "out-of-scope", {"astro24-scope"}),
    ("dcis-35mm", DCIS, {"pathology.size_mm": 35}, "out-of-scope", {"astro24-dcis-rec-size"}),
]


@pytest.mark.parametrize(
    ("base", "changes", "group", "rules"),
    [c[1:] for c in ASTRO24],
    ids=[c[0] for c in ASTRO24],
)
def test_astro2024_groups(base, changes, group, rules):
    v = verdict_of("ASTRO-2024", base, changes)
    assert v.group == group
    assert rules <= reason_ids(v)


def test_astro2024_her2_positive_with_therapy_is_not_a_reason_against():
    v = verdict_of(
        "ASTRO-2024",
        INVASIVE,
        {"preoperative.her2_status": "positive", "preoperative.anti_her2_therapy_planned": True},
    )
    assert v.group == "recommended"


def test_astro2024_her2_positive_with_unknown_therapy_is_insufficient():
    v = verdict_of(
        "ASTRO-2024",
        INVASIVE,
        {"preoperative.her2_status": "positive", "preoperative.anti_her2_therapy_planned": None},
    )
    assert v.group == "insufficient-data"
    assert v.missing == ("preoperative.anti_her2_therapy_planned",)


def test_astro2024_iort_not_supported_and_provisional_on_the_unverified_wording():
    for technique in ("xray", "electron"):
        changes = {"intent.technique": technique}
        if technique != "xray":
            changes["intent.dose_definition"] = None
        v = verdict_of("ASTRO-2024", INVASIVE, changes)
        assert v.iort_supported is False
        assert v.provisional
        assert any("astro24-iort" in w and "not_verified" in w for w in v.provisional_why)
