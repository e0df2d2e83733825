"""The one evaluator: a guideline file applied to a case gives a verdict with its reasons.

Missing values are handled with three-valued logic. Every rule is evaluated over all the
values its variable can still take for this case (:class:`~.variables.Derived`); a rule is
then known to hold, known to fail, not applicable, or any mix of these. The decision list of
the file is walked in order: an outcome whose condition is certainly true ends the walk, one
whose condition is still open is remembered as possible. If more than one group remains
possible the verdict is ``insufficient-data`` and lists the case fields that would settle it;
a missing value that cannot change the group does not block it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from openiort.case import Case
from openiort.clinical.facts import Facts
from openiort.clinical.rules import (
    GROUP_VARIABLE,
    VERIFICATION_LEVELS,
    Condition,
    Guideline,
    Outcome,
    Rule,
    bundled_guidelines,
)
from openiort.clinical.variables import Derived, Interval, derive

INSUFFICIENT = "insufficient-data"

Status = Literal["holds", "fails", "na"]
Truth = Literal["T", "F", "U"]

_STATUS_WORDS = {"holds": "met", "fails": "not met", "na": "not applicable"}


@dataclass(frozen=True)
class RuleResult:
    """One rule applied to one case."""

    rule: Rule
    statuses: frozenset[Status]
    derived: Derived | None
    missing: tuple[str, ...] = ()
    observed: tuple[str, ...] = ()

    @property
    def status_word(self) -> str:
        if len(self.statuses) == 1:
            return _STATUS_WORDS[next(iter(self.statuses))]
        return "unknown"

    def point_value(self) -> Any:
        """The single value the variable took, or None."""
        if self.derived is None or not self.derived.known or self.derived.values is None:
            return None
        v = self.derived.values
        if isinstance(v, Interval):
            return v.lo
        return next(iter(v))


@dataclass(frozen=True)
class Reason:
    """A rule that decided (or, for insufficient-data, would decide) a verdict."""

    rule_id: str
    text: str
    source: str
    verification: str
    status: str  # met | not met | not applicable | unknown
    observed: str
    missing: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "text": self.text,
            "source": self.source,
            "verification": self.verification,
            "status": self.status,
            "observed": self.observed,
            "missing": list(self.missing),
        }


@dataclass(frozen=True)
class Verdict:
    """One guideline's verdict for one case (see :func:`evaluate`)."""

    guideline: str
    title: str
    kind: str
    group: str
    reasons: tuple[Reason, ...]
    missing: tuple[str, ...]
    possible_groups: tuple[str, ...]
    iort_supported: bool | None
    iort_reasons: tuple[Reason, ...]
    iort_text: str
    iort_missing: tuple[str, ...]
    provisional: bool
    provisional_why: tuple[str, ...]
    basis: str
    notes: tuple[str, ...]
    file: str
    file_version: int
    sha256: str
    citation: str = ""
    readings: tuple[str, ...] = field(default=())

    @property
    def decided(self) -> bool:
        return self.group != INSUFFICIENT

    def to_dict(self) -> dict[str, Any]:
        return {
            "guideline": self.guideline,
            "title": self.title,
            "kind": self.kind,
            "group": self.group,
            "reasons": [r.to_dict() for r in self.reasons],
            "missing": list(self.missing),
            "possible_groups": list(self.possible_groups),
            "iort_supported": self.iort_supported,
            "iort_reasons": [r.to_dict() for r in self.iort_reasons],
            "iort_text": self.iort_text,
            "iort_missing": list(self.iort_missing),
            "provisional": self.provisional,
            "provisional_why": list(self.provisional_why),
            "basis": self.basis,
            "notes": list(self.notes),
            "citation": self.citation,
            "file": self.file,
            "file_version": self.file_version,
            "sha256": self.sha256,
        }


# --- single rules -------------------------------------------------------------------------


def _compare(op: str, x: Any, value: Any) -> bool:
    if op == "==":
        return bool(x == value)
    if op == "!=":
        return bool(x != value)
    if op == "in":
        return x in value
    if op == "not_in":
        return x not in value
    if op == "<":
        return bool(x < value)
    if op == "<=":
        return bool(x <= value)
    if op == ">":
        return bool(x > value)
    if op == ">=":
        return bool(x >= value)
    if op == "between":
        return bool(value[0] <= x <= value[1])
    if op == "between_open_low":
        return bool(value[0] < x <= value[1])
    raise ValueError(f"unknown operator {op!r}")  # the loader rejects these


def _interval_statuses(op: str, iv: Interval, value: Any) -> frozenset[Status]:
    """Whether the comparison holds for every, no, or some value in a closed interval."""
    lo, hi = iv.lo, iv.hi
    if op in ("in", "not_in"):
        inside = [v for v in value if lo <= v <= hi]
        always = iv.is_point and bool(inside)
        never = not inside
        if op == "not_in":
            always, never = never, always
    elif op in ("==", "!="):
        always = iv.is_point and lo == value
        never = not lo <= value <= hi
        if op == "!=":
            always, never = never, always
    else:
        always = _compare(op, lo, value) and _compare(op, hi, value)
        if op == "<":
            never = lo >= value
        elif op == "<=":
            never = lo > value
        elif op == ">":
            never = hi <= value
        elif op == ">=":
            never = hi < value
        elif op == "between":
            never = hi < value[0] or lo > value[1]
        else:  # between_open_low
            never = hi <= value[0] or lo > value[1]
    if always:
        return frozenset({"holds"})
    if never:
        return frozenset({"fails"})
    return frozenset({"holds", "fails"})


def _value_statuses(rule: Rule, derived: Derived) -> frozenset[Status]:
    out: set[Status] = set()
    if derived.values is None:
        out.add("na")
    elif isinstance(derived.values, Interval):
        out |= _interval_statuses(rule.operator, derived.values, rule.value)
    else:
        out |= {
            "holds" if _compare(rule.operator, x, rule.value) else "fails" for x in derived.values
        }
    if derived.maybe_na:
        out.add("na")
    return frozenset(out)


def evaluate_rule(
    rule: Rule,
    facts: Facts,
    params: Mapping[str, Any],
    groups: frozenset[str] | None = None,
    technique: str | None = None,
) -> RuleResult:
    """Apply one rule to one case (``groups``: possible verdict groups, for ``group`` rules).

    A rule that names its ``techniques`` does not apply (``na``) to a case of another IORT
    technique (``technique``, default: the case's intent).
    """
    if rule.techniques:
        tech = technique if technique is not None else facts.case.intent.technique
        if tech not in rule.techniques:
            return RuleResult(rule, frozenset({"na"}), None, (), (f"intent.technique = {tech}",))
    if rule.variable == GROUP_VARIABLE:
        possible = groups or frozenset()
        derived = Derived(possible)
    else:
        derived = derive(rule.variable, facts, params)
    statuses = set(_value_statuses(rule, derived))
    missing = list(derived.missing)
    observed = list(derived.observed)
    if rule.pathway != "any":
        pure = derive("pure_dcis", facts)
        assert isinstance(pure.values, frozenset)
        applies = {(rule.pathway == "dcis") == is_dcis for is_dcis in pure.values}
        if applies == {False}:
            return RuleResult(rule, frozenset({"na"}), derived, (), pure.observed)
        if applies == {True, False}:
            statuses.add("na")
            missing += [m for m in pure.missing if m not in missing]
    if len(statuses) == 1:
        missing = []
    return RuleResult(rule, frozenset(statuses), derived, tuple(missing), tuple(observed))


# --- conditions ---------------------------------------------------------------------------


@dataclass
class _Eval:
    truth: Truth
    deciding: list[RuleResult]
    unknown: list[RuleResult]


_AS_ANY = {"holds": "T", "fails": "F", "na": "F"}
_AS_ALL = {"holds": "T", "fails": "F", "na": "T"}


def _truths(result: RuleResult, table: Mapping[str, str]) -> set[str]:
    return {table[s] for s in result.statuses}


def _negate(e: _Eval) -> _Eval:
    flip: dict[Truth, Truth] = {"T": "F", "F": "T", "U": "U"}
    return _Eval(flip[e.truth], e.deciding, e.unknown)


def _eval_condition(
    cond: Condition, results: Mapping[str, RuleResult], rules: Sequence[Rule]
) -> _Eval:
    if cond.op == "always":
        return _Eval("T", [], [])
    if cond.selector is not None:
        chosen = [results[r.id] for r in cond.selector.select(rules)]
        if cond.op in ("any", "none"):
            truths = [(r, _truths(r, _AS_ANY)) for r in chosen]
            true_ones = [r for r, t in truths if t == {"T"}]
            unknown = [r for r, t in truths if len(t) > 1]
            if true_ones:
                e = _Eval("T", true_ones, [])
            elif unknown:
                e = _Eval("U", [], unknown)
            else:
                e = _Eval("F", [r for r in chosen if "fails" in r.statuses], [])
            return _negate(e) if cond.op == "none" else e
        truths = [(r, _truths(r, _AS_ALL)) for r in chosen]
        false_ones = [r for r, t in truths if t == {"F"}]
        unknown = [r for r, t in truths if len(t) > 1]
        if false_ones:
            e = _Eval("F", false_ones, [])
        elif unknown:
            e = _Eval("U", [], unknown)
        else:
            e = _Eval("T", [r for r in chosen if r.statuses == {"holds"}], [])
        return _negate(e) if cond.op == "not_all" else e
    parts = [_eval_condition(p, results, rules) for p in cond.parts]
    decisive: Truth = "F" if cond.op == "all_of" else "T"
    hits = [p for p in parts if p.truth == decisive]
    if hits:
        return _Eval(decisive, hits[0].deciding, [])
    open_parts = [p for p in parts if p.truth == "U"]
    if open_parts:
        return _Eval("U", [], [r for p in open_parts for r in p.unknown])
    other: Truth = "T" if decisive == "F" else "F"
    return _Eval(other, [r for p in parts for r in p.deciding], [])


# --- verdicts -----------------------------------------------------------------------------


def _dedupe(results: Iterable[RuleResult]) -> list[RuleResult]:
    seen: set[str] = set()
    out: list[RuleResult] = []
    for r in results:
        if r.rule.id not in seen:
            seen.add(r.rule.id)
            out.append(r)
    return out


def _reason(r: RuleResult) -> Reason:
    return Reason(
        rule_id=r.rule.id,
        text=r.rule.text,
        source=r.rule.source,
        verification=r.rule.verification,
        status=r.status_word,
        observed="; ".join(r.observed),
        missing=r.missing,
    )


def _explained(
    outcome: Outcome, results: Mapping[str, RuleResult], rules: Sequence[Rule]
) -> list[RuleResult]:
    out: list[RuleResult] = []
    for item in outcome.explain:
        want = "holds" if item.status == "holding" else "fails"
        out += [
            results[r.id] for r in item.selector.select(rules) if results[r.id].statuses == {want}
        ]
    return out


def _missing_of(results: Iterable[RuleResult]) -> tuple[str, ...]:
    missing: list[str] = []
    for r in results:
        missing += [m for m in r.missing if m not in missing]
    return tuple(missing)


_EXPLAIN_NOTE = ("not_verified", "verified_with_inference", "verified_partial")


def _provisional_why(reasons: Iterable[RuleResult]) -> list[str]:
    """Why a verdict is provisional: unverified rules (grouped by level), ambiguous boundaries."""
    by_level: dict[str, list[str]] = {}
    why: list[str] = []
    for r in reasons:
        rule = r.rule
        if not rule.verified:
            by_level.setdefault(rule.verification, [])
            if rule.id not in by_level[rule.verification]:
                by_level[rule.verification].append(rule.id)
            if rule.verification in _EXPLAIN_NOTE and rule.note:
                why.append(f"{rule.id}: {rule.note}")
        value = r.point_value()
        if value is not None and value in rule.ambiguous_values:
            shown = f"{value:g}" if isinstance(value, int | float) else repr(value)
            why.append(
                f"{rule.id}: the value {shown} lies on a boundary the source states "
                f"inconsistently; {rule.reading or 'see the guideline file'}"
            )
    head = [
        f"{level} ({VERIFICATION_LEVELS[level]}): {', '.join(ids)}"
        for level, ids in by_level.items()
    ]
    return list(dict.fromkeys(head + why))


def evaluate(guideline: Guideline, facts: Facts, technique: str | None = None) -> Verdict:
    """Apply one guideline file to one case.

    Parameters
    ----------
    guideline
        A loaded guideline, trial or policy file.
    facts
        The case (with its basis: pathology, or preoperative proxies).
    technique
        The IORT technique for the ``iort`` statements (default: the case's intent).

    Returns
    -------
    Verdict
        The group (or ``insufficient-data``), the rules that decided it, the missing case
        fields, IORT support, and whether and why it is provisional.
    """
    params = guideline.parameters
    rules = guideline.rules
    tech = technique if technique is not None else facts.case.intent.technique
    results = {
        r.id: evaluate_rule(r, facts, params, technique=tech)
        for r in rules
        if r.variable != GROUP_VARIABLE
    }
    possible: list[str] = []
    open_results: list[RuleResult] = []
    decided: tuple[Outcome, _Eval] | None = None
    undecided = _with_group_rules(results, rules, facts, params, None)
    for outcome in guideline.decision:
        e = _eval_condition(outcome.when, undecided, rules)
        if e.truth == "F":
            continue
        if outcome.group not in possible:
            possible.append(outcome.group)
        if e.truth == "T":
            decided = (outcome, e)
            break
        open_results += e.unknown
    assert decided is not None  # the loader requires a final `always` outcome
    if len(possible) == 1:
        outcome, e = decided
        group = outcome.group
        deciding = _dedupe(e.deciding + _explained(outcome, results, rules))
        missing: tuple[str, ...] = ()
    else:
        group = INSUFFICIENT
        deciding = _dedupe(open_results)
        missing = _missing_of(deciding)
    groups = frozenset(possible)
    results = _with_group_rules(results, rules, facts, params, groups, missing)

    iort_supported: bool | None = None
    iort_deciding: list[RuleResult] = []
    iort_missing: tuple[str, ...] = ()
    if tech in guideline.iort:
        e = _eval_condition(guideline.iort[tech], results, rules)
        if e.truth == "U":
            iort_deciding = _dedupe(e.unknown)
            iort_missing = _missing_of(iort_deciding)
        else:
            iort_supported = e.truth == "T"
            iort_deciding = _dedupe(e.deciding)
        iort_text = guideline.iort_text[tech]
    elif guideline.iort:
        iort_text = f"{guideline.id} makes no statement about {tech} IORT."
    else:
        iort_text = ""

    notes: list[str] = []
    if guideline.advice is not None:
        for r in guideline.advice.select(rules):
            if results[r.id].statuses == {"holds"}:
                notes.append(f"{r.text} [{r.id}; {r.source}]")

    basis = (
        "pathology"
        if guideline.reads == "pathology" and facts.basis == "pathology"
        else "preoperative"
    )
    why = _provisional_why(deciding + iort_deciding)
    if group in guideline.provisional_groups:
        why.append(guideline.provisional_groups[group])
    if guideline.reads == "pathology" and facts.basis == "preoperative":
        why.insert(
            0,
            "final pathology is not yet known: evaluated on the imaging and core-biopsy "
            "findings (size from imaging, histology, grade and EIC from the core biopsy); "
            "re-evaluate with `iort pathology` once the pathology block is filled in",
        )
    return Verdict(
        guideline=guideline.id,
        title=guideline.title,
        kind=guideline.kind,
        group=group,
        reasons=tuple(_reason(r) for r in deciding),
        missing=missing,
        possible_groups=tuple(possible),
        iort_supported=iort_supported,
        iort_reasons=tuple(_reason(r) for r in iort_deciding),
        iort_text=iort_text,
        iort_missing=iort_missing,
        provisional=bool(why),
        provisional_why=tuple(why),
        basis=basis,
        notes=tuple(notes),
        file=guideline.path,
        file_version=guideline.file_version,
        sha256=guideline.sha256,
        citation=guideline.citation,
        readings=guideline.readings,
    )


def _with_group_rules(
    results: Mapping[str, RuleResult],
    rules: Sequence[Rule],
    facts: Facts,
    params: Mapping[str, Any],
    groups: frozenset[str] | None,
    missing: tuple[str, ...] = (),
) -> dict[str, RuleResult]:
    """Add the results of rules on the verdict group (undecided while deciding it)."""
    out = dict(results)
    for r in rules:
        if r.variable == GROUP_VARIABLE:
            if groups is None:
                out[r.id] = RuleResult(r, frozenset({"holds", "fails"}), None)
            else:
                result = evaluate_rule(r, facts, params, groups)
                if len(result.statuses) > 1:  # open because the verdict itself is open
                    result = RuleResult(r, result.statuses, result.derived, missing)
                out[r.id] = result
    return out


def facts_for(case: Case, guideline: Guideline, extra: Mapping[str, Any] | None = None) -> Facts:
    """The facts a guideline reads: proxies for pathology fields before final pathology."""
    proxied = guideline.kind == "apbi" and case.pathology is None
    return Facts(case, extra, basis="preoperative" if proxied else "pathology")


def evaluate_case(
    case: Case,
    extra: Mapping[str, Any] | None = None,
    guidelines: Sequence[Guideline] | None = None,
) -> list[Verdict]:
    """Verdicts of every guideline (default: the bundled ones) for one case.

    Parameters
    ----------
    case
        A validated case.
    extra
        Values of pending fields the case model does not hold yet (see
        :data:`openiort.clinical.facts.PENDING_FIELDS`).
    guidelines
        The guideline files to apply; default :func:`bundled_guidelines`.
    """
    chosen = bundled_guidelines() if guidelines is None else guidelines
    return [evaluate(g, facts_for(case, g, extra)) for g in chosen]
