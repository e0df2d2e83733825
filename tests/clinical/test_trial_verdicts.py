"""Trial eligibility (TARGIT-A, TARGIT-US, TARGIT-E, ELIOT) on the preoperative findings.

Criteria from shared/reference/clinical/evidence_notes.md 1.6 (trial registrations, BMJ 2020,
Orecchia 2021). Pending fields not in the case model are supplied as extra facts.
"""

from __future__ import annotations

import pytest
from clinical_vignettes import DCIS, INVASIVE, TARGIT_A_FACTS, reason_ids, verdict_of

TARGIT_A = [
    ("textbook", {}, "eligible", {"targita-inc-age", "targita-exc-bilat", "targita-exc-prior"}),
    (
        "age45-size35-boundaries",
        {"patient.age_years": 45, "preoperative.imaging_size_mm": 35},
        "eligible",
        {"targita-inc-age", "targita-inc-size"},
    ),
    ("cN1-not-gross", {"preoperative.clinical_nodal_stage": "cN1"}, "eligible", {"targita-inc-cn"}),
    ("age44", {"patient.age_years": 44}, "not-eligible", {"targita-inc-age"}),
    ("size36", {"preoperative.imaging_size_mm": 36}, "not-eligible", {"targita-inc-size"}),
    (
        "lobular-on-core",
        {"preoperative.biopsy_histology": "lobular"},
        "not-eligible",
        {"targita-exc-core-lob"},
    ),
    ("eic-on-core", {"preoperative.biopsy_eic": True}, "not-eligible", {"targita-exc-core-eic"}),
    ("two-lesions", {"preoperative.lesion_count": 2}, "not-eligible", {"targita-exc-multi"}),
    (
        "mucinous-on-core",
        {"preoperative.biopsy_histology": "mucinous"},
        "not-eligible",
        {"targita-inc-hist"},
    ),
    (
        "cN2",
        {"preoperative.clinical_nodal_stage": "cN2"},
        "not-eligible",
        {"targita-exc-grossnodes"},
    ),
]


@pytest.mark.parametrize(
    ("changes", "group", "rules"), [c[1:] for c in TARGIT_A], ids=[c[0] for c in TARGIT_A]
)
def test_targit_a_eligibility(changes, group, rules):
    extra = dict(TARGIT_A_FACTS)
    if changes.get("preoperative.clinical_nodal_stage") == "cN1":
        extra["preoperative.gross_nodal_disease"] = False
    v = verdict_of("TARGIT-A", INVASIVE, changes, extra)
    assert v.group == group
    assert rules <= reason_ids(v)
    assert v.basis == "preoperative"


def test_targit_a_reads_the_preoperative_block_not_the_pathology():
    # Final pathology shows 40 mm, but eligibility was decided on the 13 mm imaging size.
    v = verdict_of("TARGIT-A", INVASIVE, {"pathology.size_mm": 40}, TARGIT_A_FACTS)
    assert v.group == "eligible"


def test_targit_a_needs_fields_the_case_model_lacks():
    v = verdict_of("TARGIT-A", INVASIVE)
    assert v.group == "insufficient-data"
    assert set(v.missing) == {
        "preoperative.bilateral_cancer",
        "patient.prior_ipsilateral_cancer_or_rt",
    }


def test_targit_a_known_brca2_excludes_and_unknown_gene_is_missing():
    brca = {"patient.brca_mutation": True}
    unknown_gene = verdict_of("TARGIT-A", INVASIVE, brca, TARGIT_A_FACTS)
    assert unknown_gene.group == "insufficient-data"
    assert unknown_gene.missing == ("patient.brca2_mutation",)
    brca2 = verdict_of(
        "TARGIT-A", INVASIVE, brca, {**TARGIT_A_FACTS, "patient.brca2_mutation": True}
    )
    assert brca2.group == "not-eligible"
    assert "targita-exc-brca2" in reason_ids(brca2)
    brca1 = verdict_of(
        "TARGIT-A", INVASIVE, brca, {**TARGIT_A_FACTS, "patient.brca2_mutation": False}
    )
    assert brca1.group == "eligible"


def test_targit_a_short_neoadjuvant_therapy_is_allowed():
    # Protocol: primary systemic therapy excluded, up to 4 weeks allowed.
    neo = {"preoperative.neoadjuvant_therapy": True}
    assert verdict_of("TARGIT-A", INVASIVE, neo, TARGIT_A_FACTS).missing == (
        "preoperative.neoadjuvant_weeks",
    )
    four = verdict_of(
        "TARGIT-A", INVASIVE, neo, {**TARGIT_A_FACTS, "preoperative.neoadjuvant_weeks": 4}
    )
    five = verdict_of(
        "TARGIT-A", INVASIVE, neo, {**TARGIT_A_FACTS, "preoperative.neoadjuvant_weeks": 5}
    )
    assert (four.group, five.group) == ("eligible", "not-eligible")


def test_targit_a_cn1_needs_the_gross_nodal_disease_judgement():
    v = verdict_of(
        "TARGIT-A", INVASIVE, {"preoperative.clinical_nodal_stage": "cN1"}, TARGIT_A_FACTS
    )
    assert v.group == "insufficient-data"
    assert v.missing == ("preoperative.gross_nodal_disease",)


TARGIT_US_FACTS = {"pathology.eic_pct_lumpectomy": 10.0}


@pytest.mark.parametrize(
    ("changes", "extra", "group", "rules"),
    [
        ({}, TARGIT_US_FACTS, "eligible", {"targitus-inc-size", "targitus-exc-eic"}),
        (
            {"patient.age_years": 45, "preoperative.imaging_size_mm": 34},
            TARGIT_US_FACTS,
            "eligible",
            {"targitus-inc-age"},
        ),
        (
            {"preoperative.imaging_size_mm": 35},
            TARGIT_US_FACTS,
            "not-eligible",
            {"targitus-inc-size"},
        ),
        (
            {"preoperative.clinical_nodal_stage": "cN1"},
            None,
            "not-eligible",
            {"targitus-exc-nodes"},
        ),
        ({}, {"pathology.eic_pct_lumpectomy": 25.0}, "not-eligible", {"targitus-exc-eic"}),
        (
            {"pathology.centricity": "multicentric"},
            TARGIT_US_FACTS,
            "not-eligible",
            {"targitus-exc-multicentric"},
        ),
    ],
    ids=["textbook", "age45-size34", "size35-strict", "cN1", "eic25pct", "multicentric"],
)
def test_targit_us_eligibility(changes, extra, group, rules):
    v = verdict_of("TARGIT-US", INVASIVE, changes, extra)
    assert v.group == group
    assert rules <= reason_ids(v)


@pytest.mark.parametrize(
    ("changes", "group", "rules"),
    [
        ({"patient.age_years": 74}, "eligible", {"targite-inc-age", "targite-inc-t"}),
        (
            {"patient.age_years": 70, "preoperative.imaging_size_mm": 35},
            "eligible",
            {"targite-inc-age", "targite-inc-t"},
        ),
        ({"patient.age_years": 69}, "not-eligible", {"targite-inc-age"}),
        (
            {"patient.age_years": 78, "preoperative.imaging_size_mm": 55},
            "not-eligible",
            {"targite-inc-t"},
        ),
        (
            {"patient.age_years": 78, "preoperative.biopsy_histology": "mucinous"},
            "not-eligible",
            {"targite-inc-hist"},
        ),
        (
            {"patient.age_years": 78, "preoperative.clinical_nodal_stage": "cN1"},
            "not-eligible",
            {"targite-inc-cn"},
        ),
    ],
    ids=["74y", "age70-cT2", "age69", "cT3", "mucinous", "cN1"],
)
def test_targit_e_eligibility(changes, group, rules):
    v = verdict_of("TARGIT-E", INVASIVE, changes)
    assert v.group == group
    assert rules <= reason_ids(v)


ELIOT = [
    ("textbook", INVASIVE, {}, "eligible", {"eliot-inc-age", "eliot-inc-size"}),
    (
        "age48-size25",
        INVASIVE,
        {"patient.age_years": 48, "preoperative.imaging_size_mm": 25},
        "eligible",
        {"eliot-inc-age", "eliot-inc-size"},
    ),
    ("age75", INVASIVE, {"patient.age_years": 75}, "eligible", {"eliot-inc-age"}),
    ("dcis-is-not-excluded-by-the-retrieved-criteria", DCIS, {}, "eligible", {"eliot-inc-cn"}),
    ("age47", INVASIVE, {"patient.age_years": 47}, "not-eligible", {"eliot-inc-age"}),
    ("age76", INVASIVE, {"patient.age_years": 76}, "not-eligible", {"eliot-inc-age"}),
    ("size26", INVASIVE, {"preoperative.imaging_size_mm": 26}, "not-eligible", {"eliot-inc-size"}),
    (
        "cN1",
        INVASIVE,
        {"preoperative.clinical_nodal_stage": "cN1"},
        "not-eligible",
        {"eliot-inc-cn"},
    ),
    (
        "two-lesions",
        INVASIVE,
        {"preoperative.lesion_count": 2},
        "not-eligible",
        {"eliot-inc-centric"},
    ),
]


@pytest.mark.parametrize(
    ("base", "changes", "group", "rules"), [c[1:] for c in ELIOT], ids=[c[0] for c in ELIOT]
)
def test_eliot_eligibility(base, changes, group, rules):
    v = verdict_of("ELIOT", base, changes)
    assert v.group == group
    assert rules <= reason_ids(v)


def test_eliot_missing_imaging_size_is_reported():
    v = verdict_of("ELIOT", INVASIVE, {"preoperative.imaging_size_mm": None})
    assert v.group == "insufficient-data"
    assert v.missing == ("preoperative.imaging_size_mm",)
    # ... unless another criterion already excludes her.
    assert (
        verdict_of(
            "ELIOT", INVASIVE, {"preoperative.imaging_size_mm": None, "patient.age_years": 80}
        ).group
        == "not-eligible"
    )


def test_eliot_bcs_is_read_from_the_plan_and_missing_without_timing():
    v = verdict_of("ELIOT", INVASIVE, {"intent.timing": None})
    assert v.group == "insufficient-data"
    assert v.missing == ("intent.timing",)


def test_eligible_verdicts_say_what_the_case_cannot_confirm():
    # ELIOT and TARGIT-E exclusion lists were not retrieved; M0 is not in the case model.
    eliot = verdict_of("ELIOT", INVASIVE)
    assert eliot.provisional and "exclusion criteria were not retrieved" in eliot.provisional_why[0]
    targit = verdict_of("TARGIT-A", INVASIVE, None, TARGIT_A_FACTS)
    assert targit.provisional and "M0" in targit.provisional_why[0]
    assert not verdict_of("ELIOT", INVASIVE, {"patient.age_years": 80}).provisional
