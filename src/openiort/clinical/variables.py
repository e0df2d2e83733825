"""The rule vocabulary mapped onto the case vocabulary, in one place.

The compiled guideline rules (shared/reference/clinical/eligibility_rules.yaml) use older
variable names (``tumor_size_cm``, ``pn_stage``, ``t_stage``, ``margin_status``,
``pure_dcis``...). Each :class:`Variable` here says what a name means, which values it takes,
and how it is read or derived from the case (``Case`` in :mod:`openiort.case`). Guideline files
may use only these names; the loader rejects any other.

A derived value is never guessed. When the case does not determine it, :class:`Derived` holds
every value still possible (a set, or an interval for numbers) and the case fields that would
settle it, so that the evaluator can tell whether the missing value could change a verdict.
Some variables do not apply to some cases (the invasive grade of a pure DCIS): ``maybe_na``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from openiort.clinical.facts import NODAL_STAGE_POSITIVE_NODES, Facts

Kind = Literal["number", "bool", "category"]


@dataclass(frozen=True)
class Interval:
    """Closed interval of still-possible numeric values."""

    lo: float
    hi: float

    def __post_init__(self) -> None:
        if self.lo > self.hi:
            raise ValueError(f"empty interval [{self.lo}, {self.hi}]")

    @property
    def is_point(self) -> bool:
        return self.lo == self.hi


Values = frozenset[Any] | Interval


@dataclass(frozen=True)
class Derived:
    """What a variable can be for one case.

    ``values`` is ``None`` when the variable certainly does not apply; ``maybe_na`` is true
    when it may not apply (the histology that decides it is unknown).
    """

    values: Values | None
    maybe_na: bool = False
    missing: tuple[str, ...] = ()
    observed: tuple[str, ...] = ()

    @property
    def known(self) -> bool:
        if self.maybe_na:
            return False
        if isinstance(self.values, Interval):
            return self.values.is_point
        return self.values is None or len(self.values) == 1


@dataclass(frozen=True)
class Variable:
    """A rule variable: its meaning, its values, and how it is derived from the case."""

    name: str
    kind: Kind
    meaning: str
    reads: tuple[str, ...]  # case fields it is derived from
    derive: Callable[[Facts, Mapping[str, Any]], Derived]
    domain: tuple[Any, ...] = ()  # allowed values (category)
    bounds: tuple[float, float] = (-math.inf, math.inf)  # possible range (number)
    parameters: tuple[str, ...] = ()  # guideline parameters the derivation needs

    def all_values(self) -> Values:
        if self.kind == "number":
            return Interval(*self.bounds)
        if self.kind == "bool":
            return frozenset({True, False})
        return frozenset(self.domain)


# --- helpers ------------------------------------------------------------------------------


def _cm(mm: float) -> float:
    # Round so that e.g. 21 mm compares equal to a 2.1 cm threshold written in a rule.
    return round(mm / 10.0, 6)


def _point(var: Variable, value: Any, observed: str) -> Derived:
    if var.kind == "number":
        return Derived(Interval(float(value), float(value)), observed=(observed,))
    return Derived(frozenset({value}), observed=(observed,))


def _unknown(var: Variable, *missing: str) -> Derived:
    return Derived(var.all_values(), missing=tuple(missing))


def _na(observed: str) -> Derived:
    return Derived(None, observed=(observed,))


def _merge(*parts: Derived, values: Values | None, maybe_na: bool = False) -> Derived:
    missing: list[str] = []
    observed: list[str] = []
    for p in parts:
        missing += [m for m in p.missing if m not in missing]
        observed += [o for o in p.observed if o not in observed]
    return Derived(values, maybe_na, tuple(missing), tuple(observed))


def _field(facts: Facts, path: str) -> Derived:
    """A field as a one-value Derived, or with ``values=None`` and the field missing."""
    r = facts.read(path)
    if r.value is None:
        return Derived(None, missing=(path,))
    return Derived(frozenset({r.value}), observed=(r.observed,))


def _value(d: Derived) -> Any:
    assert isinstance(d.values, frozenset) and len(d.values) == 1
    return next(iter(d.values))


_REGISTRY: dict[str, Variable] = {}


def _register(
    name: str,
    kind: Kind,
    meaning: str,
    reads: tuple[str, ...],
    *,
    domain: tuple[Any, ...] = (),
    bounds: tuple[float, float] = (-math.inf, math.inf),
    parameters: tuple[str, ...] = (),
) -> Callable[[Callable[[Variable, Facts, Mapping[str, Any]], Derived]], None]:
    def wrap(fn: Callable[[Variable, Facts, Mapping[str, Any]], Derived]) -> None:
        holder: list[Variable] = []

        def derive(facts: Facts, params: Mapping[str, Any]) -> Derived:
            return fn(holder[0], facts, params)

        var = Variable(name, kind, meaning, reads, derive, domain, bounds, parameters)
        holder.append(var)
        if name in _REGISTRY:
            raise RuntimeError(f"variable {name} registered twice")
        _REGISTRY[name] = var

    return wrap


def _direct(
    name: str,
    kind: Kind,
    path: str,
    meaning: str,
    *,
    domain: tuple[Any, ...] = (),
    bounds: tuple[float, float] = (-math.inf, math.inf),
    scale_to_cm: bool = False,
) -> None:
    """A variable that is one case field (optionally mm converted to cm)."""

    @_register(name, kind, meaning, (path,), domain=domain, bounds=bounds)
    def _(var: Variable, facts: Facts, params: Mapping[str, Any]) -> Derived:
        r = facts.read(path)
        if r.value is None:
            return _unknown(var, path)
        value = _cm(r.value) if scale_to_cm else r.value
        return _point(var, value, r.observed)


def get_variable(name: str) -> Variable:
    """The variable called ``name``; KeyError if the vocabulary has no such name."""
    return _REGISTRY[name]


def variable_names() -> list[str]:
    return sorted(_REGISTRY)


HISTOLOGIES = ("ductal_nst", "lobular", "mucinous", "tubular", "medullary", "colloid", "other")
PN_STAGES = ("pN0", "pN0(i+)", "pN1mi", "pN1a", "pN2a", "pN3", "pNx")

# --- patient and intent -------------------------------------------------------------------

_direct("age_years", "number", "patient.age_years", "age in whole years", bounds=(18, 110))
_direct("brca_mutation", "bool", "patient.brca_mutation", "known germline BRCA1 or BRCA2 mutation")
_direct(
    "prior_ipsilateral_cancer_or_rt",
    "bool",
    "patient.prior_ipsilateral_cancer_or_rt",
    "previous cancer and/or irradiation of the same breast (pending case field)",
)
_direct(
    "bilateral_cancer_at_diagnosis",
    "bool",
    "preoperative.bilateral_cancer",
    "cancer in both breasts at diagnosis (pending case field)",
)
_direct(
    "iort_within_registry_or_trial",
    "bool",
    "intent.within_registry_or_trial",
    "IORT given within a prospective registry or trial (pending case field)",
)


@_register(
    "brca2_mutation",
    "bool",
    "known germline BRCA2 mutation",
    ("patient.brca2_mutation", "patient.brca_mutation"),
)
def _brca2(var: Variable, facts: Facts, params: Mapping[str, Any]) -> Derived:
    specific = facts.read("patient.brca2_mutation")
    if specific.value is not None:
        return _point(var, specific.value, specific.observed)
    either = facts.read("patient.brca_mutation")
    if either.value is False:  # no known BRCA1/2 mutation: no known BRCA2 mutation
        return _point(var, False, either.observed)
    if either.value is None:
        return _unknown(var, "patient.brca_mutation")
    return Derived(
        var.all_values(), missing=("patient.brca2_mutation",), observed=(either.observed,)
    )


@_register(
    "iort_planned", "bool", "the case plans IORT (it has an intent block)", ("intent.technique",)
)
def _iort_planned(var: Variable, facts: Facts, params: Mapping[str, Any]) -> Derived:
    r = facts.read("intent.technique")
    return (
        _point(var, r.value is not None, r.observed)
        if r.value
        else _unknown(var, "intent.technique")
    )


_TECHNIQUE_TO_PBI = {"xray": "iort_lowkv", "electron": "iort_electron", "hdr": "iort_hdr"}


@_register(
    "pbi_technique",
    "category",
    "partial-breast technique: the IORT technique the case plans",
    ("intent.technique",),
    domain=("iort_lowkv", "iort_electron", "iort_hdr"),
)
def _pbi_technique(var: Variable, facts: Facts, params: Mapping[str, Any]) -> Derived:
    r = facts.read("intent.technique")
    if r.value is None:
        return _unknown(var, "intent.technique")
    return _point(var, _TECHNIQUE_TO_PBI[r.value], r.observed)


@_register(
    "suitable_for_bcs",
    "bool",
    "suitable for breast-conserving surgery. The case model has no such field: a case that "
    "plans IORT into a lumpectomy cavity (intent.timing during_lumpectomy or second_procedure) "
    "records that breast-conserving surgery was chosen; preoperative.suitable_for_bcs is "
    "not in the model",
    ("intent.timing",),
)
def _bcs(var: Variable, facts: Facts, params: Mapping[str, Any]) -> Derived:
    r = facts.read("intent.timing")
    if r.value is None:
        return _unknown(var, "intent.timing")
    return _point(var, True, r.observed)


# --- preoperative -------------------------------------------------------------------------

_direct(
    "clinical_tumor_size_cm",
    "number",
    "preoperative.imaging_size_mm",
    "preoperative (imaging) tumour size, cm",
    bounds=(0, 20),
    scale_to_cm=True,
)
_direct(
    "ultrasound_tumor_size_mm",
    "number",
    "preoperative.imaging_size_mm",
    "preoperative tumour diameter, mm (the case records the imaging size without its modality)",
    bounds=(0, 200),
)
_direct(
    "cn_stage",
    "category",
    "preoperative.clinical_nodal_stage",
    "clinical nodal stage",
    domain=("cN0", "cN1", "cN2", "cN3"),
)
_direct(
    "obvious_cancers_in_breast_count",
    "number",
    "preoperative.lesion_count",
    "obvious cancers in the breast on examination or imaging",
    bounds=(0, 20),
)
_direct(
    "core_biopsy_histology",
    "category",
    "preoperative.biopsy_histology",
    "histology on core biopsy",
    domain=(*HISTOLOGIES, "dcis"),
)
_direct(
    "core_biopsy_eic",
    "bool",
    "preoperative.biopsy_eic",
    "extensive intraductal component on core biopsy (EIC: >= 25 % of the tumour intraductal)",
)
_direct(
    "er_status",
    "category",
    "preoperative.er_status",
    "oestrogen receptor status (core biopsy)",
    domain=("positive", "negative"),
)
_direct(
    "neoadjuvant_therapy",
    "bool",
    "preoperative.neoadjuvant_therapy",
    "primary systemic therapy before surgery",
)
_direct(
    "dcis_screen_detected",
    "bool",
    "preoperative.screen_detected",
    "detected by screening (read for pure DCIS)",
)


@_register(
    "core_biopsy_lobular",
    "bool",
    "lobular cancer on core biopsy",
    ("preoperative.biopsy_histology",),
)
def _core_lobular(var: Variable, facts: Facts, params: Mapping[str, Any]) -> Derived:
    r = facts.read("preoperative.biopsy_histology")
    if r.value is None:
        return _unknown(var, "preoperative.biopsy_histology")
    return _point(var, r.value == "lobular", r.observed)


@_register(
    "ct_stage",
    "category",
    "clinical T stage from the imaging size (AJCC: T1 <= 20 mm, T2 <= 50 mm, T3 > 50 mm; "
    "cTis for DCIS on core biopsy). T4 (chest wall or skin invasion) is not recorded in the "
    "case and is taken as absent in a case planned for breast-conserving surgery",
    ("preoperative.imaging_size_mm", "preoperative.biopsy_histology"),
    domain=("cTis", "cT0", "cT1", "cT2", "cT3", "cT4"),
)
def _ct_stage(var: Variable, facts: Facts, params: Mapping[str, Any]) -> Derived:
    hist = facts.read("preoperative.biopsy_histology")
    if hist.value == "dcis":
        return _point(var, "cTis", hist.observed)
    size = facts.read("preoperative.imaging_size_mm")
    if size.value is None:
        return _unknown(var, "preoperative.imaging_size_mm")
    return _point(var, "c" + _t_from_size(size.value), size.observed)


def _t_from_size(size_mm: float) -> str:
    # AJCC 8th edition T categories by the greatest dimension of the invasive tumour.
    if size_mm == 0:
        return "T0"
    if size_mm <= 20:
        return "T1"
    if size_mm <= 50:
        return "T2"
    return "T3"


@_register(
    "clinical_centricity",
    "category",
    "clinically unicentric: one obvious lesion on examination and imaging",
    ("preoperative.lesion_count",),
    domain=("unicentric", "multiple_lesions"),
)
def _clinical_centricity(var: Variable, facts: Facts, params: Mapping[str, Any]) -> Derived:
    r = facts.read("preoperative.lesion_count")
    if r.value is None:
        return _unknown(var, "preoperative.lesion_count")
    return _point(var, "unicentric" if r.value <= 1 else "multiple_lesions", r.observed)


@_register(
    "clinically_node_positive",
    "bool",
    "clinically involved axillary nodes (cN1 or more)",
    ("preoperative.clinical_nodal_stage",),
)
def _clinically_node_positive(var: Variable, facts: Facts, params: Mapping[str, Any]) -> Derived:
    r = facts.read("preoperative.clinical_nodal_stage")
    if r.value is None:
        return _unknown(var, "preoperative.clinical_nodal_stage")
    return _point(var, r.value != "cN0", r.observed)


@_register(
    "gross_nodal_disease",
    "bool",
    "gross nodal disease, clinically malignant or proven by cytology or scan: cN0 means none, "
    "cN2-3 means present; for cN1 the pending field preoperative.gross_nodal_disease decides",
    ("preoperative.gross_nodal_disease", "preoperative.clinical_nodal_stage"),
)
def _gross_nodes(var: Variable, facts: Facts, params: Mapping[str, Any]) -> Derived:
    specific = facts.read("preoperative.gross_nodal_disease")
    if specific.value is not None:
        return _point(var, specific.value, specific.observed)
    cn = facts.read("preoperative.clinical_nodal_stage")
    if cn.value is None:
        return _unknown(var, "preoperative.clinical_nodal_stage")
    if cn.value == "cN1":
        return Derived(
            var.all_values(), missing=("preoperative.gross_nodal_disease",), observed=(cn.observed,)
        )
    return _point(var, cn.value != "cN0", cn.observed)


@_register(
    "neoadjuvant_weeks",
    "number",
    "weeks of primary systemic therapy before surgery (0 when neoadjuvant_therapy is false)",
    ("preoperative.neoadjuvant_weeks", "preoperative.neoadjuvant_therapy"),
    bounds=(0, 104),
)
def _neoadj_weeks(var: Variable, facts: Facts, params: Mapping[str, Any]) -> Derived:
    weeks = facts.read("preoperative.neoadjuvant_weeks")
    if weeks.value is not None:
        return _point(var, weeks.value, weeks.observed)
    given = facts.read("preoperative.neoadjuvant_therapy")
    if given.value is None:
        return _unknown(var, "preoperative.neoadjuvant_therapy")
    if given.value is False:
        return _point(var, 0.0, given.observed)
    return Derived(
        Interval(0, 104), missing=("preoperative.neoadjuvant_weeks",), observed=(given.observed,)
    )


@_register(
    "her2_positive_without_anti_her2_therapy",
    "bool",
    "HER2-positive tumour not receiving anti-HER2 therapy",
    ("preoperative.her2_status", "preoperative.anti_her2_therapy_planned"),
)
def _her2(var: Variable, facts: Facts, params: Mapping[str, Any]) -> Derived:
    her2 = facts.read("preoperative.her2_status")
    if her2.value is None:
        return _unknown(var, "preoperative.her2_status")
    if her2.value == "negative":
        return _point(var, False, her2.observed)
    therapy = facts.read("preoperative.anti_her2_therapy_planned")
    if therapy.value is None:
        return Derived(
            var.all_values(),
            missing=("preoperative.anti_her2_therapy_planned",),
            observed=(her2.observed,),
        )
    return Derived(frozenset({not therapy.value}), observed=(her2.observed, therapy.observed))


# --- final pathology ----------------------------------------------------------------------


def _histology(facts: Facts) -> Derived:
    return _field(facts, "pathology.histology")


def _pure_dcis_state(facts: Facts) -> tuple[bool | None, Derived]:
    """(True: pure DCIS, False: invasive, None: unknown) and the reading behind it."""
    h = _histology(facts)
    if h.values is None:
        return None, h
    return _value(h) == "dcis", h


def _invasive_only(var: Variable, facts: Facts, inner: Derived) -> Derived:
    """A variable of invasive cancer: not applicable to pure DCIS."""
    dcis, h = _pure_dcis_state(facts)
    if dcis is True:
        return _na(h.observed[0])
    if dcis is None:
        return _merge(h, inner, values=inner.values, maybe_na=True)
    return _merge(h, inner, values=inner.values)


def _dcis_only(var: Variable, facts: Facts, inner: Derived) -> Derived:
    dcis, h = _pure_dcis_state(facts)
    if dcis is False:
        return _na(h.observed[0])
    if dcis is None:
        return _merge(h, inner, values=inner.values, maybe_na=True)
    return _merge(h, inner, values=inner.values)


def _size_cm(var: Variable, facts: Facts) -> Derived:
    r = facts.read("pathology.size_mm")
    if r.value is None:
        return _unknown(var, "pathology.size_mm")
    return _point(var, _cm(r.value), r.observed)


@_register(
    "tumor_size_cm",
    "number",
    "pathologic size, cm: the invasive size, or the DCIS size for pure DCIS (pathology.size_mm)",
    ("pathology.size_mm",),
    bounds=(0, 20),
)
def _tumor_size(var: Variable, facts: Facts, params: Mapping[str, Any]) -> Derived:
    return _size_cm(var, facts)


@_register(
    "dcis_size_cm",
    "number",
    "size of a pure DCIS, cm (not applicable to invasive cancer)",
    ("pathology.size_mm", "pathology.histology"),
    bounds=(0, 20),
)
def _dcis_size(var: Variable, facts: Facts, params: Mapping[str, Any]) -> Derived:
    return _dcis_only(var, facts, _size_cm(var, facts))


@_register(
    "t_stage",
    "category",
    "pathologic T stage from pathology.size_mm (AJCC: T1 <= 20 mm, T2 <= 50 mm, T3 > 50 mm; "
    "Tis for pure DCIS). T4 (chest wall or skin invasion) is not recorded in the case and is "
    "taken as absent in a case treated by breast-conserving surgery",
    ("pathology.size_mm", "pathology.histology"),
    domain=("Tis", "T0", "T1", "T2", "T3", "T4"),
)
def _t_stage(var: Variable, facts: Facts, params: Mapping[str, Any]) -> Derived:
    dcis, h = _pure_dcis_state(facts)
    if dcis is True:
        return _point(var, "Tis", h.observed[0])
    size = facts.read("pathology.size_mm")
    if size.value is None:
        possible = var.all_values() if dcis is None else frozenset(var.domain) - {"Tis"}
        return Derived(possible, missing=tuple(dict.fromkeys((*h.missing, "pathology.size_mm"))))
    t = _t_from_size(size.value)
    if dcis is None:
        return Derived(frozenset({"Tis", t}), missing=h.missing, observed=(size.observed,))
    return _merge(h, _point(var, t, size.observed), values=frozenset({t}))


@_register(
    "grade",
    "category",
    "histological grade of an invasive cancer (not applicable to pure DCIS)",
    ("pathology.grade", "pathology.histology"),
    domain=(1, 2, 3),
)
def _grade(var: Variable, facts: Facts, params: Mapping[str, Any]) -> Derived:
    r = facts.read("pathology.grade")
    inner = (
        _unknown(var, "pathology.grade") if r.value is None else _point(var, r.value, r.observed)
    )
    return _invasive_only(var, facts, inner)


@_register(
    "invasive_histology",
    "category",
    "histological type of an invasive cancer (not applicable to pure DCIS)",
    ("pathology.histology",),
    domain=HISTOLOGIES,
)
def _invasive_histology(var: Variable, facts: Facts, params: Mapping[str, Any]) -> Derived:
    h = _histology(facts)
    if h.values is None:
        return Derived(var.all_values(), maybe_na=True, missing=h.missing)
    if _value(h) == "dcis":
        return _na(h.observed[0])
    return h


@_register("pure_dcis", "bool", "pure DCIS (no invasive cancer)", ("pathology.histology",))
def _pure_dcis(var: Variable, facts: Facts, params: Mapping[str, Any]) -> Derived:
    dcis, h = _pure_dcis_state(facts)
    if dcis is None:
        return _unknown(var, *h.missing)
    return _point(var, dcis, h.observed[0])


@_register(
    "histology_any_invasive_or_dcis",
    "bool",
    "an invasive cancer of any subtype, or DCIS (true for every recorded histology)",
    ("pathology.histology",),
)
def _any_histology(var: Variable, facts: Facts, params: Mapping[str, Any]) -> Derived:
    h = _histology(facts)
    if h.values is None:
        return _unknown(var, *h.missing)
    return _merge(h, values=frozenset({True}))


@_register(
    "dcis_nuclear_grade",
    "category",
    "nuclear grade of a pure DCIS (not applicable to invasive cancer)",
    ("pathology.dcis_nuclear_grade", "pathology.histology"),
    domain=("low", "intermediate", "high"),
)
def _dcis_grade(var: Variable, facts: Facts, params: Mapping[str, Any]) -> Derived:
    r = facts.read("pathology.dcis_nuclear_grade")
    inner = (
        _unknown(var, "pathology.dcis_nuclear_grade")
        if r.value is None
        else _point(var, r.value, r.observed)
    )
    return _dcis_only(var, facts, inner)


_direct("margin_mm", "number", "pathology.margin_mm", "closest margin, mm", bounds=(0, 100))


@_register(
    "margin_status",
    "category",
    "margin status from pathology.margin_mm and the guideline's parameter "
    "close_margin_below_mm: positive when 0 mm (tumour at ink), close when above 0 but below "
    "the threshold, negative otherwise",
    ("pathology.margin_mm",),
    domain=("negative", "close", "positive"),
    parameters=("close_margin_below_mm",),
)
def _margin_status(var: Variable, facts: Facts, params: Mapping[str, Any]) -> Derived:
    r = facts.read("pathology.margin_mm")
    threshold = float(params["close_margin_below_mm"])
    if r.value is None:
        return _unknown(var, "pathology.margin_mm")
    if r.value == 0:
        status = "positive"
    elif r.value < threshold:
        status = "close"
    else:
        status = "negative"
    rule_text = (
        f"close below {threshold:g} mm" if threshold > 0 else "positive only at 0 mm, no close band"
    )
    return _point(var, status, f"{r.observed} ({status}: {rule_text})")


_direct(
    "lvsi",
    "category",
    "pathology.lvsi",
    "lymphovascular space invasion",
    domain=("none", "focal", "extensive"),
)
_direct(
    "centricity",
    "category",
    "pathology.centricity",
    "unicentric or multicentric",
    domain=("unicentric", "multicentric"),
)
_direct("eic", "bool", "pathology.eic", "extensive intraductal component")
_direct("lcis_associated", "bool", "pathology.lcis_associated", "associated LCIS")
_direct("extranodal_extension", "bool", "pathology.extranodal_extension", "extranodal extension")
_direct(
    "nodal_surgery",
    "category",
    "pathology.nodal_surgery",
    "axillary surgery performed",
    domain=("SLNB", "ALND", "none"),
)
_direct("pn_stage", "category", "pathology.nodal_stage", "pathologic nodal stage", domain=PN_STAGES)
_direct(
    "eic_pct_lumpectomy",
    "number",
    "pathology.eic_pct_lumpectomy",
    "percentage of the lumpectomy specimen involved with DCIS (pending case field)",
    bounds=(0, 100),
)

_FOCALITY = {
    "unifocal": "unifocal",
    "multifocal_within_20mm": "multifocal_within_2cm_of_index",
    "multifocal_beyond_20mm": "multifocal_beyond_2cm_of_index",
}


@_register(
    "focality",
    "category",
    "focality on final pathology (case values unifocal, multifocal_within_20mm, "
    "multifocal_beyond_20mm)",
    ("pathology.focality",),
    domain=tuple(_FOCALITY.values()),
)
def _focality(var: Variable, facts: Facts, params: Mapping[str, Any]) -> Derived:
    r = facts.read("pathology.focality")
    if r.value is None:
        return _unknown(var, "pathology.focality")
    return _point(var, _FOCALITY[r.value], r.observed)


@_register(
    "multifocal_total_size_cm",
    "number",
    "total extent of the disease, cm: pathology.size_mm for a unifocal tumour, "
    "pathology.multifocal_total_size_mm otherwise",
    ("pathology.focality", "pathology.size_mm", "pathology.multifocal_total_size_mm"),
    bounds=(0, 20),
)
def _total_size(var: Variable, facts: Facts, params: Mapping[str, Any]) -> Derived:
    foc = facts.read("pathology.focality")
    if foc.value is None:
        return _unknown(var, "pathology.focality")
    path = "pathology.size_mm" if foc.value == "unifocal" else "pathology.multifocal_total_size_mm"
    r = facts.read(path)
    if r.value is None:
        return Derived(var.all_values(), missing=(path,), observed=(foc.observed,))
    return Derived(Interval(_cm(r.value), _cm(r.value)), observed=(foc.observed, r.observed))


@_register(
    "clinical_focality",
    "category",
    "ASTRO focality: clinically_multifocal when imaging showed more than one lesion and "
    "pathology confirms multifocal disease; microscopically_multifocal_gt3cm when pathology "
    "finds multifocal disease totalling more than 30 mm in a clinically single lesion; "
    "clinically_unifocal otherwise",
    ("preoperative.lesion_count", "pathology.focality", "pathology.multifocal_total_size_mm"),
    domain=("clinically_unifocal", "clinically_multifocal", "microscopically_multifocal_gt3cm"),
)
def _clinical_focality(var: Variable, facts: Facts, params: Mapping[str, Any]) -> Derived:
    foc = facts.read("pathology.focality")
    if foc.value is None:
        return _unknown(var, "pathology.focality")
    if foc.value == "unifocal":
        return _point(var, "clinically_unifocal", foc.observed)
    count = facts.read("preoperative.lesion_count")
    total = facts.read("pathology.multifocal_total_size_mm")
    observed = tuple(o for o in (foc.observed, count.observed, total.observed) if o)
    if count.value is not None and count.value > 1:
        return Derived(frozenset({"clinically_multifocal"}), observed=observed)
    missing: list[str] = []
    possible: set[str] = set()
    if count.value is None:
        missing.append("preoperative.lesion_count")
        possible.add("clinically_multifocal")
    if total.value is None:
        missing.append("pathology.multifocal_total_size_mm")
        possible |= {"clinically_unifocal", "microscopically_multifocal_gt3cm"}
    else:
        possible.add(
            "microscopically_multifocal_gt3cm" if total.value > 30 else "clinically_unifocal"
        )
    return Derived(frozenset(possible), missing=tuple(missing), observed=observed)


@_register(
    "eic_size_cm",
    "number",
    "extent of the extensive intraductal component, cm (not applicable without EIC)",
    ("pathology.eic", "pathology.eic_size_mm"),
    bounds=(0, 20),
)
def _eic_size(var: Variable, facts: Facts, params: Mapping[str, Any]) -> Derived:
    eic = facts.read("pathology.eic")
    size = facts.read("pathology.eic_size_mm")
    if eic.value is False:
        return _na(eic.observed)
    if size.value is None:
        missing = (
            ("pathology.eic", "pathology.eic_size_mm")
            if eic.value is None
            else ("pathology.eic_size_mm",)
        )
        return Derived(var.all_values(), maybe_na=eic.value is None, missing=missing)
    values = Interval(_cm(size.value), _cm(size.value))
    if eic.value is None:
        return Derived(values, maybe_na=True, missing=("pathology.eic",), observed=(size.observed,))
    return Derived(values, observed=(eic.observed, size.observed))


@_register(
    "positive_nodes_count",
    "number",
    "number of involved axillary nodes: pathology.positive_nodes, or the range that "
    "pathology.nodal_stage allows (pN0 and pN0(i+): 0; pN1mi, pN1a: 1-3; pN2a: 4-9; pN3: >= 1)",
    ("pathology.positive_nodes", "pathology.nodal_stage"),
    bounds=(0, 100),
)
def _positive_nodes(var: Variable, facts: Facts, params: Mapping[str, Any]) -> Derived:
    count = facts.read("pathology.positive_nodes")
    if count.value is not None:
        return _point(var, count.value, count.observed)
    stage = facts.read("pathology.nodal_stage")
    if stage.value in NODAL_STAGE_POSITIVE_NODES:
        lo, hi = NODAL_STAGE_POSITIVE_NODES[stage.value]
        missing = () if lo == hi else ("pathology.positive_nodes",)
        return Derived(Interval(lo, hi), missing=missing, observed=(stage.observed,))
    # pNx or no stage: the count itself, or a nodal stage, would settle it.
    missing = ("pathology.positive_nodes",) if stage.value else ("pathology.nodal_stage",)
    return Derived(
        var.all_values(), missing=missing, observed=(stage.observed,) if stage.value else ()
    )


@_register(
    "node_negative",
    "bool",
    "axillary nodes shown to be negative: pN0 or pN0(i+) (isolated tumour cells are node "
    "negative in AJCC staging); pN1mi and above are positive; pNx does not establish it",
    ("pathology.nodal_stage", "pathology.positive_nodes", "pathology.nodal_surgery"),
)
def _node_negative(var: Variable, facts: Facts, params: Mapping[str, Any]) -> Derived:
    stage = facts.read("pathology.nodal_stage")
    if stage.value is not None:
        return _point(var, stage.value in ("pN0", "pN0(i+)"), stage.observed)
    count = facts.read("pathology.positive_nodes")
    surgery = facts.read("pathology.nodal_surgery")
    if count.value is not None and surgery.value in ("SLNB", "ALND"):
        return Derived(frozenset({count.value == 0}), observed=(count.observed, surgery.observed))
    return _unknown(var, "pathology.nodal_stage")


def group_variable(verdict_groups: tuple[str, ...]) -> Variable:
    """The reserved variable ``group``: the verdict group a guideline file has just decided.

    The evaluator supplies its possible values; it is never derived from the case.
    """

    def not_derived(facts: Facts, params: Mapping[str, Any]) -> Derived:
        raise RuntimeError("the group variable is set by the evaluator, not derived")

    return Variable(
        "group", "category", "verdict group of this file", (), not_derived, domain=verdict_groups
    )


def derive(name: str, facts: Facts, params: Mapping[str, Any] | None = None) -> Derived:
    """Derive variable ``name`` for the case behind ``facts``.

    Parameters
    ----------
    name
        A rule variable (see :func:`variable_names`).
    facts
        The case, with its basis (pathology or preoperative proxies).
    params
        The guideline's parameters (``close_margin_below_mm`` for ``margin_status``).
    """
    return _REGISTRY[name].derive(facts, params or {})
