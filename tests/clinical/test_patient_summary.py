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
    out += [f.statement for f in (*summary.survival, *summary.side_effects, *summary.visits)]
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
    assert [g.people for g in recurrence.groups] == [2, 1]  # 2.11 % vs 0.95 % (BMJ 2020)
    assert "Out of 100 women" in recurrence.sentence
    assert "BMJ 2020" in recurrence.source
    assert "Not yet checked" in recurrence.status_text  # the arm rates are recalled
    assert s.ebrt_after is not None and s.ebrt_after.groups[0].people == 22
    assert "3.6" in s.ebrt_after.note  # second-procedure stratum, for comparison
    survival = " ".join(f.statement for f in s.survival)
    assert "Died of breast cancer" in survival and "Died of any cause" in survival
    assert s.notice == openiort.RESEARCH_NOTICE
    for text in statements(s):
        assert not JARGON.search(text), text


def test_summary_for_electron_shows_15_and_5_years():
    s = build_patient_summary(make_case(DCIS))
    assert [[g.people for g in f.groups] for f in s.recurrence] == [[13, 2], [4, 0]]
    assert "fewer than 1" in s.recurrence[1].sentence
    for text in statements(s):
        assert not JARGON.search(text), text


def test_summary_for_hdr_says_no_results_were_found():
    s = build_patient_summary(
        make_case(INVASIVE, {"intent.technique": "hdr", "intent.dose_definition": None})
    )
    assert s.recurrence == () and s.ebrt_after is None
    assert "No published study results" in s.trial_text


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
    assert openiort.RESEARCH_NOTICE in html
    assert html.count("<svg") == 3  # recurrence (2 arms) and EBRT afterwards
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
    assert dom.count("<svg") == 3 and dom.count("<circle") == 300
    assert "Out of 100 women" in dom
