"""Issue 18: the patient page of every shipped example shows only numbers re-read in their primary
source (status verified, location recorded) and says nothing about checking; the clinician's
report keeps every figure with its status beside it."""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import jinja2
import pytest

from openiort.case import load_case
from openiort.clinical.outcomes import load_outcomes, match_evidence
from openiort.clinical.section import build_clinical_section
from openiort.clinical.summary import (
    build_patient_summary,
    patient_text,
    people_out_of_100,
    render_patient_summary,
)

REPO = Path(__file__).resolve().parents[2]
DEMO = Path(str(resources.files("openiort").joinpath("data/demo_case.yaml")))
SHIPPED = [*sorted((REPO / "examples").glob("*.yaml")), DEMO]
NUMBER = re.compile(r"\d+(?:\.\d+)?")
CHECKING = re.compile(
    r"\b(check\w*|confirm\w*|recalled|verif\w*|not yet|secondary|assumption|unverified)\b", re.I
)


class _VisibleText(HTMLParser):
    """The text a patient reads: no style, no icons (their labels repeat counts), no source
    lines (citations carry volume and page numbers), no header or footer."""

    SKIP_CLASSES = frozenset({"source", "meta"})

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip: list[str] = []

    def handle_starttag(self, tag, attrs):
        classes = set((dict(attrs).get("class") or "").split())
        if self._skip or tag in ("style", "svg", "footer", "title") or classes & self.SKIP_CLASSES:
            self._skip.append(tag)

    def handle_endtag(self, tag):
        if self._skip and self._skip[-1] == tag:
            self._skip.pop()

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def _visible(html: str) -> str:
    """The page's visible text (its research notice included: it must not speak of checking)."""
    parser = _VisibleText()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def _allowed_numbers(summary, case) -> set[str]:
    """Numbers the page may print: those of the rows it shows (all verified where recorded),
    of the verified texts, and the case's own count of extra visits."""
    rows = {r.row_id: r for r in load_outcomes()}
    allowed = {"100", "1", "0"}
    for rid in summary.row_ids:
        r = rows[rid]
        assert r.verified_where, f"{rid}: shown on the patient page without a recorded location"
        if r.estimate_pct is not None:
            assert r.estimate_status == "verified", rid
            allowed |= {f"{r.estimate_pct:g}", str(people_out_of_100(r.estimate_pct))}
        if r.n is not None:
            allowed.add(f"{r.n:g}")
        if r.timepoint_years is not None:
            allowed.add(f"{r.timepoint_years:g}")
        allowed |= set(NUMBER.findall(r.events))
    text = patient_text()
    for group in ("findings_in_words", "whole_breast_course", "time_added"):
        for entry in text[group].values():
            if entry.get("status") == "verified" and entry.get("where"):
                allowed |= set(NUMBER.findall(str(entry["text"])))
    return allowed


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_patient_page_shows_only_verified_numbers(path: Path) -> None:
    case = load_case(path)
    summary = build_patient_summary(case, generated=dt.date(2026, 1, 1))
    page = _visible(render_patient_summary(summary))
    allowed = _allowed_numbers(summary, case)
    stray = [n for n in NUMBER.findall(page) if n not in allowed]
    assert stray == [], (path.name, stray)
    assert not CHECKING.search(page), (path.name, CHECKING.search(page))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shown_row_is_verified_in_its_primary_source(path: Path) -> None:
    summary = build_patient_summary(load_case(path))
    rows = {r.row_id: r for r in load_outcomes()}
    for rid in summary.row_ids:
        r = rows[rid]
        assert r.verified_where
        assert r.estimate_pct is None or r.estimate_status == "verified"


def test_the_unverified_demo_numbers_of_the_issue_are_gone_from_the_page() -> None:
    summary = build_patient_summary(load_case(DEMO))
    page = _visible(render_patient_summary(summary))
    # breast-cancer mortality 2.6 vs 1.9 (recalled), 12-year non-breast-cancer mortality
    # 5.41 vs 9.85 (authors' commentary only), major toxicity 3.3 vs 3.9 (recalled)
    for figure in ("2.6 in 100", "5.41", "9.85", "3.3 in 100", "0.23"):
        assert figure not in page
    assert "2.11 in 100" in page  # 24 of 1140, BJC 2021 Table 1


def _render_clinical(case_path: Path) -> str:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("openiort.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    section = build_clinical_section(load_case(case_path))
    return env.get_template("sections/clinical.html").render(section=section)


def test_clinician_report_keeps_every_figure_with_its_status() -> None:
    html = _render_clinical(DEMO)
    ev = match_evidence(load_case(DEMO))
    for item in ev.items:
        for arm in item.arms:
            if arm.estimate_pct is None:
                continue
            assert f"{arm.estimate_pct:g} % [{arm.status}" in html, (item.topic, arm.row_id)
    # the figures moved off the patient page are here, with their status
    assert "Breast cancer" in html or "Died of breast cancer" in html
    assert "2.6 % [recalled]" in html and "5.41 % [secondary]" in html
    assert "checked in: Vaidya JS et al. Br J Cancer 2021" in html
    assert "Added operating time: 20&ndash;40 min [secondary]" in html
    assert "Published travel (UK TARGIT-A)" in html and "location not recorded" in html


def test_outcome_rows_with_a_location_are_verified_and_name_a_source() -> None:
    located = [r for r in load_outcomes() if r.verified_where]
    assert len(located) >= 40
    for r in located:
        assert r.source and r.publication
        statuses = {r.estimate_status, r.comparison_status} - {""}
        # a location for another figure of the row (an event count) says so
        covers_other = "only)" in r.verified_where
        assert "verified" in statuses or r.estimate_pct is None or covers_other, r.row_id
