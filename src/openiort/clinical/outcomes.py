"""Published outcomes matched to one patient (data/trial_outcomes.csv).

The trial follows the technique (x-ray: TARGIT-A, electron: ELIOT, HDR: the NSABP B-39 trial of
accelerated partial-breast irradiation, which included balloon brachytherapy: no single-dose
intraoperative HDR series with breast outcomes was found), the stratum follows the timing (TARGIT-A: IORT during
lumpectomy = prepathology, as a second procedure = postpathology), and subgroups follow the
patient's tumour. For every topic the figure with the longest follow-up is the default; the
others are listed beside it. Every figure carries its verification status, and a figure re-read
in its primary source carries where (``verified_where``): only such a figure may reach the patient
summary (:attr:`Estimate.patient_ready`); the clinician's report shows every figure with its status.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from openiort.case import Case
from openiort.datafiles import read_data
from openiort.errors import OpenIortInputError

STATUSES = ("verified", "recalled", "secondary")

TOPIC_LABELS: dict[str, str] = {
    "local_recurrence": "Cancer came back in the same breast",
    "local_recurrence_crude": "Cancer came back in the same breast (all events, whole follow-up)",
    "local_recurrence_free": "Alive without the cancer coming back in the same breast",
    "supplemental_ebrt": "Needed whole-breast radiotherapy after IORT",
    "iort_only": "Treated by IORT alone",
    "breast_cancer_mortality": "Died of breast cancer",
    "non_breast_cancer_mortality": "Died of causes other than breast cancer",
    "overall_mortality": "Died of any cause",
    "overall_survival": "Alive",
    "deaths": "Deaths (number)",
    "mastectomy_free_survival": "Alive without mastectomy",
    "distant_disease_free_survival": "Alive without distant spread",
    "long_term_other": "Mastectomy-free, distant-disease-free and overall survival",
    "toxicity_major": "Major complications (any)",
    "toxicity_grade3": "Severe (grade 3) radiotherapy side effects",
    "toxicity_skin_severe": "Severe (grade 3-4) skin complications",
    "toxicity_skin": "Skin side effects",
    "toxicity_fibrosis": "Hardening of breast tissue (fibrosis)",
    "toxicity_late": "Higher-grade late side effects",
    "complication_surgery": "Wound complication needing another operation",
    "treatment_time": "Treatment (beam) time",
}

STRATUM_LABELS: dict[str, str] = {
    "all": "all patients",
    "prepathology": "IORT during the lumpectomy (before final pathology)",
    "postpathology": "IORT as a second procedure (after final pathology)",
    "screen_detected": "screen-detected cancers",
    "single_centre": "single centre (Mannheim)",
    "series": "non-randomised series",
    "low_risk": "ELIOT low-risk subgroup",
    "prepathology_with_supplemental_ebrt": "IORT during lumpectomy, with supplemental EBRT",
    "postpathology_er_pos_her2_neg_endocrine": (
        "second procedure, ER-positive HER2-negative on endocrine therapy"
    ),
    "subgroup:size_le10": "tumour 10 mm or smaller",
    "subgroup:size_11_20": "tumour 11-20 mm",
    "subgroup:size_gt20": "tumour larger than 20 mm",
    "subgroup:grade_1_2": "grade 1-2",
    "subgroup:grade_3": "grade 3",
    "subgroup:er_pos": "ER positive",
    "subgroup:er_neg": "ER negative",
    "subgroup:pr_pos": "PgR positive",
    "subgroup:pr_neg": "PgR negative",
    "subgroup:her2_neg": "HER2 negative",
    "subgroup:her2_pos": "HER2 positive",
    "subgroup:node_neg": "node negative",
    "subgroup:node_pos": "node positive",
}

_ARM_ORDER = {"iort": 0, "apbi": 0, "iort_plus_ebrt": 1, "ebrt": 2, "all": 3, "comparison": 4}


class OutcomeDataError(OpenIortInputError):
    """A malformed row in the outcomes data file."""


def _num(text: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class OutcomeRow:
    """One row of data/trial_outcomes.csv."""

    row_id: str
    trial: str
    trial_key: str
    publication: str
    year: str
    stratum: str
    stratum_key: str
    arm: str
    arm_kind: str
    n: float | None
    median_followup_years: float | None
    outcome: str
    topic: str
    timepoint_years: float | None
    estimate_pct: float | None
    ci95_low: float | None
    ci95_high: float | None
    events: str
    comparison: str
    comparison_value: str
    comparison_ci_low: float | None
    comparison_ci_high: float | None
    p_value: str
    verification: str
    estimate_status: str
    ci_status: str
    comparison_status: str
    source: str
    note: str
    verified_where: str


@cache
def load_outcomes() -> tuple[OutcomeRow, ...]:
    """All rows of the bundled outcomes file, checked.

    Raises
    ------
    OutcomeDataError
        If a row has an unknown topic, stratum, arm kind or status, or a duplicate id.
    """
    rows: list[OutcomeRow] = []
    seen: set[str] = set()
    for raw in read_data("openiort.clinical", "data/trial_outcomes.csv").rows():
        rid = raw["row_id"]
        problems = []
        if rid in seen:
            problems.append("duplicate row_id")
        if raw["topic"] not in TOPIC_LABELS:
            problems.append(f"unknown topic {raw['topic']!r}")
        if raw["stratum_key"] not in STRATUM_LABELS:
            problems.append(f"unknown stratum_key {raw['stratum_key']!r}")
        if raw["arm_kind"] not in _ARM_ORDER:
            problems.append(f"unknown arm_kind {raw['arm_kind']!r}")
        for key in ("estimate_status", "ci_status", "comparison_status"):
            if raw[key] and raw[key] not in STATUSES:
                problems.append(f"{key} {raw[key]!r} not in {STATUSES}")
        if problems:
            raise OutcomeDataError(f"trial_outcomes.csv row {rid!r}: " + "; ".join(problems))
        seen.add(rid)
        rows.append(
            OutcomeRow(
                row_id=rid,
                trial=raw["trial"],
                trial_key=raw["trial_key"],
                publication=raw["publication"],
                year=raw["year"],
                stratum=raw["stratum"],
                stratum_key=raw["stratum_key"],
                arm=raw["arm"],
                arm_kind=raw["arm_kind"],
                n=_num(raw["n"]),
                median_followup_years=_num(raw["median_followup_years"]),
                outcome=raw["outcome"],
                topic=raw["topic"],
                timepoint_years=_num(raw["timepoint_years"]),
                estimate_pct=_num(raw["estimate_pct"]),
                ci95_low=_num(raw["ci95_low"]),
                ci95_high=_num(raw["ci95_high"]),
                events=raw["events"],
                comparison=raw["comparison"],
                comparison_value=raw["comparison_value"],
                comparison_ci_low=_num(raw["comparison_ci_low"]),
                comparison_ci_high=_num(raw["comparison_ci_high"]),
                p_value=raw["p_value"],
                verification=raw["verification"],
                estimate_status=raw["estimate_status"],
                ci_status=raw["ci_status"],
                comparison_status=raw["comparison_status"],
                source=raw["source"],
                note=raw["note"],
                verified_where=raw["verified_where"].strip(),
            )
        )
    return tuple(rows)


@dataclass(frozen=True)
class Estimate:
    """One arm's figure."""

    arm: str
    arm_kind: str
    estimate_pct: float | None
    ci95_pct: tuple[float, float] | None
    n: float | None
    events: str
    status: str  # verified | recalled | secondary ('' when the row has no estimate)
    ci_status: str
    row_id: str
    verified_where: str = ""

    @property
    def patient_ready(self) -> bool:
        """Whether this figure may be shown to a patient: verified, and where recorded."""
        return (
            self.estimate_pct is not None
            and self.status == "verified"
            and bool(self.verified_where)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "arm": self.arm,
            "arm_kind": self.arm_kind,
            "estimate_pct": self.estimate_pct,
            "ci95_pct": list(self.ci95_pct) if self.ci95_pct else None,
            "n": self.n,
            "events": self.events,
            "status": self.status,
            "ci_status": self.ci_status,
            "row_id": self.row_id,
            "verified_where": self.verified_where,
            "patient_ready": self.patient_ready,
        }


@dataclass(frozen=True)
class Evidence:
    """One topic of one publication for one stratum and time point, all arms together."""

    topic: str
    label: str
    trial: str
    trial_key: str
    publication: str
    year: str
    stratum_key: str
    stratum: str
    timepoint_years: float | None
    median_followup_years: float | None
    arms: tuple[Estimate, ...]
    comparison: str
    comparison_status: str
    p_value: str
    verification: str
    status: str  # verified | recalled | secondary | mixed
    default: bool
    source: str
    note: str

    def arm(self, kind: str) -> Estimate | None:
        for a in self.arms:
            if a.arm_kind == kind:
                return a
        return None

    @property
    def has_rates(self) -> bool:
        iort, ebrt = self.treated_arm, self.arm("ebrt")
        return bool(
            iort and iort.estimate_pct is not None and ebrt and ebrt.estimate_pct is not None
        )

    @property
    def treated_arm(self) -> Estimate | None:
        """The partial-breast arm: IORT, or accelerated partial-breast irradiation (B-39)."""
        return self.arm("iort") or self.arm("apbi")

    @property
    def pair_patient_ready(self) -> bool:
        """Both compared arms' figures may be shown to a patient."""
        iort, ebrt = self.treated_arm, self.arm("ebrt")
        return bool(iort and ebrt and iort.patient_ready and ebrt.patient_ready)

    def to_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "label": self.label,
            "trial": self.trial,
            "trial_key": self.trial_key,
            "publication": self.publication,
            "year": self.year,
            "stratum_key": self.stratum_key,
            "stratum": self.stratum,
            "timepoint_years": self.timepoint_years,
            "median_followup_years": self.median_followup_years,
            "arms": [a.to_dict() for a in self.arms],
            "comparison": self.comparison,
            "comparison_status": self.comparison_status,
            "p_value": self.p_value,
            "verification": self.verification,
            "status": self.status,
            "default": self.default,
            "source": self.source,
            "note": self.note,
        }


def _comparison_text(row: OutcomeRow) -> str:
    """The comparison as a short phrase: 'HR 1.13 (95 % CI 0.91 to 1.41)'."""
    if not (row.comparison or row.comparison_value):
        return ""
    described = row.comparison.lower()
    try:
        value = f"{float(row.comparison_value):g}"
    except ValueError:  # qualitative: "fewer with ELIOT", "reported 'not different'"
        return " ".join(p for p in (row.comparison, row.comparison_value) if p)
    if described.startswith("hr"):
        text = f"HR {value}"
    elif "difference" in described:
        text = f"difference {value} percentage points"
    else:
        text = f"{row.comparison} {value}".strip()
    lo, hi = row.comparison_ci_low, row.comparison_ci_high
    if lo is not None and hi is not None:
        text += f" (95 % CI {lo:g} to {hi:g})"
    elif hi is not None:
        text += f" (upper {'90 % ' if '90%' in described else ''}confidence limit {hi:g})"
    return text


def _status(figures: Iterable[str]) -> str:
    present = {f for f in figures if f}
    if len(present) == 1:
        return next(iter(present))
    return "mixed" if present else ""


def _followup(rows: Iterable[OutcomeRow]) -> dict[str, float]:
    """Median follow-up per publication: the largest stated in any of its rows."""
    out: dict[str, float] = {}
    for r in rows:
        if r.median_followup_years is not None:
            out[r.publication] = max(out.get(r.publication, 0.0), r.median_followup_years)
    return out


def _group(rows: list[OutcomeRow], followup: dict[str, float]) -> list[Evidence]:
    groups: dict[tuple[Any, ...], list[OutcomeRow]] = {}
    for r in rows:
        # Arms of one publication share trial, year, stratum, topic and time point (the
        # publication text itself is abbreviated in some rows, e.g. "same abstract").
        key: tuple[Any, ...] = (r.trial_key, r.year, r.stratum_key, r.topic, r.timepoint_years)
        if r.arm_kind == "comparison":
            key += (r.row_id,)  # a comparison row stands alone
        groups.setdefault(key, []).append(r)
    items: list[Evidence] = []
    for members in groups.values():
        members.sort(key=lambda r: _ARM_ORDER[r.arm_kind])
        first = members[0]
        arms = tuple(
            Estimate(
                arm=r.arm,
                arm_kind=r.arm_kind,
                estimate_pct=r.estimate_pct,
                ci95_pct=(r.ci95_low, r.ci95_high)
                if r.ci95_low is not None and r.ci95_high is not None
                else None,
                n=r.n,
                events=r.events,
                status=r.estimate_status if r.estimate_pct is not None else "",
                ci_status=r.ci_status,
                row_id=r.row_id,
                verified_where=r.verified_where,
            )
            for r in members
        )
        with_comparison = [r for r in members if r.comparison or r.comparison_value]
        comparison = _comparison_text(with_comparison[0]) if with_comparison else ""
        comp_status = with_comparison[0].comparison_status if with_comparison else ""
        figures = [a.status for a in arms] + [comp_status]
        items.append(
            Evidence(
                topic=first.topic,
                label=TOPIC_LABELS[first.topic],
                trial=first.trial,
                trial_key=first.trial_key,
                publication=first.publication,
                year=first.year,
                stratum_key=first.stratum_key,
                stratum=STRATUM_LABELS[first.stratum_key],
                timepoint_years=first.timepoint_years,
                median_followup_years=followup.get(first.publication),
                arms=arms,
                comparison=comparison,
                comparison_status=comp_status,
                p_value=next((r.p_value for r in members if r.p_value), ""),
                verification="; ".join(dict.fromkeys(r.verification for r in members)),
                status=_status(figures),
                default=False,
                source=first.source,
                note=" ".join(dict.fromkeys(r.note for r in members if r.note)),
            )
        )
    return items


def _rank(item: Evidence, stratum: str) -> tuple[float, ...]:
    """Sort key: the patient's stratum first, then the longest follow-up and time point."""
    return (
        0.0 if item.stratum_key == stratum else 1.0 if item.stratum_key == "all" else 2.0,
        -(item.median_followup_years or 0.0),
        -(item.timepoint_years or 0.0),
        0.0 if item.has_rates else 1.0,
        -float(item.year) if item.year.isdigit() else 0.0,
    )


def _mark_defaults(items: list[Evidence], stratum: str) -> list[Evidence]:
    """Order items per topic and mark the first (longest follow-up) as the default."""
    by_topic: dict[str, list[Evidence]] = {}
    for item in items:
        by_topic.setdefault(item.topic, []).append(item)
    ordered: list[Evidence] = []
    for topic in TOPIC_LABELS:
        group = sorted(by_topic.get(topic, []), key=lambda e: _rank(e, stratum))
        ordered += [replace(item, default=i == 0) for i, item in enumerate(group)]
    return ordered


@dataclass(frozen=True)
class PatientEvidence:
    """The published evidence that applies to one case."""

    case_id: str
    technique: str
    timing: str | None
    trial: str | None
    stratum_key: str
    items: tuple[Evidence, ...]
    subgroups: tuple[Evidence, ...]
    notes: tuple[str, ...]

    def best(
        self,
        topic: str,
        with_rates: bool = False,
        trial: str | None = None,
        patient_ready: bool = False,
    ) -> Evidence | None:
        """The best-ranked (longest follow-up) item of a topic, optionally of one trial, with
        both arms' rates, and (``patient_ready``) with both arms' figures verified where
        recorded (or, without ``with_rates``, the partial-breast arm's figure)."""
        for item in self.items:
            if item.topic != topic or (trial is not None and item.trial_key != trial):
                continue
            if with_rates and not item.has_rates:
                continue
            if patient_ready:
                arm = item.treated_arm
                ready = item.pair_patient_ready if with_rates else bool(arm and arm.patient_ready)
                if not ready:
                    continue
            return item
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "technique": self.technique,
            "timing": self.timing,
            "trial": self.trial,
            "stratum": STRATUM_LABELS.get(self.stratum_key, self.stratum_key),
            "items": [e.to_dict() for e in self.items],
            "subgroups": [e.to_dict() for e in self.subgroups],
            "notes": list(self.notes),
        }


def _subgroup_keys(case: Case) -> tuple[list[str], list[str]]:
    """BJC 2021 subgroups the patient belongs to, and what was not known to place her."""
    p, pre = case.pathology, case.preoperative
    keys: list[str] = []
    unknown: list[str] = []
    size = p.size_mm if p and p.size_mm is not None else pre.imaging_size_mm
    if size is None:
        unknown.append("size")
    else:
        keys.append("size_le10" if size <= 10 else "size_11_20" if size <= 20 else "size_gt20")
    grade = p.grade if p and p.grade is not None else pre.biopsy_grade
    if grade is None:
        unknown.append("grade")
    else:
        keys.append("grade_3" if grade == 3 else "grade_1_2")
    for name, value in (("er", pre.er_status), ("pr", pre.pr_status), ("her2", pre.her2_status)):
        if value is None:
            unknown.append(name.upper())
        else:
            keys.append(f"{name}_{'pos' if value == 'positive' else 'neg'}")
    stage = p.nodal_stage if p else None
    if stage is None or stage == "pNx":
        unknown.append("nodes")
    else:
        keys.append("node_neg" if stage in ("pN0", "pN0(i+)") else "node_pos")
    return [f"subgroup:{k}" for k in keys], unknown


def _eliot_low_risk(case: Case) -> bool:
    """The (recalled) ELIOT low-risk definition: all four factors known to be absent."""
    p, pre = case.pathology, case.preoperative
    if p is None or p.size_mm is None or p.grade is None or p.positive_nodes is None:
        return False
    triple_negative = (pre.er_status, pre.pr_status, pre.her2_status) == ("negative",) * 3
    if None in (pre.er_status, pre.pr_status, pre.her2_status):
        return False
    return p.size_mm <= 20 and p.grade != 3 and p.positive_nodes < 4 and not triple_negative


def match_evidence(case: Case) -> PatientEvidence:
    """The published outcomes that apply to this case.

    Parameters
    ----------
    case
        A validated case; its technique chooses the trial, its timing the stratum, and its
        tumour (pathology, or preoperative findings) the subgroups.
    """
    rows = load_outcomes()
    followup = _followup(rows)
    technique = case.intent.technique
    timing = case.intent.timing
    notes: list[str] = []
    subgroups: list[Evidence] = []
    if technique == "xray":
        trial = "TARGIT-A"
        stratum = {"during_lumpectomy": "prepathology", "second_procedure": "postpathology"}.get(
            timing or "", "all"
        )
        if stratum == "all":
            notes.append("The timing of IORT is not recorded: figures for all TARGIT-A patients.")
        wanted = {stratum, "all", "single_centre", "prepathology_with_supplemental_ebrt"}
        if stratum != "prepathology":
            wanted.discard("prepathology_with_supplemental_ebrt")
        if case.preoperative.screen_detected:
            wanted.add("screen_detected")
        if stratum == "postpathology" and (
            case.preoperative.er_status,
            case.preoperative.her2_status,
        ) == ("positive", "negative"):
            wanted.add("postpathology_er_pos_her2_neg_endocrine")
            notes.append(
                "The ER-positive HER2-negative subgroup of the second-procedure stratum was "
                "receiving endocrine therapy, which the case does not record."
            )
        chosen = [
            r
            for r in rows
            if r.trial_key in ("TARGIT-A", "low-kV IORT cohort")
            and (
                r.stratum_key in wanted
                # the need for EBRT afterwards is shown for both timings, to compare them
                or (r.topic == "supplemental_ebrt" and r.stratum_key.endswith("pathology"))
            )
        ]
        age = case.patient.age_years
        if age is not None and age >= 70:
            chosen += [r for r in rows if r.trial_key == "TARGIT-E"]
            notes.append("Age 70 or older: the single-arm TARGIT-E (elderly) results also apply.")
        if stratum == "prepathology":
            keys, unknown = _subgroup_keys(case)
            sub_rows = [r for r in rows if r.stratum_key in keys]
            subgroups = _mark_defaults(_group(sub_rows, followup), stratum)
            if unknown:
                notes.append(
                    "TARGIT-A subgroups not matched (not known): " + ", ".join(unknown) + "."
                )
    elif technique == "electron":
        trial = "ELIOT"
        stratum = "all"
        wanted = {"all", "series"}
        if _eliot_low_risk(case):
            wanted.add("low_risk")
            notes.append(
                "The ELIOT low-risk subgroup definition (size up to 2 cm, fewer than 4 positive "
                "nodes, grade 1-2, not triple negative) is recalled, not verified."
            )
        chosen = [r for r in rows if r.trial_key == "ELIOT" and r.stratum_key in wanted]
    else:
        trial = "NSABP B-39"
        stratum = "all"
        chosen = [r for r in rows if r.trial_key == "NSABP B-39"]
        notes.append(
            "No single-fraction intraoperative HDR series with breast outcomes was found in the "
            "compiled evidence. The figures are those of NSABP B-39/RTOG 0413: accelerated "
            "partial-breast irradiation in 10 twice-daily fractions (brachytherapy, balloon "
            "devices included, or 3D external beam) against whole-breast irradiation; not a "
            "single intraoperative dose."
        )
    items = _mark_defaults(_group(chosen, followup), stratum)
    return PatientEvidence(
        case_id=case.patient.id,
        technique=technique,
        timing=timing,
        trial=trial,
        stratum_key=stratum,
        items=tuple(items),
        subgroups=tuple(subgroups),
        notes=tuple(notes),
    )
