"""The plain-language patient summary: one printable, self-contained HTML page.

Every number on the page is a figure re-read in its primary source: a trial outcome whose
status is verified and whose ``verified_where`` is recorded (:attr:`.outcomes.Estimate.patient_ready`),
or a text of ``data/patient_text.yaml`` verified with ``where``. Any other figure (recalled,
secondary, an assumption) stays in the clinician's report, with its status beside it; the page
then says what the trial found in words, or nothing. The page says nothing about checking: the
status lives in the data files and the clinician's report. Icon arrays are inline SVG; the page
loads nothing from the network.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

import openiort
from openiort.case import Case
from openiort.clinical.burden import Burden, treatment_burden
from openiort.clinical.outcomes import Estimate, Evidence, PatientEvidence, match_evidence
from openiort.datafiles import read_data

AFFECTED_COLOUR = "#b45309"
IORT_COLOUR = "#0f766e"
OTHER_COLOUR = "#d6dbe1"


@cache
def patient_text() -> dict[str, Any]:
    """The bundled plain-language text (``data/patient_text.yaml``)."""
    data: dict[str, Any] = read_data("openiort.clinical", "data/patient_text.yaml").yaml()
    return data


def people_out_of_100(pct: float) -> int:
    """Whole people out of 100 shown for a percentage (half rounds up)."""
    if not 0 <= pct <= 100:
        raise ValueError(f"percentage must be within 0-100, got {pct}")
    return math.floor(pct + 0.5)


def icon_array_svg(affected: int, colour: str, label: str, total: int = 100) -> str:
    """A 10-wide grid of ``total`` person icons, the first ``affected`` coloured.

    Returns an inline SVG string with an accessible label.
    """
    if not 0 <= affected <= total:
        raise ValueError(f"affected must be within 0-{total}, got {affected}")
    cell_w, cell_h, cols = 16, 20, 10
    rows = math.ceil(total / cols)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {cols * cell_w} {rows * cell_h}" '
        f'width="{cols * cell_w}" height="{rows * cell_h}" role="img" '
        f'aria-label="{jinja2.utils.markupsafe.escape(label)}">'
    ]
    for i in range(total):
        x, y = (i % cols) * cell_w, (i // cols) * cell_h
        fill = colour if i < affected else OTHER_COLOUR
        parts.append(
            f'<g fill="{fill}"><circle cx="{x + 8}" cy="{y + 5}" r="3.6"/>'
            f'<path d="M{x + 2.5} {y + 18.5} v-5.5 a5.5 4.6 0 0 1 11 0 v5.5 z"/></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class IconGroup:
    """One icon array: out of 100 women, how many."""

    caption: str
    pct: float
    people: int
    svg: str


@dataclass(frozen=True)
class IconFigure:
    title: str
    sentence: str
    groups: tuple[IconGroup, ...]
    source: str
    row_ids: tuple[str, ...]  # the outcome rows whose figures the page shows
    note: str = ""
    note_row_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class TextFigure:
    statement: str
    source: str
    row_ids: tuple[str, ...] = ()  # outcome rows behind the statement's numbers, if any


@dataclass(frozen=True)
class PatientSummary:
    """Everything the patient-summary template shows."""

    case_id: str
    generated: str
    technique_name: str
    what_is_planned: str
    on_the_day: tuple[str, ...]
    time_added: TextFigure
    trial_text: str
    recurrence: tuple[IconFigure, ...]
    findings: tuple[TextFigure, ...]  # what the trial found, in words, when no figure is shown
    ebrt_after: IconFigure | None
    survival: tuple[TextFigure, ...]
    side_effects: tuple[TextFigure, ...]
    visits: tuple[TextFigure, ...]
    questions: tuple[str, ...]
    notes: tuple[str, ...]
    notice: str = field(default=openiort.PATIENT_NOTICE)

    @property
    def mentions_deaths(self) -> bool:
        """Whether a survival line counts deaths (the page then tells the measures apart)."""
        return any(f.statement.startswith("Died") for f in self.survival)

    @property
    def row_ids(self) -> tuple[str, ...]:
        """Every outcome row whose figures appear on the page."""
        ids: list[str] = []
        for fig in (*self.recurrence, self.ebrt_after):
            if fig is not None:
                ids += [*fig.row_ids, *fig.note_row_ids]
        for f in (*self.findings, *self.survival, *self.side_effects, *self.visits):
            ids += f.row_ids
        return tuple(dict.fromkeys(ids))


def _people(pct: float) -> str:
    n = people_out_of_100(pct)
    if n == 0:
        return "fewer than 1"
    return f"about {n}"


PATIENT_TOPICS = {
    "toxicity_major": "Major complications of any kind",
    "toxicity_grade3": "Severe side effects of the radiotherapy",
    "toxicity_skin_severe": "Severe skin problems",
}


def _source(item: Evidence) -> str:
    # No follow-up time here: it is not a figure whose status the data file tracks.
    return f"{item.trial_key}: {item.stratum}. {item.publication}"


def _arm_caption(kind: str) -> str:
    return {
        "iort": "Radiotherapy during the operation",
        "apbi": "Radiotherapy to part of the breast over 5 days",
        "ebrt": "Radiotherapy to the whole breast after surgery",
        "iort_plus_ebrt": "Radiotherapy during the operation, then to the whole breast",
        "all": "All women in the study",
    }[kind]


def _ids(*arms: Estimate | None) -> tuple[str, ...]:
    return tuple(a.row_id for a in arms if a is not None)


def _women(item: Evidence) -> str:
    """The women a figure describes, from the figure's own trial and stratum."""
    if item.trial_key == "TARGIT-A" and item.stratum_key == "prepathology":
        return (
            "women in the TARGIT-A trial who, like you, had this treatment during their lumpectomy"
        )
    if item.trial_key == "TARGIT-A" and item.stratum_key == "postpathology":
        return "women in the TARGIT-A trial who, like you, had it as a second operation"
    if item.trial_key == "TARGIT-A":
        return "women in the TARGIT-A trial"
    if item.trial_key == "ELIOT":
        return "women in the ELIOT trial who had electron radiotherapy during the operation"
    return f"women in the {item.trial_key} trial"


def _recurrence_figure(item: Evidence) -> IconFigure | None:
    iort, ebrt = item.treated_arm, item.arm("ebrt")
    if not (item.pair_patient_ready and iort and ebrt):
        return None
    assert iort.estimate_pct is not None and ebrt.estimate_pct is not None  # pair_patient_ready
    years = f"{item.timepoint_years:g}" if item.timepoint_years else "several"
    groups = tuple(
        IconGroup(
            caption=_arm_caption(arm.arm_kind),
            pct=arm.estimate_pct,
            people=people_out_of_100(arm.estimate_pct),
            svg=icon_array_svg(
                people_out_of_100(arm.estimate_pct),
                AFFECTED_COLOUR,
                f"{people_out_of_100(arm.estimate_pct)} of 100 women highlighted",
            ),
        )
        for arm in (iort, ebrt)
        if arm.estimate_pct is not None
    )
    sentence = (
        f"Out of 100 {_women(item)}, {_people(iort.estimate_pct)} had the cancer come back in the "
        f"same breast within {years} years ({iort.estimate_pct:g} in 100). With radiotherapy to "
        f"the whole breast instead, {_people(ebrt.estimate_pct)} did ({ebrt.estimate_pct:g} in "
        "100)."
    )
    return IconFigure(
        title=f"Cancer coming back in the same breast within {years} years",
        sentence=sentence,
        groups=groups,
        source=_source(item),
        row_ids=_ids(iort, ebrt),
    )


def _recurrence(ev: PatientEvidence) -> list[IconFigure]:
    """The longest follow-up with both arms' verified rates, plus ELIOT's 5-year figure."""
    figures: list[IconFigure] = []
    if ev.trial is None:
        return figures
    best = ev.best("local_recurrence", with_rates=True, trial=ev.trial, patient_ready=True)
    if best is None:
        return figures
    first = _recurrence_figure(best)
    if first is not None:
        figures.append(first)
    if ev.trial == "ELIOT":
        five = next(
            (
                e
                for e in ev.items
                if e.topic == "local_recurrence"
                and e.pair_patient_ready
                and e.timepoint_years == 5
                and e.year != best.year
            ),
            None,
        )
        extra = _recurrence_figure(five) if five else None
        if extra is not None:
            figures.append(extra)
    return figures


def _findings_in_words(ev: PatientEvidence, have_figures: bool) -> list[TextFigure]:
    """What the trial found, in verified words, when no recurrence figure can be shown."""
    if have_figures or ev.trial is None:
        return []
    words = patient_text().get("findings_in_words", {})
    key = ev.trial if ev.trial != "TARGIT-A" else f"TARGIT-A {ev.stratum_key}"
    entry = words.get(key)
    if not entry or entry.get("status") != "verified" or not entry.get("where"):
        return []
    return [TextFigure(" ".join(str(entry["text"]).split()), str(entry["source"]))]


def _ebrt_after(ev: PatientEvidence) -> IconFigure | None:
    """Supplemental whole-breast radiotherapy in the patient's own stratum, when verified."""
    if ev.trial is None:
        return None
    item = next(
        (
            e
            for e in ev.items
            if e.topic == "supplemental_ebrt"
            and e.trial_key == ev.trial
            and e.stratum_key == ev.stratum_key
            and (arm := e.arm("iort")) is not None
            and arm.patient_ready
        ),
        None,
    )
    arm = item.arm("iort") if item else None
    if item is None or arm is None or arm.estimate_pct is None:
        return None
    n = people_out_of_100(arm.estimate_pct)
    note, note_ids = _second_procedure_note(ev)
    return IconFigure(
        title="Needing radiotherapy to the whole breast afterwards",
        sentence=(
            f"Out of 100 {_women(item)}, {_people(arm.estimate_pct)} ({arm.estimate_pct:g} in "
            "100) also needed radiotherapy to the whole breast, because the tests on the removed "
            "tissue showed features that made it advisable."
        ),
        groups=(
            IconGroup(
                "Needed whole-breast radiotherapy as well",
                arm.estimate_pct,
                n,
                icon_array_svg(n, IORT_COLOUR, f"{n} of 100 women highlighted"),
            ),
        ),
        source=_source(item),
        row_ids=_ids(arm),
        note=note,
        note_row_ids=note_ids,
    )


def _second_procedure_note(ev: PatientEvidence) -> tuple[str, tuple[str, ...]]:
    """For IORT during lumpectomy: the rate when IORT waited for the tissue results."""
    if ev.stratum_key != "prepathology":
        return "", ()
    for item in ev.items:
        arm = item.arm("iort")
        if (
            item.topic == "supplemental_ebrt"
            and item.stratum_key == "postpathology"
            and arm is not None
            and arm.estimate_pct is not None
            and arm.patient_ready
        ):
            return (
                f"When the radiotherapy was given as a second operation, after the tissue results "
                f"were known, {_people(arm.estimate_pct)} in 100 ({arm.estimate_pct:g}) needed it "
                f"({item.trial_key}, {item.publication.split(' (')[0]}).",
                _ids(arm),
            )
    return "", ()


def _pair_sentence(item: Evidence, what: str) -> str | None:
    iort, ebrt = item.treated_arm, item.arm("ebrt")
    if not (item.pair_patient_ready and iort and ebrt):
        return None
    years = f" within {item.timepoint_years:g} years" if item.timepoint_years else ""
    return (
        f"{what}{years}: {iort.estimate_pct:g} in 100 with "
        f"{_arm_caption(iort.arm_kind).lower()}, {ebrt.estimate_pct:g} in 100 with whole-breast "
        "radiotherapy."
    )


def _counts_ready(arm: Estimate | None) -> bool:
    """A count (events of n) re-read in its primary source."""
    return bool(arm and arm.verified_where and arm.events and arm.n)


def _survival(ev: PatientEvidence) -> list[TextFigure]:
    out: list[TextFigure] = []
    if ev.trial is None:
        return out
    wanted = (
        ("local_recurrence_free", "Alive without the cancer coming back in the same breast"),
        ("breast_cancer_mortality", "Died of breast cancer"),
        ("overall_mortality", "Died of any cause"),
        ("non_breast_cancer_mortality", "Died of causes other than breast cancer"),
        ("overall_survival", "Alive"),
    )
    for topic, what in wanted:
        item = ev.best(topic, with_rates=True, trial=ev.trial, patient_ready=True)
        if item is None or item.stratum_key == "single_centre":
            continue
        sentence = _pair_sentence(item, what)
        if sentence:
            out.append(
                TextFigure(sentence, _source(item), _ids(item.treated_arm, item.arm("ebrt")))
            )
    deaths = next(
        (
            e
            for e in ev.items
            if e.topic == "deaths"
            and e.trial_key == ev.trial
            and _counts_ready(e.arm("iort"))
            and _counts_ready(e.arm("ebrt"))
        ),
        None,
    )
    if deaths is not None:
        iort, ebrt = deaths.arm("iort"), deaths.arm("ebrt")
        assert iort is not None and ebrt is not None and iort.n and ebrt.n  # _counts_ready
        years = f" within {deaths.timepoint_years:g} years" if deaths.timepoint_years else ""
        out.append(
            TextFigure(
                f"Died of any cause{years}: {iort.events} of {iort.n:g} women with radiotherapy "
                f"during the operation, {ebrt.events} of {ebrt.n:g} with whole-breast radiotherapy.",
                _source(deaths),
                _ids(iort, ebrt),
            )
        )
    return out


def _first_ready(ev: PatientEvidence, topic: str, all_arms: bool) -> Evidence | None:
    """The best-ranked item of a topic whose shown figures are all patient-ready."""
    for item in ev.items:
        if item.topic != topic:
            continue
        shown = [a for a in item.arms if a.estimate_pct is not None]
        if not shown:
            continue
        if all(a.patient_ready for a in shown) if all_arms else shown[0].patient_ready:
            return item
    return None


def _side_effects(ev: PatientEvidence) -> list[TextFigure]:
    out: list[TextFigure] = []
    for topic, what in PATIENT_TOPICS.items():
        item = _first_ready(ev, topic, all_arms=True)
        sentence = _pair_sentence(item, what) if item else None
        if item and sentence:
            out.append(TextFigure(sentence, _source(item), _ids(*item.arms)))
    item = _first_ready(ev, "toxicity_fibrosis", all_arms=True)
    if item is not None:
        arms = "; ".join(
            f"{a.estimate_pct:g} in 100 after {_arm_caption(a.arm_kind).lower()}"
            + (" alone" if a.arm_kind != "iort_plus_ebrt" else "")
            for a in item.arms
            if a.estimate_pct is not None
        )
        years = f" within {item.timepoint_years:g} years" if item.timepoint_years else ""
        out.append(
            TextFigure(
                f"Hardening of the breast tissue (fibrosis){years}: {arms}.",
                _source(item),
                _ids(*item.arms),
            )
        )
    item = _first_ready(ev, "complication_surgery", all_arms=False)
    if item is not None:
        arm = item.arms[0]
        out.append(
            TextFigure(
                f"A wound problem needing another operation: {arm.estimate_pct:g} in 100 "
                "women treated with radiotherapy during the operation (low-energy x-rays).",
                _source(item),
                _ids(arm),
            )
        )
    return out


def _text_entry(entry: dict[str, Any]) -> str | None:
    """An entry's text, when it is verified with where; otherwise its wording without figures."""
    if entry.get("status") == "verified" and entry.get("where"):
        return " ".join(str(entry["text"]).split())
    without = entry.get("without_figures")
    return " ".join(str(without).split()) if without else None


def _time_added(entry: dict[str, Any]) -> TextFigure:
    """The added operating time; its source only when its figures are shown."""
    verified = entry.get("status") == "verified" and bool(entry.get("where"))
    return TextFigure(_text_entry(entry) or "", str(entry["source"]) if verified else "")


def _visits(burden: Burden, ebrt_after: IconFigure | None, technique: str) -> list[TextFigure]:
    n = burden.iort_extra_visits
    days = burden.course_days
    iort_visits = (
        f"Radiotherapy after your operation: {burden.course_fractions} treatments, "
        f"{'twice a day' if burden.course_fractions > days else 'once a day'} over {days} "
        f"days ({days} hospital visit{'s' if days != 1 else ''})."
        if burden.course_fractions > 1
        else "No extra hospital visits for radiotherapy: it is given during your operation."
        if n == 0
        else f"{n} extra hospital visit{'s' if n != 1 else ''} for the second operation; no "
        "radiotherapy visits after it."
    )
    out = [TextFigure(iort_visits, burden.visits_source)]
    course = patient_text().get("whole_breast_course", {}).get(technique)
    if course and course.get("status") == "verified" and course.get("where"):
        out.append(TextFigure(" ".join(str(course["text"]).split()), str(course["source"])))
    if ebrt_after is not None:
        pct = ebrt_after.groups[0].pct
        out.append(
            TextFigure(
                f"If whole-breast radiotherapy is needed after the operation ({_people(pct)} in "
                "100 women), that course is added.",
                ebrt_after.source,
                ebrt_after.row_ids,
            )
        )
    pub = burden.published_travel
    if pub.get("status") == "verified" and pub.get("where"):
        out.append(
            TextFigure(
                f"In UK TARGIT-A centres, women treated during surgery travelled on average "
                f"{pub['mean_miles_per_patient']['iort']:g} miles for their radiotherapy, those "
                f"treated with whole-breast radiotherapy {pub['mean_miles_per_patient']['ebrt']:g} "
                f"miles ({pub['mean_travel_time_h']['iort']:g} versus "
                f"{pub['mean_travel_time_h']['ebrt']:g} hours of travel).",
                " ".join(str(pub["source"]).split()),
            )
        )
    return out


def _trial_text(ev: PatientEvidence, with_numbers: bool) -> str:
    what = "numbers" if with_numbers else "findings"
    if ev.trial == "NSABP B-39":
        return (
            "No trial has yet compared a single dose of radiotherapy during the operation from a "
            "small radioactive source with radiotherapy to the whole breast. The nearest evidence "
            "is the NSABP B-39 trial, which compared radiotherapy to part of the breast over 5 "
            "days (some of it from a radioactive source placed in the breast) with radiotherapy "
            f"to the whole breast. The {what} below describe groups of women, not what will "
            "happen to you."
        )
    if ev.trial:
        return (
            f"The {what} below come from the {ev.trial} trial, which compared radiotherapy during "
            "the operation with radiotherapy to the whole breast after surgery. They describe "
            "groups of women, not what will happen to you."
        )
    return "No published study results were found for this technique."


def build_patient_summary(
    case: Case,
    evidence: PatientEvidence | None = None,
    burden: Burden | None = None,
    one_way_km: float | None = None,
    generated: dt.date | None = None,
) -> PatientSummary:
    """Collect the figures and text of the patient summary for one case.

    ``one_way_km`` is accepted for the clinician's burden figures; the patient page shows no
    travel figure computed from it (the whole-breast schedule behind it is not verified).
    """
    ev = evidence if evidence is not None else match_evidence(case)
    bd = burden if burden is not None else treatment_burden(case, one_way_km, evidence=ev)
    text = patient_text()
    technique = case.intent.technique
    timing = case.intent.timing
    # A course of fractions after the operation (HDR) is worded as such, not as IORT.
    fractions = case.intent.fractions
    wording = "hdr_course" if technique == "hdr" and fractions > 1 else technique
    day = list(text["on_the_day"]["common_start"])
    if timing in ("during_lumpectomy", "second_procedure") and wording == technique:
        day += text["on_the_day"][timing]
    if wording == technique:
        day += text["on_the_day"][technique] + text["on_the_day"]["common_end"]
    else:
        day += text["on_the_day"][wording]
    added = text["time_added"][wording]
    planned_text = str(text["what_is_planned"][wording]).format(
        fractions=fractions, days=math.ceil(fractions / 2)
    )
    recurrence = tuple(_recurrence(ev))
    ebrt_after = _ebrt_after(ev)
    survival = tuple(_survival(ev))
    return PatientSummary(
        case_id=case.patient.id,
        generated=(generated or dt.date.today()).isoformat(),
        technique_name=text["technique_names"][wording],
        what_is_planned=planned_text,
        on_the_day=tuple(" ".join(str(s).split()) for s in day),
        time_added=_time_added(added),
        trial_text=_trial_text(ev, bool(recurrence or ebrt_after or survival)),
        recurrence=recurrence,
        findings=tuple(_findings_in_words(ev, bool(recurrence))),
        ebrt_after=ebrt_after,
        survival=survival,
        side_effects=tuple(_side_effects(ev)),
        visits=tuple(_visits(bd, ebrt_after, technique)),
        questions=tuple(text["questions"]),
        # The evidence notes speak to the clinician (subgroups, verification): not on this page.
        notes=(),
    )


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("openiort.clinical", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_patient_summary(summary: PatientSummary) -> str:
    """The HTML page of a patient summary."""
    template = _environment().get_template("patient_summary.html")
    return template.render(
        summary=summary, markup=jinja2.utils.markupsafe.Markup, version=openiort.__version__
    )


def write_patient_summary(case: Case, out_dir: str | Path, one_way_km: float | None = None) -> Path:
    """Write ``patient-summary.html`` for a case into ``out_dir`` (created if needed).

    Returns
    -------
    Path
        The written file.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "patient-summary.html"
    html = render_patient_summary(build_patient_summary(case, one_way_km=one_way_km))
    path.write_text(html, encoding="utf-8")
    return path
