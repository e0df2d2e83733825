"""Guideline files: their schema, loading, and validation at load time.

A guideline (or trial, or centre policy) is one versioned YAML file. Its ``rules`` are single
criteria (variable, operator, value) with their source and verification level; its
``decision`` is an ordered list of outcomes, each with a condition over groups of rules; its
optional ``iort`` block says, per technique, when the guideline supports IORT. The evaluator
(:mod:`openiort.clinical.eligibility`) reads nothing else, so a new guideline version is a new
file and no guideline logic lives in code.

Any problem in a file (an unknown key, operator, variable, group or rule reference, a value of
the wrong type) raises :class:`GuidelineError` naming the file and the rule; its ``problems``
list every problem found, one message each.

A rule may name the IORT ``techniques`` it applies to (xray, electron, hdr); for a case of
another technique it does not apply. A supplemental-EBRT policy (``kind: ebrt_policy``) may say
what it is with ``policy_type``: ``project-default`` (openiort's own safe default, not a
published policy), ``trial-protocol``, ``centre-policy`` (a published centre's policy) or
``department`` (a department's own file).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from openiort.clinical.variables import Variable, get_variable, group_variable
from openiort.datafiles import data_names, read_data, read_path
from openiort.errors import OpenIortInputError

SCHEMA_VERSION = 1

OPERATORS = ("==", "!=", "<", "<=", ">", ">=", "in", "not_in", "between", "between_open_low")
ORDER_OPERATORS = ("<", "<=", ">", ">=", "between", "between_open_low")

VERIFICATION_LEVELS = {
    "verified": "criterion read in a retrieved source excerpt",
    "verified_partial": "criterion read, but strength or boundary text was truncated",
    "verified_secondary": "read in a secondary summary, not the primary document",
    "verified_centre_policy": "read for a single centre's pre-specified policy",
    "verified_with_inference": "read, but one boundary was inferred",
    "not_verified": "from recollection only; confirm before clinical use",
}

Kind = Literal["apbi", "trial", "ebrt_policy"]
Pathway = Literal["any", "invasive", "dcis"]

TECHNIQUES = ("xray", "electron", "hdr")

POLICY_TYPES = {
    "project-default": "openiort's own safe default; not a published policy",
    "trial-protocol": "a published trial protocol's triggers",
    "centre-policy": "a published centre's policy",
    "department": "a department's own policy",
}

_T = TypeVar("_T")

GROUP_VARIABLE = "group"  # reserved: the verdict group this file has just decided


class GuidelineError(OpenIortInputError):
    """A guideline file that cannot be used, naming the file and the rule."""


# --- the file model -----------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    id: str
    group: str
    variable: str
    operator: str
    value: Any
    text: str
    source: str
    verification: str
    pathway: Pathway = "any"
    note: str = ""
    reading: str = ""  # how this file reads an ambiguous or adapted criterion
    ambiguous_values: tuple[Any, ...] = ()  # values on a boundary the source states unclearly
    compiled: dict[str, Any] = field(default_factory=dict)  # compiled form, where adapted
    techniques: tuple[str, ...] = ()  # IORT techniques the rule applies to; () = every one

    @property
    def verified(self) -> bool:
        return self.verification == "verified"


@dataclass(frozen=True)
class Selector:
    """Rules chosen by group(s) and/or ids, minus exceptions."""

    groups: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def select(self, rules: Iterable[Rule]) -> list[Rule]:
        return [
            r
            for r in rules
            if (r.group in self.groups or r.id in self.rules) and r.id not in self.exclude
        ]


@dataclass(frozen=True)
class Condition:
    """``op`` in always | any | all | none | not_all (over ``selector``) | all_of | any_of."""

    op: str
    selector: Selector | None = None
    parts: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class Explain:
    """Rules listed as reasons for an outcome: those that hold, or fail, among a selection."""

    status: Literal["holding", "failing"]
    selector: Selector


@dataclass(frozen=True)
class Outcome:
    group: str
    when: Condition
    explain: tuple[Explain, ...] = ()
    text: str = ""


@dataclass(frozen=True)
class Guideline:
    id: str
    title: str
    citation: str
    file_version: int
    kind: Kind
    reads: Literal["pathology", "preoperative"]
    verdict_groups: tuple[str, ...]
    rule_groups: tuple[str, ...]
    decision: tuple[Outcome, ...]
    rules: tuple[Rule, ...]
    parameters: dict[str, Any]
    iort: dict[str, Condition]
    iort_text: dict[str, str]
    advice: Selector | None
    readings: tuple[str, ...]
    path: str
    sha256: str
    provisional_groups: dict[str, str] = field(default_factory=dict)  # group -> why
    policy_type: str = ""  # ebrt_policy files: a key of POLICY_TYPES ("" when not stated)

    def rule(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)


# --- parsing and validation ---------------------------------------------------------------

_TOP_KEYS = {
    "schema_version": True,
    "id": True,
    "title": True,
    "citation": True,
    "file_version": True,
    "kind": True,
    "reads": True,
    "verdict_groups": True,
    "rule_groups": True,
    "decision": True,
    "rules": True,
    "parameters": False,
    "iort": False,
    "advice": False,
    "readings": False,
    "provisional_groups": False,
    "description": False,
    "policy_type": False,
}
_RULE_KEYS = {
    "id": True,
    "group": True,
    "variable": True,
    "operator": True,
    "value": True,
    "text": True,
    "source": True,
    "verification": True,
    "pathway": False,
    "techniques": False,
    "note": False,
    "reading": False,
    "ambiguous_values": False,
    "compiled": False,
}
_CONDITION_OPS = ("any", "all", "none", "not_all")
_COMBINE_OPS = ("all_of", "any_of")


class _Ctx:
    """The file being read, and every problem found in it so far."""

    def __init__(self, path: str):
        self.path = path
        self.problems: list[str] = []

    def message(self, problem: str, rule_id: str | None = None) -> str:
        where = f"{self.path}: rule {rule_id!r}: " if rule_id else f"{self.path}: "
        return where + problem

    def fail(self, problem: str, rule_id: str | None = None) -> GuidelineError:
        return GuidelineError(self.message(problem, rule_id))

    def add(self, problem: str, rule_id: str | None = None) -> None:
        self.problems.append(self.message(problem, rule_id))

    def attempt(self, parse: Callable[..., _T], *args: Any) -> _T | None:
        """``parse(*args)``, or None with its problems recorded."""
        try:
            return parse(*args)
        except GuidelineError as exc:
            self.problems.extend(exc.problems)
            return None


def _key_problems(data: dict[str, Any], spec: dict[str, bool], what: str) -> list[str]:
    problems: list[str] = []
    unknown = sorted(set(data) - set(spec))
    if unknown:
        problems.append(f"unknown key(s) {unknown} in {what}; allowed: {sorted(spec)}")
    missing = sorted(k for k, required in spec.items() if required and k not in data)
    if missing:
        problems.append(f"missing key(s) {missing} in {what}")
    return problems


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _check_scalar(ctx: _Ctx, var: Variable, value: Any, rule_id: str) -> None:
    if var.kind == "number" and not _is_number(value):
        raise ctx.fail(f"value {value!r} must be a number for variable {var.name!r}", rule_id)
    if var.kind == "bool" and not isinstance(value, bool):
        raise ctx.fail(f"value {value!r} must be true or false for {var.name!r}", rule_id)
    if var.kind == "category" and value not in var.domain:
        raise ctx.fail(
            f"value {value!r} is not a value of {var.name!r} (allowed: {list(var.domain)})",
            rule_id,
        )


def _check_rule_value(ctx: _Ctx, var: Variable, operator: str, value: Any, rule_id: str) -> Any:
    if operator in ORDER_OPERATORS and var.kind != "number":
        raise ctx.fail(f"operator {operator!r} needs a numeric variable, not {var.name!r}", rule_id)
    if operator in ("between", "between_open_low"):
        if not (isinstance(value, list) and len(value) == 2 and all(map(_is_number, value))):
            raise ctx.fail(f"operator {operator!r} needs [low, high], got {value!r}", rule_id)
        if value[0] > value[1]:
            raise ctx.fail(f"operator {operator!r}: low {value[0]} > high {value[1]}", rule_id)
        return (float(value[0]), float(value[1]))
    if operator in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            raise ctx.fail(f"operator {operator!r} needs a non-empty list, got {value!r}", rule_id)
        for item in value:
            _check_scalar(ctx, var, item, rule_id)
        return tuple(value)
    _check_scalar(ctx, var, value, rule_id)
    return value


def _rule_variable(ctx: _Ctx, name: Any, verdict_groups: tuple[str, ...], rule_id: str) -> Variable:
    if name == GROUP_VARIABLE:
        return group_variable(verdict_groups)
    try:
        return get_variable(name)
    except (KeyError, TypeError):
        raise ctx.fail(
            f"unknown variable {name!r} (see openiort.clinical.variables.variable_names())",
            rule_id,
        ) from None


def _parse_rule(
    ctx: _Ctx, raw: Any, rule_groups: tuple[str, ...], verdict_groups: tuple[str, ...]
) -> Rule | None:
    """One rule, or None with each of its problems recorded (one message per problem)."""
    if not isinstance(raw, dict):
        ctx.add(f"a rule must be a mapping, got {type(raw).__name__}")
        return None
    rule_id = str(raw["id"]) if "id" in raw else None
    before = len(ctx.problems)
    for problem in _key_problems(raw, _RULE_KEYS, "rule"):
        ctx.add(problem, rule_id)
    for key in ("text", "source"):
        if key in raw and (not isinstance(raw[key], str) or not raw[key].strip()):
            ctx.add(f"{key} must be a non-empty string", rule_id)
    if "group" in raw and raw["group"] not in rule_groups:
        ctx.add(f"group {raw['group']!r} is not in rule_groups {list(rule_groups)}", rule_id)
    if "verification" in raw and raw["verification"] not in VERIFICATION_LEVELS:
        ctx.add(
            f"unknown verification level {raw['verification']!r} "
            f"(allowed: {sorted(VERIFICATION_LEVELS)})",
            rule_id,
        )
    pathway = raw.get("pathway", "any")
    if pathway not in ("any", "invasive", "dcis"):
        ctx.add(f"pathway must be any, invasive or dcis, got {pathway!r}", rule_id)
    techniques = raw.get("techniques", [])
    if (
        not isinstance(techniques, list)
        or ("techniques" in raw and not techniques)
        or not set(techniques) <= set(TECHNIQUES)
        or len(set(techniques)) != len(techniques)
    ):
        ctx.add(
            f"techniques must be a non-empty list of distinct {list(TECHNIQUES)}, "
            f"got {techniques!r}",
            rule_id,
        )
        techniques = []
    operator = raw.get("operator")
    if "operator" in raw and operator not in OPERATORS:
        ctx.add(f"unknown operator {operator!r} (allowed: {list(OPERATORS)})", rule_id)
    value: Any = None
    if "variable" in raw:
        var = ctx.attempt(_rule_variable, ctx, raw["variable"], verdict_groups, rule_id)
        if var is not None and operator in OPERATORS and "value" in raw:
            checked = ctx.attempt(_check_rule_value, ctx, var, operator, raw["value"], rule_id)
            value = checked
        ambiguous = raw.get("ambiguous_values", [])
        if not isinstance(ambiguous, list):
            ctx.add("ambiguous_values must be a list", rule_id)
        elif var is not None:
            for item in ambiguous:
                ctx.attempt(_check_scalar, ctx, var, item, rule_id)
    compiled = raw.get("compiled", {})
    if not isinstance(compiled, dict):
        ctx.add("compiled must be a mapping", rule_id)
    if len(ctx.problems) > before or rule_id is None:
        return None
    return Rule(
        id=rule_id,
        group=raw["group"],
        variable=raw["variable"],
        operator=raw["operator"],
        value=value,
        text=raw["text"].strip(),
        source=raw["source"].strip(),
        verification=raw["verification"],
        pathway=pathway,
        note=str(raw.get("note", "") or "").strip(),
        reading=str(raw.get("reading", "") or "").strip(),
        ambiguous_values=tuple(raw.get("ambiguous_values", [])),
        compiled=compiled,
        techniques=tuple(techniques),
    )


def _parse_selector(
    ctx: _Ctx, raw: Any, rule_ids: Collection[str], groups: tuple[str, ...]
) -> Selector:
    if isinstance(raw, str):
        raw = {"group": raw}
    if (
        not isinstance(raw, dict)
        or not set(raw) <= {"group", "rules", "except"}
        or not ("group" in raw or "rules" in raw)
    ):
        raise ctx.fail(
            f"a selector is {{group: NAME(S), rules: [IDS], except: [IDS]}}, got {raw!r}"
        )
    group = raw.get("group", [])
    sel_groups = tuple([group] if isinstance(group, str) else group)
    for g in sel_groups:
        if g not in groups:
            raise ctx.fail(f"selector names unknown rule group {g!r}")
    ids = tuple(raw.get("rules", []))
    exclude = tuple(raw.get("except", []))
    for rid in ids + exclude:
        if rid not in rule_ids:
            raise ctx.fail(f"selector names unknown rule {rid!r}")
    return Selector(sel_groups, ids, exclude)


def _parse_condition(
    ctx: _Ctx, raw: Any, rule_ids: Collection[str], groups: tuple[str, ...]
) -> Condition:
    if raw == "always":
        return Condition("always")
    if not isinstance(raw, dict) or len(raw) != 1:
        raise ctx.fail(
            "a condition is 'always' or a one-key mapping with key in "
            f"{list(_CONDITION_OPS + _COMBINE_OPS)}, got {raw!r}"
        )
    op, arg = next(iter(raw.items()))
    if op in _CONDITION_OPS:
        return Condition(op, selector=_parse_selector(ctx, arg, rule_ids, groups))
    if op in _COMBINE_OPS:
        if not isinstance(arg, list) or not arg:
            raise ctx.fail(f"{op} needs a non-empty list of conditions")
        return Condition(op, parts=tuple(_parse_condition(ctx, a, rule_ids, groups) for a in arg))
    raise ctx.fail(f"unknown condition {op!r} (allowed: {list(_CONDITION_OPS + _COMBINE_OPS)})")


def _parse_outcome(
    ctx: _Ctx,
    raw: Any,
    rule_ids: Collection[str],
    groups: tuple[str, ...],
    verdicts: tuple[str, ...],
) -> Outcome:
    if (
        not isinstance(raw, dict)
        or not {"group", "when"} <= set(raw)
        or not set(raw) <= {"group", "when", "explain", "text"}
    ):
        raise ctx.fail(f"a decision outcome is {{group, when, explain?, text?}}, got {raw!r}")
    if raw["group"] not in verdicts:
        raise ctx.fail(f"decision group {raw['group']!r} is not in verdict_groups {list(verdicts)}")
    explain: list[Explain] = []
    for item in raw.get("explain", []):
        if (
            not isinstance(item, dict)
            or len(item) != 1
            or next(iter(item)) not in ("holding", "failing")
        ):
            raise ctx.fail(
                f"an explain item is {{holding: SELECTOR}} or {{failing: SELECTOR}}, got {item!r}"
            )
        status, sel = next(iter(item.items()))
        explain.append(Explain(status, _parse_selector(ctx, sel, rule_ids, groups)))
    return Outcome(
        raw["group"],
        _parse_condition(ctx, raw["when"], rule_ids, groups),
        tuple(explain),
        str(raw.get("text", "")),
    )


def _string_tuple(ctx: _Ctx, data: Any, key: str) -> tuple[str, ...]:
    if not isinstance(data, list) or not data or not all(isinstance(x, str) for x in data):
        raise ctx.fail(f"{key} must be a non-empty list of names")
    if len(set(data)) != len(data):
        raise ctx.fail(f"{key} has duplicates")
    return tuple(data)


def _parse_iort(
    ctx: _Ctx, technique: Any, spec: Any, rule_ids: Collection[str], groups: tuple[str, ...]
) -> tuple[str, Condition, str]:
    if technique not in TECHNIQUES:
        raise ctx.fail(f"iort technique must be xray, electron or hdr, got {technique!r}")
    if not isinstance(spec, dict) or set(spec) != {"supported_when", "text"}:
        raise ctx.fail(f"iort.{technique} is {{supported_when: CONDITION, text: ...}}")
    condition = _parse_condition(ctx, spec["supported_when"], rule_ids, groups)
    return technique, condition, str(spec["text"]).strip()


def _check_header(ctx: _Ctx, data: dict[str, Any]) -> None:
    """The file's scalar keys, each problem recorded."""
    if "schema_version" in data and data["schema_version"] != SCHEMA_VERSION:
        ctx.add(f"schema_version {data['schema_version']!r} is not {SCHEMA_VERSION}")
    if "kind" in data and data["kind"] not in ("apbi", "trial", "ebrt_policy"):
        ctx.add(f"kind must be apbi, trial or ebrt_policy, got {data['kind']!r}")
    if "reads" in data and data["reads"] not in ("pathology", "preoperative"):
        ctx.add(f"reads must be pathology or preoperative, got {data['reads']!r}")
    if "file_version" in data and (
        not isinstance(data["file_version"], int)
        or isinstance(data["file_version"], bool)
        or data["file_version"] < 1
    ):
        ctx.add("file_version must be a positive integer")
    for key in ("id", "title", "citation"):
        if key in data and (not isinstance(data[key], str) or not data[key].strip()):
            ctx.add(f"{key} must be a non-empty string")
    if "policy_type" in data:
        if data.get("kind") != "ebrt_policy":
            ctx.add("policy_type is a key of ebrt_policy files only")
        elif data["policy_type"] not in POLICY_TYPES:
            ctx.add(f"policy_type must be one of {list(POLICY_TYPES)}, got {data['policy_type']!r}")


def parse_guideline(data: Any, path: str, sha256: str = "") -> Guideline:
    """Validate the parsed YAML of one guideline file.

    Every problem found is reported, one message each (naming ``path`` and, for a rule
    problem, the rule id); a problem that makes the rest unreadable (no rule groups, no rule
    list) ends the reading there.

    Raises
    ------
    GuidelineError
        With ``problems`` listing what is wrong.
    """
    ctx = _Ctx(path)
    if not isinstance(data, dict):
        raise ctx.fail(f"the file must be a mapping, got {type(data).__name__}")
    for problem in _key_problems(data, _TOP_KEYS, "the file"):
        ctx.add(problem)
    _check_header(ctx, data)
    verdicts = groups = None
    if "verdict_groups" in data:
        verdicts = ctx.attempt(_string_tuple, ctx, data["verdict_groups"], "verdict_groups")
        if verdicts is not None and "insufficient-data" in verdicts:
            ctx.add("insufficient-data is added by the evaluator; do not list it")
    if "rule_groups" in data:
        groups = ctx.attempt(_string_tuple, ctx, data["rule_groups"], "rule_groups")
    raw_rules = data.get("rules")
    if "rules" in data and (not isinstance(raw_rules, list) or not raw_rules):
        ctx.add("rules must be a non-empty list")
    if verdicts is None or groups is None or not isinstance(raw_rules, list) or not raw_rules:
        raise GuidelineError(*ctx.problems)

    rules: dict[str, Rule] = {}
    declared: set[str] = set()
    for raw in raw_rules:
        if isinstance(raw, dict) and "id" in raw:
            if str(raw["id"]) in declared:
                ctx.add("duplicate rule id", str(raw["id"]))
            declared.add(str(raw["id"]))
        rule = _parse_rule(ctx, raw, groups, verdicts)
        if rule is not None and rule.id not in rules:
            rules[rule.id] = rule
    parameters = data.get("parameters", {}) or {}
    if not isinstance(parameters, dict):
        ctx.add("parameters must be a mapping")
        parameters = {}
    for rule in rules.values():
        if rule.variable == GROUP_VARIABLE:
            continue
        for needed in get_variable(rule.variable).parameters:
            if not _is_number(parameters.get(needed)):
                ctx.add(
                    f"variable {rule.variable!r} needs the numeric parameter {needed!r}", rule.id
                )

    decision: list[Outcome | None] = []
    raw_decision = data.get("decision")
    if "decision" in data and (not isinstance(raw_decision, list) or not raw_decision):
        ctx.add("decision must be a non-empty list of outcomes")
    elif isinstance(raw_decision, list):
        decision = [
            ctx.attempt(_parse_outcome, ctx, o, declared, groups, verdicts) for o in raw_decision
        ]
        last = decision[-1]
        if last is not None and last.when.op != "always":
            ctx.add("the last decision outcome must have `when: always`")
    iort: dict[str, Condition] = {}
    iort_text: dict[str, str] = {}
    raw_iort = data.get("iort") or {}
    if not isinstance(raw_iort, dict):
        ctx.add("iort must be a mapping of technique to {supported_when, text}")
        raw_iort = {}
    for technique, spec in raw_iort.items():
        parsed = ctx.attempt(_parse_iort, ctx, technique, spec, declared, groups)
        if parsed is not None:
            iort[parsed[0]] = parsed[1]
            iort_text[parsed[0]] = parsed[2]
    advice = data.get("advice")
    advice_sel = (
        ctx.attempt(_parse_selector, ctx, advice, declared, groups) if advice is not None else None
    )
    readings = data.get("readings", []) or []
    if not isinstance(readings, list) or not all(isinstance(x, str) for x in readings):
        ctx.add("readings must be a list of strings")
        readings = []
    provisional_groups = data.get("provisional_groups", {}) or {}
    if not isinstance(provisional_groups, dict) or not all(
        g in verdicts and isinstance(why, str) and why.strip()
        for g, why in provisional_groups.items()
    ):
        ctx.add("provisional_groups maps verdict groups to a reason (non-empty text)")
        provisional_groups = {}
    if ctx.problems:
        raise GuidelineError(*ctx.problems)
    return Guideline(
        id=data["id"],
        title=data["title"].strip(),
        citation=data["citation"].strip(),
        file_version=data["file_version"],
        kind=data["kind"],
        reads=data["reads"],
        verdict_groups=verdicts,
        rule_groups=groups,
        decision=tuple(o for o in decision if o is not None),
        rules=tuple(rules.values()),
        parameters=dict(parameters),
        iort=iort,
        iort_text=iort_text,
        advice=advice_sel,
        readings=tuple(r.strip() for r in readings),
        path=path,
        sha256=sha256,
        provisional_groups={g: " ".join(w.split()) for g, w in provisional_groups.items()},
        policy_type=str(data.get("policy_type", "")),
    )


def load_guideline(path: str | Path) -> Guideline:
    """Read and validate one guideline file.

    Raises
    ------
    GuidelineError
        If the file cannot be read, is not valid YAML, or breaks the schema.
    """
    p = Path(path)
    try:
        file = read_path(p)
    except OSError as exc:
        raise GuidelineError(f"{p}: cannot read the file: {exc.strerror}") from None
    return _load_bytes(file.data, str(p), file.sha256)


def _load_bytes(raw: bytes, name: str, sha256: str) -> Guideline:
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise GuidelineError(f"{name}: not valid YAML: {exc}") from None
    return parse_guideline(data, name, sha256)


def _load_package_dir(folder: str) -> tuple[Guideline, ...]:
    names = [n for n in data_names("openiort.clinical", folder) if n.endswith(".yaml")]
    files = [read_data("openiort.clinical", f"{folder}/{name}") for name in names]
    loaded = tuple(_load_bytes(f.data, f"{folder}/{f.name}", f.sha256) for f in files)
    ids = [g.id for g in loaded]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise GuidelineError(
            f"{folder}: guideline id(s) {duplicated} defined in more than one file"
        )
    return loaded


@cache
def bundled_guidelines() -> tuple[Guideline, ...]:
    """The guideline and trial files shipped in ``openiort/clinical/guidelines``."""
    return _load_package_dir("guidelines")


@cache
def bundled_policies() -> tuple[Guideline, ...]:
    """The supplemental-EBRT policy files shipped in ``openiort/clinical/policies``."""
    return _load_package_dir("policies")


def bundled_guideline(guideline_id: str) -> Guideline:
    for g in bundled_guidelines() + bundled_policies():
        if g.id == guideline_id:
            return g
    raise KeyError(f"no bundled guideline or policy {guideline_id!r}")
