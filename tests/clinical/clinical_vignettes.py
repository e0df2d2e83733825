"""Clinical vignettes for the guideline tests, built as dicts and validated by parse_case.

Each base vignette is a realistic case; tests derive variants by changing single fields
(``{"pathology.margin_mm": 1.5}``; ``None`` clears a field, ``{"pathology": None}`` drops the
block).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from openiort.case import Case, parse_case
from openiort.clinical.eligibility import Verdict, evaluate, facts_for
from openiort.clinical.rules import bundled_guideline

# 62-year-old, screen-detected 14 mm grade 2 ER+/HER2- invasive ductal carcinoma, wide
# local excision with 5 mm margins, sentinel nodes negative: the textbook IORT candidate.
INVASIVE: dict[str, Any] = {
    "patient": {"id": "VIG-INV", "age_years": 62, "brca_mutation": False},
    "preoperative": {
        "laterality": "left",
        "quadrant": "upper_outer",
        "clock_position": 2,
        "nipple_distance_mm": 50,
        "imaging_size_mm": 13,
        "lesion_count": 1,
        "biopsy_histology": "ductal_nst",
        "biopsy_grade": 2,
        "biopsy_eic": False,
        "er_status": "positive",
        "pr_status": "positive",
        "her2_status": "negative",
        "anti_her2_therapy_planned": False,
        "clinical_nodal_stage": "cN0",
        "screen_detected": True,
        "neoadjuvant_therapy": False,
    },
    "pathology": {
        "histology": "ductal_nst",
        "size_mm": 14,
        "grade": 2,
        "dcis_nuclear_grade": None,
        "lvsi": "none",
        "eic": False,
        "lcis_associated": False,
        "centricity": "unicentric",
        "focality": "unifocal",
        "margin_mm": 5,
        "nodal_stage": "pN0",
        "positive_nodes": 0,
        "extranodal_extension": False,
        "nodal_surgery": "SLNB",
    },
    "anatomy": {"cavity_diameter_mm": 30, "skin_distance_mm": 10, "chest_wall_distance_mm": 15},
    "intent": {
        "technique": "xray",
        "timing": "during_lumpectomy",
        "prescription_gy": 20,
        "dose_definition": "TARGIT",
    },
}

# 58-year-old with screen-detected 18 mm low-grade pure DCIS, 4 mm margins, no axillary
# surgery (not standard for DCIS): the RTOG 9804 profile.
DCIS: dict[str, Any] = {
    "patient": {"id": "VIG-DCIS", "age_years": 58, "brca_mutation": False},
    "preoperative": {
        "laterality": "right",
        "quadrant": "upper_inner",
        "imaging_size_mm": 16,
        "lesion_count": 1,
        "biopsy_histology": "dcis",
        "biopsy_eic": False,
        "er_status": "positive",
        "her2_status": "negative",
        "clinical_nodal_stage": "cN0",
        "screen_detected": True,
        "neoadjuvant_therapy": False,
    },
    "pathology": {
        "histology": "dcis",
        "size_mm": 18,
        "dcis_nuclear_grade": "low",
        "lcis_associated": False,
        "centricity": "unicentric",
        "focality": "unifocal",
        "margin_mm": 4,
        "nodal_stage": "pNx",
        "nodal_surgery": "none",
    },
    "intent": {"technique": "electron", "timing": "during_lumpectomy", "prescription_gy": 21},
}

# Pending fields of TARGIT-A not in the case model, for a woman without those exclusions.
TARGIT_A_FACTS = {
    "preoperative.bilateral_cancer": False,
    "patient.prior_ipsilateral_cancer_or_rt": False,
}


def variant(base: Mapping[str, Any], changes: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A copy of ``base`` with dotted-path changes applied."""
    data = copy.deepcopy(dict(base))
    for path, value in (changes or {}).items():
        block, _, field = path.partition(".")
        if not field:
            if value is None:
                data.pop(block, None)
            else:
                data[block] = value
            continue
        data.setdefault(block, {})
        if value is None:
            data[block].pop(field, None)
        else:
            data[block][field] = value
    return data


def make_case(base: Mapping[str, Any], changes: Mapping[str, Any] | None = None) -> Case:
    return parse_case(variant(base, changes), source="vignette")


def verdict_of(
    guideline_id: str,
    base: Mapping[str, Any],
    changes: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Verdict:
    guideline = bundled_guideline(guideline_id)
    case = make_case(base, changes)
    return evaluate(guideline, facts_for(case, guideline, extra))


def reason_ids(v: Verdict) -> set[str]:
    return {r.rule_id for r in v.reasons}
