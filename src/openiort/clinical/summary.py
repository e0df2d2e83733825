"""The plain-language patient summary: one printable, self-contained HTML page.

Every figure on the page comes from the matched evidence (:mod:`.outcomes`) or the burden data
(:mod:`.burden`) and is printed with its source and, in plain words, whether it was checked
against the published paper or is recalled and still to be confirmed. Icon arrays are inline
SVG; the page loads nothing from the network.
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
from openiort.clinical.outcomes import Evidence, PatientEvidence, match_evidence
from openiort.datafiles import read_data

AFFECTED_COLOUR = "#b45309"
IORT_COLOUR = "#0f766e"
OTHER_COLOUR = "#d6dbe1"

STATUS_WORDS = {
    "verified": "Checked against the published source.",
    "secondary": "Taken from a secondary report (news, vendor or review), not the original paper.",
    "recalled": (
        "Not yet checked: this number is recalled from the published paper and must be "
        "confirmed before you rely on it."
    ),
    "assumption": "A working assumption, not a published figure.",
    "mixed": "Partly checked.",
    "": "",
}


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
    status: str
    status_text: str
    note: str = ""


@dataclass(frozen=True)
class TextFigure:
    statement: str
    source: str
    status: str
    status_text: str


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
    ebrt_after: IconFigure | None
    survival: tuple[TextFigure, ...]
    side_effects: tuple[TextFigure, ...]
    visits: tuple[TextFigure, ...]
    questions: tuple[str, ...]
    notes: tuple[str, ...]
    notice: str = field(default=openiort.RESEARCH_NOTICE)


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
    follow = (
        f", median follow-up {item.median_followup_years:g} years"
        if item.median_followup_years
        else ""
    )
    return f"{item.trial_key}: {item.stratum}{follow}. {item.publication}"


def _arm_caption(kind: str) -> str:
    return {
        "iort": "Radiotherapy during the operation",
        "ebrt": "Radiotherapy to the whole breast after surgery",
        "iort_plus_ebrt": "Radiotherapy during the operation, then to the whole breast",
        "all": "All women in the study",
    }[kind]


def _recurrence_figure(item: Evidence, women: str) -> IconFigure | None:
    iort, ebrt = item.arm("iort"), item.arm("ebrt")
    if not (iort and ebrt and iort.estimate_pct is not None and ebrt.estimate_pct is not None):
        return None
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
        f"Out of 100 {women}, {_people(iort.estimate_pct)} had the cancer come back in the same "
        f"breast within {years} years ({iort.estimate_pct:g} in 100). With radiotherapy to the "
        f"whole breast instead, {_people(ebrt.estimate_pct)} did ({ebrt.estimate_pct:g} in 100)."
    )
    return IconFigure(
        title=f"Cancer coming back in the same breast within {years} years",
        sentence=sentence,
        groups=groups,
        source=_source(item),
        status=item.status,
        status_text=_status_text(item),
    )


_PLAIN_STATUS = {"verified": "checked", "recalled": "not yet checked", "secondary": "secondary"}


def _status_text(item: Evidence) -> str:
    if item.status != "mixed":
        return STATUS_WORDS[item.status]
    checked: list[str] = []
    unchecked: list[str] = []
    for a in item.arms:
        if a.status and a.estimate_pct is not None:
            (checked if a.status == "verified" else unchecked).append(f"{a.estimate_pct:g} in 100")
    if item.comparison_status:
        target = checked if item.comparison_status == "verified" else unchecked
        target.append("the difference between them")
    text = "Partly checked."
    if unchecked:
        text += " Not yet checked (recalled from the paper, to be confirmed): "
        text += " and ".join(unchecked) + "."
    if checked:
        text += " Checked against the published source: " + " and ".join(checked) + "."
    return text


def _text_figure(statement: str, item: Evidence) -> TextFigure:
    return TextFigure(statement, _source(item), item.status, _status_text(item))


def _women(ev: PatientEvidence) -> str:
    if ev.trial == "TARGIT-A" and ev.stratum_key == "prepathology":
        return (
            "women in the TARGIT-A trial who, like you, had this treatment during their lumpectomy"
        )
    if ev.trial == "TARGIT-A" and ev.stratum_key == "postpathology":
        return "women in the TARGIT-A trial who, like you, had it as a second operation"
    if ev.trial == "ELIOT":
        return "women in the ELIOT trial who had electron radiotherapy during the operation"
    return "women in the trial"


def _recurrence(ev: PatientEvidence) -> list[IconFigure]:
    """The longest follow-up with both arms' rates, plus ELIOT's 5-year figure beside it."""
    figures: list[IconFigure] = []
    best = ev.best("local_recurrence", with_rates=True, trial=ev.trial)
    if best is None:
        return figures
    first = _recurrence_figure(best, _women(ev))
    if first is not None:
        figures.append(first)
    if ev.trial == "ELIOT":
        five = next(
            (
                e
                for e in ev.items
                if e.topic == "local_recurrence"
                and e.has_rates
                and e.timepoint_years == 5
                and e.year != best.year
            ),
            None,
        )
        extra = _recurrence_figure(five, _women(ev)) if five else None
        if extra is not None:
            figures.append(extra)
    return figures


def _ebrt_after(ev: PatientEvidence) -> IconFigure | None:
    item = ev.best("supplemental_ebrt", trial=ev.trial) if ev.trial else None
    arm = item.arm("iort") if item else None
    if item is None or arm is None or arm.estimate_pct is None:
        return None
    n = people_out_of_100(arm.estimate_pct)
    return IconFigure(
        title="Needing radiotherapy to the whole breast afterwards",
        sentence=(
            f"Out of 100 {_women(ev)}, {_people(arm.estimate_pct)} ({arm.estimate_pct:g} in 100) "
            "also needed radiotherapy to the whole breast, because the tests on the removed tissue "
            "showed features that made it advisable."
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
        status=item.status,
        status_text=_status_text(item),
        note=_second_procedure_note(ev),
    )


def _second_procedure_note(ev: PatientEvidence) -> str:
    """For IORT during lumpectomy: the rate when IORT waited for the tissue results."""
    if ev.stratum_key != "prepathology":
        return ""
    for item in ev.items:
        arm = item.arm("iort")
        if (
            item.topic == "supplemental_ebrt"
            and item.stratum_key == "postpathology"
            and arm is not None
            and arm.estimate_pct is not None
        ):
            return (
                f"When the radiotherapy was given as a second operation, after the tissue results "
                f"were known, {_people(arm.estimate_pct)} in 100 ({arm.estimate_pct:g}) needed it "
                f"({item.trial_key}, {item.publication.split(' (')[0]}; "
                f"{_PLAIN_STATUS[arm.status]})."
            )
    return ""


def _pair_sentence(item: Evidence, what: str) -> str | None:
    iort, ebrt = item.arm("iort"), item.arm("ebrt")
    if not (iort and ebrt and iort.estimate_pct is not None and ebrt.estimate_pct is not None):
        return None
    years = f" within {item.timepoint_years:g} years" if item.timepoint_years else ""
    return (
        f"{what}{years}: {iort.estimate_pct:g} in 100 with radiotherapy during the operation, "
        f"{ebrt.estimate_pct:g} in 100 with whole-breast radiotherapy."
    )


def _survival(ev: PatientEvidence) -> list[TextFigure]:
    out: list[TextFigure] = []
    wanted = (
        ("breast_cancer_mortality", "Died of breast cancer"),
        ("overall_mortality", "Died of any cause"),
        ("non_breast_cancer_mortality", "Died of causes other than breast cancer"),
        ("overall_survival", "Alive"),
    )
    for topic, what in wanted:
        item = ev.best(topic, with_rates=True, trial=ev.trial)
        if item is None or item.stratum_key == "single_centre":
            continue
        sentence = _pair_sentence(item, what)
        if sentence:
            out.append(_text_figure(sentence, item))
    return out


def _side_effects(ev: PatientEvidence) -> list[TextFigure]:
    out: list[TextFigure] = []
    for item in ev.items:
        if not item.default:
            continue
        if item.topic in PATIENT_TOPICS:
            sentence = _pair_sentence(item, PATIENT_TOPICS[item.topic])
            if sentence:
                out.append(_text_figure(sentence, item))
        elif item.topic == "toxicity_fibrosis":
            arms = "; ".join(
                f"{a.estimate_pct:g} in 100 after {_arm_caption(a.arm_kind).lower()}"
                + (" alone" if a.arm_kind != "iort_plus_ebrt" else "")
                for a in item.arms
                if a.estimate_pct is not None
            )
            years = f" within {item.timepoint_years:g} years" if item.timepoint_years else ""
            out.append(
                _text_figure(f"Hardening of the breast tissue (fibrosis){years}: {arms}.", item)
            )
        elif item.topic == "complication_surgery":
            arm = item.arms[0]
            out.append(
                _text_figure(
                    f"A wound problem needing another operation: {arm.estimate_pct:g} in 100 "
                    "women treated with radiotherapy during the operation (low-energy x-rays).",
                    item,
                )
            )
        elif item.topic == "toxicity_skin":
            out.append(
                _text_figure(
                    "Skin side effects were less common than with whole-breast radiotherapy.", item
                )
            )
    return out


def _visits(burden: Burden) -> list[TextFigure]:
    wbi = burden.comparator_schedule
    n = burden.iort_extra_visits
    iort_visits = (
        "No extra hospital visits for radiotherapy: it is given during your operation."
        if n == 0
        else f"{n} extra hospital visit{'s' if n != 1 else ''} for the second operation; no "
        "radiotherapy visits after it."
    )
    out = [
        TextFigure(
            iort_visits,
            burden.visits_source,
            burden.visits_status,
            STATUS_WORDS[burden.visits_status],
        ),
        TextFigure(
            f"Radiotherapy to the whole breast, as {wbi.patient_label}: about {wbi.visits} visits "
            f"({burden.planning_visits} to plan it, {wbi.fractions} for treatment) over "
            f"{wbi.span_days} days. Shorter and longer courses are also used.",
            " ".join(wbi.source.split()) + "; planning visit: " + burden.planning_source,
            wbi.status,
            STATUS_WORDS[wbi.status],
        ),
    ]
    if burden.p_ebrt_after_iort_pct is not None:
        out.append(
            TextFigure(
                f"If whole-breast radiotherapy is needed after the operation "
                f"({_people(burden.p_ebrt_after_iort_pct)} in 100 women), that course is added.",
                burden.p_ebrt_source,
                burden.p_ebrt_status,
                STATUS_WORDS[burden.p_ebrt_status],
            )
        )
    if wbi.travel is not None:
        out.append(
            TextFigure(
                f"At your distance from the radiotherapy centre, that course means about "
                f"{wbi.travel.distance_km:.0f} km of travel and {wbi.travel.hospital_time_h:g} hours "
                "in hospital.",
                "Your distance; targit.org.uk travel calculator assumption of 1 hour in hospital "
                "per trip",
                "verified",
                STATUS_WORDS["verified"],
            )
        )
    pub = burden.published_travel
    out.append(
        TextFigure(
            f"In UK TARGIT-A centres, women treated during surgery travelled on average "
            f"{pub['mean_miles_per_patient']['iort']:g} miles for their radiotherapy, those "
            f"treated with whole-breast radiotherapy {pub['mean_miles_per_patient']['ebrt']:g} "
            f"miles ({pub['mean_travel_time_h']['iort']:g} versus "
            f"{pub['mean_travel_time_h']['ebrt']:g} hours of travel).",
            " ".join(str(pub["source"]).split()),
            str(pub["status"]),
            STATUS_WORDS[str(pub["status"])],
        )
    )
    return out


def build_patient_summary(
    case: Case,
    evidence: PatientEvidence | None = None,
    burden: Burden | None = None,
    one_way_km: float | None = None,
    generated: dt.date | None = None,
) -> PatientSummary:
    """Collect the figures and text of the patient summary for one case."""
    ev = evidence if evidence is not None else match_evidence(case)
    bd = burden if burden is not None else treatment_burden(case, one_way_km, evidence=ev)
    text = patient_text()
    technique = case.intent.technique
    timing = case.intent.timing
    day = list(text["on_the_day"]["common_start"])
    if timing in ("during_lumpectomy", "second_procedure"):
        day += text["on_the_day"][timing]
    day += text["on_the_day"][technique] + text["on_the_day"]["common_end"]
    added = text["time_added"][technique]
    if ev.trial:
        trial_text = (
            f"The numbers below come from the {ev.trial} trial, which compared radiotherapy during "
            "the operation with radiotherapy to the whole breast after surgery. They describe "
            "groups of women, not what will happen to you."
        )
    else:
        trial_text = "No published study results were found for this technique."
    return PatientSummary(
        case_id=case.patient.id,
        generated=(generated or dt.date.today()).isoformat(),
        technique_name=text["technique_names"][technique],
        what_is_planned=text["what_is_planned"][technique],
        on_the_day=tuple(" ".join(str(s).split()) for s in day),
        time_added=TextFigure(
            added["text"], added["source"], added["status"], STATUS_WORDS[added["status"]]
        ),
        trial_text=trial_text,
        recurrence=tuple(_recurrence(ev)),
        ebrt_after=_ebrt_after(ev),
        survival=tuple(_survival(ev)),
        side_effects=tuple(_side_effects(ev)),
        visits=tuple(_visits(bd)),
        questions=tuple(text["questions"]),
        notes=ev.notes,
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
