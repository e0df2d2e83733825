"""Guideline files: their schema, loading, and validation at load time.

A guideline (or trial, or centre policy) is one versioned YAML file. Its ``rules`` are single
criteria (variable, operator, value) with their source and verification level; its
``decision`` is an ordered list of outcomes, each with a condition over groups of rules; its
optional ``iort`` block says, per technique, when the guideline supports IORT. The evaluator
(:mod:`openiort.clinical.eligibility`) reads nothing else, so a new guideline version is a new
file and no guideline logic lives in code.

Any problem in a file (an unknown key, operator, variable, group or rule reference, a value of
the wrong type) raises :class:`GuidelineError` naming the file and the rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

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
    "note": False,
    "reading": False,
    "ambiguous_values": False,
    "compiled": False,
}
_CONDITION_OPS = ("any", "all", "none", "not_all")
_COMBINE_OPS = ("all_of", "any_of")


class _Ctx:
    def __init__(self, path: str):
        self.path = path

    def fail(self, problem: str, rule_id: str | None = None) -> GuidelineError:
        where = f"{self.path}: rule {rule_id!r}: " if rule_id else f"{self.path}: "
        return GuidelineError(where + problem)


def _check_keys(
    ctx: _Ctx, data: Any, spec: dict[str, bool], what: str, rule_id: str | None = None
) -> None:
    if not isinstance(data, dict):
        raise ctx.fail(f"{what} must be a mapping, got {type(data).__name__}", rule_id)
    unknown = sorted(set(data) - set(spec))
    if unknown:
        raise ctx.fail(f"unknown key(s) {unknown} in {what}; allowed: {sorted(spec)}", rule_id)
    missing = sorted(k for k, required in spec.items() if required and k not in data)
    if missing:
        raise ctx.fail(f"missing key(s) {missing} in {what}", rule_id)


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


def _parse_rule(
    ctx: _Ctx, raw: Any, rule_groups: tuple[str, ...], verdict_groups: tuple[str, ...]
) -> Rule:
    rule_id = raw.get("id") if isinstance(raw, dict) else None
    _check_keys(ctx, raw, _RULE_KEYS, "rule", rule_id)
    rule_id = str(raw["id"])
    for key in ("text", "source"):
        if not isinstance(raw[key], str) or not raw[key].strip():
            raise ctx.fail(f"{key} must be a non-empty string", rule_id)
    if raw["group"] not in rule_groups:
        raise ctx.fail(f"group {raw['group']!r} is not in rule_groups {list(rule_groups)}", rule_id)
    if raw["verification"] not in VERIFICATION_LEVELS:
        raise ctx.fail(
            f"unknown verification level {raw['verification']!r} "
            f"(allowed: {sorted(VERIFICATION_LEVELS)})",
            rule_id,
        )
    pathway = raw.get("pathway", "any")
    if pathway not in ("any", "invasive", "dcis"):
        raise ctx.fail(f"pathway must be any, invasive or dcis, got {pathway!r}", rule_id)
    operator = raw["operator"]
    if operator not in OPERATORS:
        raise ctx.fail(f"unknown operator {operator!r} (allowed: {list(OPERATORS)})", rule_id)
    name = raw["variable"]
    if name == GROUP_VARIABLE:
        var = group_variable(verdict_groups)
    else:
        try:
            var = get_variable(name)
        except KeyError:
            raise ctx.fail(
                f"unknown variable {name!r} (see openiort.clinical.variables.variable_names())",
                rule_id,
            ) from None
    value = _check_rule_value(ctx, var, operator, raw["value"], rule_id)
    ambiguous = raw.get("ambiguous_values", [])
    if not isinstance(ambiguous, list):
        raise ctx.fail("ambiguous_values must be a list", rule_id)
    for item in ambiguous:
        _check_scalar(ctx, var, item, rule_id)
    compiled = raw.get("compiled", {})
    if not isinstance(compiled, dict):
        raise ctx.fail("compiled must be a mapping", rule_id)
    return Rule(
        id=rule_id,
        group=raw["group"],
        variable=name,
        operator=operator,
        value=value,
        text=raw["text"].strip(),
        source=raw["source"].strip(),
        verification=raw["verification"],
        pathway=pathway,
        note=str(raw.get("note", "") or "").strip(),
        reading=str(raw.get("reading", "") or "").strip(),
        ambiguous_values=tuple(ambiguous),
        compiled=compiled,
    )


def _parse_selector(
    ctx: _Ctx, raw: Any, rules: dict[str, Rule], groups: tuple[str, ...]
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
        if rid not in rules:
            raise ctx.fail(f"selector names unknown rule {rid!r}")
    return Selector(sel_groups, ids, exclude)


def _parse_condition(
    ctx: _Ctx, raw: Any, rules: dict[str, Rule], groups: tuple[str, ...]
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
        return Condition(op, selector=_parse_selector(ctx, arg, rules, groups))
    if op in _COMBINE_OPS:
        if not isinstance(arg, list) or not arg:
            raise ctx.fail(f"{op} needs a non-empty list of conditions")
        return Condition(op, parts=tuple(_parse_condition(ctx, a, rules, groups) for a in arg))
    raise ctx.fail(f"unknown condition {op!r} (allowed: {list(_CONDITION_OPS + _COMBINE_OPS)})")


def _parse_outcome(
    ctx: _Ctx, raw: Any, rules: dict[str, Rule], groups: tuple[str, ...], verdicts: tuple[str, ...]
) -> Outcome:
    if (
        not isinstance(raw, dict)
        or not {"group", "when"} <= set(raw)
        or not set(raw)
        <= {
            "group",
            "when",
            "explain",
            "text",
        }
    ):
        raise ctx.fail(f"a decision outcome is {{group, when, explain?, text?}}, got {raw!r}")
    if raw["group"] not in verdicts:
        raise ctx.fail(f"decision group {raw['group']!r} is not in verdict_groups {list(verdicts)}")
    explain: list[Explain] = []
    for item in raw.get("explain", []):
        if (
            not isinstance(item, dict)
            or len(item) != 1
            or next(iter(item))
            not in (
                "holding",
                "failing",
            )
        ):
            raise ctx.fail(
                f"an explain item is {{holding: SELECTOR}} or {{failing: SELECTOR}}, got {item!r}"
            )
        status, sel = next(iter(item.items()))
        explain.append(Explain(status, _parse_selector(ctx, sel, rules, groups)))
    return Outcome(
        raw["group"],
        _parse_condition(ctx, raw["when"], rules, groups),
        tuple(explain),
        str(raw.get("text", "")),
    )


def _string_tuple(ctx: _Ctx, data: Any, key: str) -> tuple[str, ...]:
    if not isinstance(data, list) or not data or not all(isinstance(x, str) for x in data):
        raise ctx.fail(f"{key} must be a non-empty list of names")
    if len(set(data)) != len(data):
        raise ctx.fail(f"{key} has duplicates")
    return tuple(data)


def parse_guideline(data: Any, path: str, sha256: str = "") -> Guideline:
    """Validate the parsed YAML of one guideline file.

    Raises
    ------
    GuidelineError
        Naming ``path`` and, for a rule problem, the rule id.
    """
    ctx = _Ctx(path)
    _check_keys(ctx, data, _TOP_KEYS, "the file")
    if data["schema_version"] != SCHEMA_VERSION:
        raise ctx.fail(f"schema_version {data['schema_version']!r} is not {SCHEMA_VERSION}")
    if data["kind"] not in ("apbi", "trial", "ebrt_policy"):
        raise ctx.fail(f"kind must be apbi, trial or ebrt_policy, got {data['kind']!r}")
    if data["reads"] not in ("pathology", "preoperative"):
        raise ctx.fail(f"reads must be pathology or preoperative, got {data['reads']!r}")
    if not isinstance(data["file_version"], int) or data["file_version"] < 1:
        raise ctx.fail("file_version must be a positive integer")
    verdicts = _string_tuple(ctx, data["verdict_groups"], "verdict_groups")
    if "insufficient-data" in verdicts:
        raise ctx.fail("insufficient-data is added by the evaluator; do not list it")
    groups = _string_tuple(ctx, data["rule_groups"], "rule_groups")
    if not isinstance(data["rules"], list) or not data["rules"]:
        raise ctx.fail("rules must be a non-empty list")
    rules: dict[str, Rule] = {}
    for raw in data["rules"]:
        rule = _parse_rule(ctx, raw, groups, verdicts)
        if rule.id in rules:
            raise ctx.fail("duplicate rule id", rule.id)
        rules[rule.id] = rule
    parameters = data.get("parameters", {}) or {}
    if not isinstance(parameters, dict):
        raise ctx.fail("parameters must be a mapping")
    for rule in rules.values():
        if rule.variable == GROUP_VARIABLE:
            continue
        for needed in get_variable(rule.variable).parameters:
            if not _is_number(parameters.get(needed)):
                raise ctx.fail(
                    f"variable {rule.variable!r} needs the numeric parameter {needed!r}", rule.id
                )
    if not isinstance(data["decision"], list) or not data["decision"]:
        raise ctx.fail("decision must be a non-empty list of outcomes")
    decision = tuple(_parse_outcome(ctx, o, rules, groups, verdicts) for o in data["decision"])
    if decision[-1].when.op != "always":
        raise ctx.fail("the last decision outcome must have `when: always`")
    iort: dict[str, Condition] = {}
    iort_text: dict[str, str] = {}
    for technique, spec in (data.get("iort") or {}).items():
        if technique not in ("xray", "electron", "hdr"):
            raise ctx.fail(f"iort technique must be xray, electron or hdr, got {technique!r}")
        if not isinstance(spec, dict) or set(spec) != {"supported_when", "text"}:
            raise ctx.fail(f"iort.{technique} is {{supported_when: CONDITION, text: ...}}")
        iort[technique] = _parse_condition(ctx, spec["supported_when"], rules, groups)
        iort_text[technique] = str(spec["text"]).strip()
    advice = data.get("advice")
    advice_sel = _parse_selector(ctx, advice, rules, groups) if advice is not None else None
    readings = data.get("readings", []) or []
    if not isinstance(readings, list) or not all(isinstance(x, str) for x in readings):
        raise ctx.fail("readings must be a list of strings")
    for key in ("id", "title", "citation"):
        if not isinstance(data[key], str) or not data[key].strip():
            raise ctx.fail(f"{key} must be a non-empty string")
    provisional_groups = data.get("provisional_groups", {}) or {}
    if not isinstance(provisional_groups, dict) or not all(
        g in verdicts and isinstance(why, str) and why.strip()
        for g, why in provisional_groups.items()
    ):
        raise ctx.fail("provisional_groups maps verdict groups to a reason (non-empty text)")
    return Guideline(
        id=data["id"],
        title=data["title"].strip(),
        citation=data["citation"].strip(),
        file_version=data["file_version"],
        kind=data["kind"],
        reads=data["reads"],
        verdict_groups=verdicts,
        rule_groups=groups,
        decision=decision,
        rules=tuple(rules.values()),
        parameters=dict(parameters),
        iort=iort,
        iort_text=iort_text,
        advice=advice_sel,
        readings=tuple(r.strip() for r in readings),
        path=path,
        sha256=sha256,
        provisional_groups={g: " ".join(w.split()) for g, w in provisional_groups.items()},
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
