"""The mapping of the compiled rule vocabulary onto the case vocabulary (variables.py)."""

from __future__ import annotations

import pytest
from clinical_vignettes import DCIS, INVASIVE, make_case

from openiort.case import CaseError
from openiort.clinical.facts import PENDING_FIELDS, FactError, Facts, parse_fact
from openiort.clinical.variables import Interval, derive, variable_names


def value(name, base=INVASIVE, changes=None, params=None, extra=None, basis="pathology"):
    d = derive(name, Facts(make_case(base, changes), extra, basis), params)
    assert d.known, (name, d)
    if d.values is None:
        return "n/a"
    if isinstance(d.values, Interval):
        return d.values.lo
    return next(iter(d.values))


@pytest.mark.parametrize(
    ("size_mm", "t"),
    [(0.5, "T1"), (20, "T1"), (20.5, "T2"), (21, "T2"), (50, "T2"), (51, "T3")],
)
def test_t_stage_from_size_mm_follows_ajcc(size_mm, t):
    # AJCC 8th edition: T1 <= 20 mm, T2 > 20 to <= 50 mm, T3 > 50 mm.
    assert value("t_stage", changes={"pathology.size_mm": size_mm}) == t


def test_t_stage_of_pure_dcis_is_tis_and_ct_stage_reads_imaging():
    assert value("t_stage", DCIS) == "Tis"
    assert value("ct_stage", changes={"preoperative.imaging_size_mm": 35}) == "cT2"
    assert value("ct_stage", DCIS) == "cTis"


@pytest.mark.parametrize(
    ("margin_mm", "threshold", "status"),
    [
        (0, 2, "positive"),
        (0.1, 2, "close"),
        (1.99, 2, "close"),
        (2, 2, "negative"),
        (0, 0, "positive"),
        (0.1, 0, "negative"),
    ],
)
def test_margin_status_from_margin_mm_and_the_guideline_threshold(margin_mm, threshold, status):
    params = {"close_margin_below_mm": threshold}
    assert (
        value("margin_status", changes={"pathology.margin_mm": margin_mm}, params=params) == status
    )


def test_sizes_in_mm_compare_exactly_with_thresholds_in_cm():
    # 21 mm must equal the 2.1 cm written in a rule, 30 mm the 3.0 cm.
    assert value("tumor_size_cm", changes={"pathology.size_mm": 21}) == 2.1
    assert value("tumor_size_cm", changes={"pathology.size_mm": 30}) == 3.0
    assert value("clinical_tumor_size_cm", changes={"preoperative.imaging_size_mm": 35}) == 3.5


def test_pure_dcis_and_invasive_only_variables():
    assert value("pure_dcis", DCIS) is True
    assert value("pure_dcis") is False
    assert value("grade", DCIS) == "n/a"
    assert value("invasive_histology", DCIS) == "n/a"
    assert value("dcis_size_cm", DCIS) == 1.8
    assert value("dcis_size_cm") == "n/a"
    assert value("dcis_nuclear_grade") == "n/a"


def test_unknown_histology_leaves_applicability_open():
    d = derive("grade", Facts(make_case(INVASIVE, {"pathology.histology": None})))
    assert d.maybe_na and d.values == frozenset({2})
    assert d.missing == ("pathology.histology",)


@pytest.mark.parametrize(
    ("stage", "interval"),
    [
        ("pN0", (0, 0)),
        ("pN0(i+)", (0, 0)),
        ("pN1mi", (1, 3)),
        ("pN1a", (1, 3)),
        ("pN2a", (4, 9)),
        ("pN3", (1, 100)),
    ],
)
def test_positive_node_count_range_from_the_nodal_stage(stage, interval):
    d = derive(
        "positive_nodes_count",
        Facts(
            make_case(INVASIVE, {"pathology.nodal_stage": stage, "pathology.positive_nodes": None})
        ),
    )
    assert d.values == Interval(*interval)


@pytest.mark.parametrize(
    ("stage", "negative"),
    [("pN0", True), ("pN0(i+)", True), ("pN1mi", False), ("pN2a", False), ("pNx", False)],
)
def test_node_negative(stage, negative):
    changes = {"pathology.nodal_stage": stage, "pathology.positive_nodes": None}
    assert value("node_negative", changes=changes) is negative


def test_focality_values_map_to_the_compiled_vocabulary():
    assert value("focality") == "unifocal"
    changes = {
        "pathology.focality": "multifocal_within_20mm",
        "pathology.multifocal_total_size_mm": 25,
    }
    assert value("focality", changes=changes) == "multifocal_within_2cm_of_index"
    assert value("multifocal_total_size_cm", changes=changes) == 2.5
    assert value("clinical_focality", changes=changes) == "clinically_unifocal"
    big = {**changes, "pathology.multifocal_total_size_mm": 31}
    assert value("clinical_focality", changes=big) == "microscopically_multifocal_gt3cm"
    two = {**changes, "preoperative.lesion_count": 2}
    assert value("clinical_focality", changes=two) == "clinically_multifocal"


def test_eic_size_applies_only_with_eic():
    assert value("eic_size_cm") == "n/a"
    assert value("eic_size_cm", changes={"pathology.eic": True, "pathology.eic_size_mm": 25}) == 2.5


def test_her2_without_therapy():
    assert value("her2_positive_without_anti_her2_therapy") is False
    pos = {"preoperative.her2_status": "positive"}
    assert value("her2_positive_without_anti_her2_therapy", changes=pos) is True
    treated = {**pos, "preoperative.anti_her2_therapy_planned": True}
    assert value("her2_positive_without_anti_her2_therapy", changes=treated) is False


def test_derived_trial_variables():
    assert value("brca2_mutation") is False  # no known BRCA1/2 mutation
    assert value("neoadjuvant_weeks") == 0
    assert value("gross_nodal_disease") is False
    assert value("gross_nodal_disease", changes={"preoperative.clinical_nodal_stage": "cN2"})
    assert value("suitable_for_bcs") is True
    assert value("pbi_technique") == "iort_lowkv"
    assert value("core_biopsy_lobular", changes={"preoperative.biopsy_histology": "lobular"})


def test_preoperative_basis_uses_proxies_and_leaves_the_rest_missing():
    facts = Facts(make_case(INVASIVE, {"pathology": None}), basis="preoperative")
    size = derive("tumor_size_cm", facts)
    assert size.values == Interval(1.3, 1.3)
    assert "preoperative.imaging_size_mm" in size.observed[0]
    assert derive("centricity", facts).values == frozenset({"unicentric"})
    margin = derive("margin_mm", facts)
    assert not margin.known and margin.missing == ("pathology.margin_mm",)


def test_every_variable_derives_for_a_full_and_an_empty_case():
    full = Facts(make_case(INVASIVE), {"pathology.eic_pct_lumpectomy": 5.0})
    empty = Facts(make_case({"patient": {"id": "E"}, "intent": {"technique": "hdr"}}))
    params = {"close_margin_below_mm": 2}
    for name in variable_names():
        derive(name, full, params)
        d = derive(name, empty, params)
        assert not d.known or d.values is None or name in ("iort_planned", "pbi_technique"), name


def test_contradictory_case_fields_are_a_case_error():
    with pytest.raises(CaseError) as err:
        Facts(make_case(INVASIVE, {"pathology.nodal_stage": "pN1a"}))
    assert "pathology.positive_nodes" in err.value.problems[0]


def test_pending_fields_and_fact_parsing():
    assert parse_fact("preoperative.bilateral_cancer=false") == (
        "preoperative.bilateral_cancer",
        False,
    )
    assert parse_fact("preoperative.neoadjuvant_weeks = 3") == (
        "preoperative.neoadjuvant_weeks",
        3.0,
    )
    for bad in (
        "patient.age_years=40",
        "preoperative.bilateral_cancer=maybe",
        "preoperative.neoadjuvant_weeks=-1",
        "nonsense",
    ):
        with pytest.raises(FactError):
            parse_fact(bad)
    with pytest.raises(FactError):
        Facts(make_case(INVASIVE), {"patient.brca2_mutation": "yes"})
    assert all(p.meaning and p.needed_by for p in PENDING_FIELDS.values())
