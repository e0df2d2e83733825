"""The treatment burden and the patient summary's visits line for a course of HDR fractions
(34 Gy in 10 fractions twice daily over 5 days: RTOG 95-17, treatment_burden.yaml hdr_course)
against single-fraction IORT."""

from __future__ import annotations

from clinical_vignettes import INVASIVE, make_case

from openiort.clinical.burden import treatment_burden
from openiort.clinical.summary import build_patient_summary

HDR = {"intent.technique": "hdr", "intent.dose_definition": None}
COURSE = {**HDR, "intent.fractions": 10, "intent.min_interval_h": 6.0}


def test_a_ten_fraction_course_takes_five_days_of_visits() -> None:
    burden = treatment_burden(make_case(INVASIVE, COURSE), one_way_km=10.0)
    assert (burden.course_fractions, burden.course_days) == (10, 5)
    assert burden.iort_extra_visits == 5  # one visit per treatment day, two fractions each
    assert burden.iort_travel is not None and burden.iort_travel.trips == 5
    assert burden.iort_travel.distance_km == 100.0  # 5 round trips of 2 x 10 km
    assert "10 BID fractions over 5 days" in burden.visits_source
    assert burden.to_dict()["iort"]["course_days"] == 5


def test_an_odd_course_rounds_up_to_whole_days() -> None:
    burden = treatment_burden(make_case(INVASIVE, {**COURSE, "intent.fractions": 5}))
    assert (burden.course_fractions, burden.course_days, burden.iort_extra_visits) == (5, 3, 3)


def test_single_fraction_hdr_adds_no_visits() -> None:
    burden = treatment_burden(make_case(INVASIVE, HDR))
    assert (burden.course_fractions, burden.course_days, burden.iort_extra_visits) == (1, 0, 0)


def test_summary_visits_line_describes_the_course_not_the_operation() -> None:
    summary = build_patient_summary(make_case(INVASIVE, COURSE))
    first = summary.visits[0].statement
    assert first == (
        "Radiotherapy after your operation: 10 treatments, twice a day over 5 days "
        "(5 hospital visits)."
    )
    assert "during your operation" not in first
    single = build_patient_summary(make_case(INVASIVE, HDR)).visits[0].statement
    assert "during your operation" in single
