"""The patient summary page: figures with sources, icon arrays, no jargon, self-contained."""

from __future__ import annotations

import re
import subprocess
from html.parser import HTMLParser

import pytest
from clinical_vignettes import DCIS, INVASIVE, make_case

import openiort
from openiort.clinical.summary import (
    AFFECTED_COLOUR,
    build_patient_summary,
    icon_array_svg,
    people_out_of_100,
    render_patient_summary,
    write_patient_summary,
)

JARGON = re.compile(r"\b(EBRT|WBI|IBTR|CI|HR|pN\d|Gy|APBI)\b")


def statements(summary) -> list[str]:
    """Everything the patient reads as text, except source lines."""
    out = [
        summary.what_is_planned,
        summary.time_added.statement,
        summary.trial_text,
        *summary.on_the_day,
    ]
    for fig in (*summary.recurrence, summary.ebrt_after):
        if fig is not None:
            out += [fig.title, fig.sentence, fig.note] + [g.caption for g in fig.groups]
    out += [
        f.statement
        for f in (*summary.findings, *summary.survival, *summary.side_effects, *summary.visits)
    ]
    return out


@pytest.mark.parametrize(
    ("pct", "people"), [(2.11, 2), (0.95, 1), (21.6, 22), (0.4, 0), (0.5, 1), (12.6, 13)]
)
def test_people_out_of_100(pct, people):
    assert people_out_of_100(pct) == people


def test_icon_array_has_100_people_and_colours_the_affected():
    svg = icon_array_svg(22, AFFECTED_COLOUR, "22 of 100")
    assert svg.count("<circle") == 100
    assert svg.count(f'fill="{AFFECTED_COLOUR}"') == 22
    with pytest.raises(ValueError):
        icon_array_svg(101, AFFECTED_COLOUR, "x")


def test_summary_for_iort_during_lumpectomy():
    s = build_patient_summary(make_case(INVASIVE))
    (recurrence,) = s.recurrence
    # 2.11 % vs 0.95 %: 24 of 1140 and 11 of 1158 (BJC 2021 Table 1, the BMJ 2020 raw rates)
    assert [g.people for g in recurrence.groups] == [2, 1]
    assert "Out of 100 women" in recurrence.sentence and "2.11 in 100" in recurrence.sentence
    assert "BMJ 2020" in recurrence.source
    # 21.6 % (supplemental EBRT, prepathology) has no recorded location: not on the page
    assert s.ebrt_after is None
    survival = " ".join(f.statement for f in s.survival)
    assert "Alive without the cancer coming back" in survival and "94.2 in 100" in survival
    assert "Died of any cause within 5 years: 42 of 1140" in survival
    assert "Died of breast cancer" not in survival  # 2.6 vs 1.9 % is recalled
    assert s.notice == openiort.PATIENT_NOTICE
    for text in statements(s):
        assert not JARGON.search(text), text


def test_summary_for_electron_says_what_eliot_found_in_words():
    # ELIOT's rates were read only in secondary reports: none is shown, the finding is in words
    s = build_patient_summary(make_case(DCIS))
    assert s.recurrence == () and s.survival == ()
    (finding,) = s.findings
    assert "came back in the same breast more often" in finding.statement
    assert "findings below" in s.trial_text
    for text in statements(s):
        assert not JARGON.search(text), text


def test_summary_for_hdr_shows_the_b39_partial_breast_trial():
    s = build_patient_summary(
        make_case(INVASIVE, {"intent.technique": "hdr", "intent.dose_definition": None})
    )
    assert s.recurrence == () and s.ebrt_after is None
    assert "NSABP B-39" in s.trial_text and "No trial has yet compared" in s.trial_text
    (free,) = s.survival
    assert "95.2 in 100" in free.statement and "95.9 in 100" in free.statement


def test_second_procedure_without_verified_rates_says_the_finding_in_words():
    s = build_patient_summary(make_case(INVASIVE, {"intent.timing": "second_procedure"}))
    assert s.recurrence == () and s.ebrt_after is None  # 3.96 %, 3.6 %: not located
    (finding,) = s.findings
    assert "second operation" in finding.statement and "more often" in finding.statement


class _Resources(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.external: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href") and value and not value.startswith("#"):
                self.external.append(value)


def test_written_page_is_self_contained_and_carries_the_notice(tmp_path):
    path = write_patient_summary(make_case(INVASIVE), tmp_path, one_way_km=15)
    html = path.read_text()
    parser = _Resources()
    parser.feed(html)
    assert parser.external == []
    assert "script" not in parser.tags
    assert openiort.PATIENT_NOTICE in html
    assert html.count("<svg") == 2  # recurrence (2 arms); EBRT afterwards is not located
    assert "@media print" in html


def test_page_renders_in_a_real_browser(tmp_path):
    page = tmp_path / "page.html"
    page.write_text(render_patient_summary(build_patient_summary(make_case(INVASIVE))))
    result = subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    dom = result.stdout
    assert dom.count("<svg") == 2 and dom.count("<circle") == 200
    assert "Out of 100 women" in dom
