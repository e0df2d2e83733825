"""After final pathology: re-evaluate the APBI guidelines and decide on supplemental EBRT.

The answer is one of ``add-ebrt`` (add whole-breast EBRT; re-excision where a margin is
involved), ``discuss`` (the centre's policy has to decide), ``iort-alone`` or
``insufficient-data``. Which policy gives it:

* no centre policy chosen: openiort's safe default, ``policies/openiort-safe-default.yaml``
  (``policy_type: project-default``). It is the project's own default, not a published policy:
  every feature that the technique's trial (TARGIT-A for x-rays, ELIOT for electrons, the
  brachytherapy APBI trials for HDR) or the APBI consensus guidelines treat as adverse gives
  ``add-ebrt`` or ``discuss``, never ``iort-alone``;
* a centre policy chosen (``--policy``): a shipped trial or centre policy
  (``TARGIT-A-risk-adapted``, ``TARGIT-E-risk-adapted``, ``Mannheim-2019``) or a department's
  own file in the same format, checked when it is read (:func:`load_policy`, which reports every
  problem). For an x-ray case the TARGIT-A trial-wide triggers apply beside it, as the TARGIT-A
  protocol applies them beside each centre's pre-specified policy. What the safe default would
  have answered is kept beside the decision.

All of them are ordinary guideline files read by the one evaluator.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from openiort.case import Case
from openiort.clinical.eligibility import INSUFFICIENT, Reason, Verdict, evaluate, facts_for
from openiort.clinical.rules import (
    POLICY_TYPES,
    Guideline,
    GuidelineError,
    bundled_guideline,
    bundled_guidelines,
    bundled_policies,
    parse_guideline,
)
from openiort.datafiles import read_path
from openiort.errors import OpenIortInputError

SAFE_DEFAULT_POLICY_ID = "openiort-safe-default"
TRIAL_POLICY_ID = "TARGIT-A-risk-adapted"
EXAMPLE_CENTRE_POLICY_ID = "Mannheim-2019"
ADD_EBRT = "add-ebrt"
DISCUSS = "discuss"
IORT_ALONE = "iort-alone"
POLICY_GROUPS = ((ADD_EBRT, IORT_ALONE), (ADD_EBRT, DISCUSS, IORT_ALONE))

ACTIONS = {
    ADD_EBRT: "add whole-breast EBRT (without boost); where a margin is involved, re-excision "
    "is the alternative",
    DISCUSS: "discuss: the centre's policy has to decide; IORT alone is not the default",
    IORT_ALONE: "IORT alone: no trigger of the applied policy holds",
    INSUFFICIENT: "insufficient data: fill in the missing fields; IORT alone is not the default "
    "until then",
}

SAFE_DEFAULT_NOTE = (
    "No centre policy chosen: decided by openiort's safe default ({id}), a project default, "
    "not a published policy. Any feature that the technique's trial or the APBI consensus "
    "guidelines treat as adverse gives add-ebrt or discuss, never IORT alone. Choose your "
    "centre's policy with --policy (shipped: {shipped}) or a YAML file of your own."
)


class PathologyMissingError(OpenIortInputError):
    """The case has no final pathology yet."""


class PolicyError(GuidelineError):
    """A supplemental-EBRT policy that cannot be used; ``problems`` lists every problem found."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        super().__init__(*problems, source=source)
        self.args = (f"{source}: " + "; ".join(self.problems),)


def _policy_shape_problems(data: Any) -> list[str]:
    """What a policy file needs beyond being a valid guideline file."""
    if not isinstance(data, dict):
        return []
    problems: list[str] = []
    if data.get("kind") != "ebrt_policy":
        problems.append(f"a policy file needs kind: ebrt_policy, got {data.get('kind')!r}")
    if data.get("reads") != "pathology":
        problems.append(
            f"a policy file reads final pathology: reads: pathology, got {data.get('reads')!r}"
        )
    groups = data.get("verdict_groups")
    if not isinstance(groups, list) or tuple(groups) not in POLICY_GROUPS:
        allowed = " or ".join("[" + ", ".join(g) + "]" for g in POLICY_GROUPS)
        problems.append(f"a policy file needs verdict_groups {allowed}, got {groups!r}")
    if data.get("policy_type") == "project-default":
        problems.append(
            "policy_type project-default is openiort's own safe default; a department's policy "
            "says policy_type: department"
        )
    bundled = {p.id for p in bundled_policies()}
    if isinstance(data.get("id"), str) and data["id"] in bundled:
        problems.append(
            f"id {data['id']!r} is the id of a shipped policy; give your policy an id of its own"
        )
    return problems


def load_policy(spec: str | Path) -> Guideline:
    """A supplemental-EBRT policy: a bundled id or file stem, or a path to a YAML file.

    A department's file is checked when it is read: the guideline-file schema
    (:mod:`openiort.clinical.rules`), ``kind: ebrt_policy``, ``reads: pathology``, verdict groups
    ``[add-ebrt, iort-alone]`` or ``[add-ebrt, discuss, iort-alone]``, an id of its own. A file
    that does not state its ``policy_type`` is a department's policy.

    Raises
    ------
    PolicyError
        Naming the file, with one message per problem found.
    """
    text = str(spec)
    for shipped in bundled_policies():
        if text in (shipped.id, Path(shipped.path).stem):
            return shipped
    path = Path(spec)
    if not path.is_file():
        known = ", ".join(p.id for p in bundled_policies())
        raise PolicyError(text, [f"no such policy file (bundled policies: {known})"])
    try:
        file = read_path(path)
    except OSError as exc:
        raise PolicyError(str(path), [f"cannot read the file: {exc.strerror}"]) from None
    try:
        data = yaml.safe_load(file.data.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise PolicyError(str(path), [f"not valid YAML: {exc}"]) from None
    problems = _policy_shape_problems(data)
    policy: Guideline | None = None
    try:
        policy = parse_guideline(data, str(path), file.sha256)
    except GuidelineError as exc:
        prefix = f"{path}: "
        problems += [p.removeprefix(prefix) for p in exc.problems]
    if problems or policy is None:
        raise PolicyError(str(path), problems)
    if not policy.policy_type:
        policy = dataclasses.replace(policy, policy_type="department")
    return policy


def _policy_ref(policy: Guideline) -> dict[str, Any]:
    kind = policy.policy_type or "department"
    return {
        "id": policy.id,
        "title": policy.title,
        "policy_type": kind,
        "policy_type_means": POLICY_TYPES.get(kind, ""),
        "file_version": policy.file_version,
    }


@dataclass(frozen=True)
class EbrtDecision:
    """Whether to add whole-breast EBRT after IORT, and why."""

    decision: str  # add-ebrt | discuss | iort-alone | insufficient-data
    reasons: tuple[Reason, ...]
    missing: tuple[str, ...]
    verdicts: tuple[Verdict, ...]  # the policies applied, in order
    provisional: bool
    provisional_why: tuple[str, ...]
    notes: tuple[str, ...]
    action: str = ""  # what the decision asks for, in words
    safe_default: bool = True  # decided by openiort's safe default (no centre policy chosen)
    decided_by: tuple[dict[str, Any], ...] = ()  # id, title and policy_type of each policy
    safe_default_decision: str | None = None  # with a centre policy: the safe default's answer

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "action": self.action,
            "safe_default": self.safe_default,
            "decided_by": [dict(p) for p in self.decided_by],
            "safe_default_decision": self.safe_default_decision,
            "reasons": [r.to_dict() for r in self.reasons],
            "missing": list(self.missing),
            "policies": [v.to_dict() for v in self.verdicts],
            "provisional": self.provisional,
            "provisional_why": list(self.provisional_why),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class PathologyReview:
    """The output of ``iort pathology``: guideline verdicts and the EBRT decision."""

    case_id: str
    verdicts: tuple[Verdict, ...]
    ebrt: EbrtDecision

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "verdicts": [v.to_dict() for v in self.verdicts],
            "supplemental_ebrt": self.ebrt.to_dict(),
        }


def _timing_notes(case: Case, policies: Sequence[Guideline], safe_default: bool) -> list[str]:
    notes: list[str] = []
    technique = case.intent.technique
    published = [p.id for p in policies if p.policy_type in ("trial-protocol", "centre-policy")]
    if not safe_default and technique != "xray" and published:
        notes.append(
            f"{', '.join(published)} were written for 50 kV x-ray IORT (TARGIT); this case has "
            f"{technique} IORT."
        )
    if case.intent.timing == "second_procedure":
        notes.append(
            "IORT as a second procedure: final pathology is known before IORT. Unless the answer "
            "is IORT alone, IORT alone is not the option; decide before reopening."
        )
    elif case.intent.timing == "during_lumpectomy" and technique == "xray":
        notes.append(
            "IORT during lumpectomy: in TARGIT-A, 21.6 % of this stratum received supplemental "
            "EBRT (Vaidya et al. Lancet 2014)."
        )
    return notes


def _combine(verdicts: Sequence[Verdict]) -> tuple[str, list[Verdict]]:
    """The decision of several policies: add-ebrt, then a possible add-ebrt, then discuss."""
    groups = {v.group for v in verdicts}
    open_add = [v for v in verdicts if v.group == INSUFFICIENT and ADD_EBRT in v.possible_groups]
    if ADD_EBRT in groups:
        return ADD_EBRT, [v for v in verdicts if v.group == ADD_EBRT]
    if open_add:
        return INSUFFICIENT, open_add
    if DISCUSS in groups:
        return DISCUSS, [v for v in verdicts if v.group == DISCUSS]
    if INSUFFICIENT in groups:
        return INSUFFICIENT, [v for v in verdicts if v.group == INSUFFICIENT]
    return IORT_ALONE, list(verdicts)


def _holding_ids(verdict: Verdict) -> list[str]:
    return [r.rule_id for r in verdict.reasons if r.status == "met"]


def decide_ebrt(
    case: Case,
    centre_policy: Guideline | None = None,
    extra: Mapping[str, Any] | None = None,
) -> EbrtDecision:
    """Decide on supplemental whole-breast EBRT from the final pathology.

    Parameters
    ----------
    case
        A case with its ``pathology`` block filled in.
    centre_policy
        A policy (see :func:`load_policy`); ``None`` (or the safe default itself) applies
        openiort's safe default.
    extra
        Values for pending fields (see :mod:`openiort.clinical.facts`).

    Raises
    ------
    PathologyMissingError
        If the case has no pathology block.
    """
    if case.pathology is None:
        raise PathologyMissingError(
            "the case has no pathology block: fill in the final pathology of the lumpectomy "
            "before deciding on supplemental EBRT"
        )
    default = bundled_guideline(SAFE_DEFAULT_POLICY_ID)
    safe_default = centre_policy is None or centre_policy.id == SAFE_DEFAULT_POLICY_ID
    policies: list[Guideline] = []
    if safe_default:
        policies.append(default)
    else:
        assert centre_policy is not None
        if case.intent.technique == "xray" and centre_policy.id != TRIAL_POLICY_ID:
            policies.append(bundled_guideline(TRIAL_POLICY_ID))
        policies.append(centre_policy)
    verdicts = tuple(evaluate(p, facts_for(case, p, extra)) for p in policies)
    decision, deciding = _combine(verdicts)
    reasons: list[Reason] = []
    for v in deciding:
        reasons += [r for r in v.reasons if r.rule_id not in {x.rule_id for x in reasons}]
    missing = tuple(dict.fromkeys(m for v in deciding for m in v.missing))
    why = tuple(dict.fromkeys(w for v in deciding for w in v.provisional_why))

    notes: list[str] = []
    default_decision: str | None = None
    if safe_default:
        shipped = ", ".join(p.id for p in bundled_policies() if p.id != SAFE_DEFAULT_POLICY_ID)
        notes.append(SAFE_DEFAULT_NOTE.format(id=SAFE_DEFAULT_POLICY_ID, shipped=shipped))
    else:
        fallback = evaluate(default, facts_for(case, default, extra))
        default_decision = fallback.group
        held = _holding_ids(fallback)
        notes.append(
            f"Decided by the chosen policy ({', '.join(p.id for p in policies)}). openiort's "
            f"safe default (a project default, not a published policy) would answer "
            f"{fallback.group}" + (f" ({', '.join(held)})." if held else ".")
        )
    notes += _timing_notes(case, policies, safe_default)
    notes += [n for v in verdicts for n in v.notes]
    return EbrtDecision(
        decision=decision,
        reasons=tuple(reasons),
        missing=missing,
        verdicts=verdicts,
        provisional=bool(why),
        provisional_why=why,
        notes=tuple(notes),
        action=ACTIONS[decision],
        safe_default=safe_default,
        decided_by=tuple(_policy_ref(p) for p in policies),
        safe_default_decision=default_decision,
    )


def review_pathology(
    case: Case,
    centre_policy: Guideline | None = None,
    extra: Mapping[str, Any] | None = None,
    guidelines: Sequence[Guideline] | None = None,
) -> PathologyReview:
    """Re-evaluate the APBI guidelines on final pathology and decide on supplemental EBRT.

    Raises
    ------
    PathologyMissingError
        If the case has no pathology block.
    """
    ebrt = decide_ebrt(case, centre_policy, extra)
    chosen = [g for g in (bundled_guidelines() if guidelines is None else guidelines)]
    apbi = [g for g in chosen if g.kind == "apbi"]
    verdicts = tuple(evaluate(g, facts_for(case, g, extra)) for g in apbi)
    return PathologyReview(case.patient.id, verdicts, ebrt)
