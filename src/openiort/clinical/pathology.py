"""After final pathology: re-evaluate the APBI guidelines and decide on supplemental EBRT.

TARGIT-A used a risk-adapted approach: whole-breast EBRT (without boost) was added after
TARGIT when final pathology showed predefined adverse features. The trial-wide triggers are in
``policies/targit-a-protocol.yaml``; each centre also filed its own pre-specified policy, and
``policies/mannheim-2019.yaml`` is the published Mannheim example a clinic can copy and edit.
Both are ordinary guideline files read by the one evaluator.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openiort.case import Case
from openiort.clinical.eligibility import INSUFFICIENT, Reason, Verdict, evaluate, facts_for
from openiort.clinical.rules import (
    Guideline,
    GuidelineError,
    bundled_guideline,
    bundled_guidelines,
    bundled_policies,
    load_guideline,
)
from openiort.errors import OpenIortInputError

TRIAL_POLICY_ID = "TARGIT-A-risk-adapted"
EXAMPLE_CENTRE_POLICY_ID = "Mannheim-2019"
ADD_EBRT = "add-ebrt"
IORT_ALONE = "iort-alone"


class PathologyMissingError(OpenIortInputError):
    """The case has no final pathology yet."""


def load_policy(spec: str | Path) -> Guideline:
    """A supplemental-EBRT policy: a bundled id or file stem, or a path to a YAML file.

    Raises
    ------
    GuidelineError
        If the file is not a valid policy (``kind: ebrt_policy`` with groups add-ebrt and
        iort-alone), naming the file.
    """
    text = str(spec)
    for policy in bundled_policies():
        if text in (policy.id, Path(policy.path).stem):
            return policy
    path = Path(spec)
    if not path.exists():
        known = ", ".join(p.id for p in bundled_policies())
        raise GuidelineError(f"{spec}: no such policy file (bundled policies: {known})")
    policy = load_guideline(path)
    if policy.kind != "ebrt_policy" or set(policy.verdict_groups) != {ADD_EBRT, IORT_ALONE}:
        raise GuidelineError(
            f"{path}: a policy file needs kind: ebrt_policy and verdict_groups "
            f"[{ADD_EBRT}, {IORT_ALONE}]"
        )
    return policy


@dataclass(frozen=True)
class EbrtDecision:
    """Whether to add whole-breast EBRT after IORT, and why."""

    decision: str  # add-ebrt | iort-alone | insufficient-data
    reasons: tuple[Reason, ...]
    missing: tuple[str, ...]
    verdicts: tuple[Verdict, ...]  # the trial triggers, then the centre policy if any
    provisional: bool
    provisional_why: tuple[str, ...]
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
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


def _timing_notes(case: Case) -> list[str]:
    notes: list[str] = []
    if case.intent.technique != "xray":
        notes.append(
            "The TARGIT-A risk-adapted approach was defined for 50 kV x-ray IORT; no "
            f"supplemental-EBRT policy for {case.intent.technique} IORT is encoded."
        )
    if case.intent.timing == "second_procedure":
        notes.append(
            "IORT as a second procedure: final pathology is known before IORT. If a trigger "
            "holds, IORT alone is not the risk-adapted option; decide before reopening."
        )
    elif case.intent.timing == "during_lumpectomy":
        notes.append(
            "IORT during lumpectomy: in TARGIT-A, 21.6 % of this stratum received supplemental "
            "EBRT (Vaidya et al. Lancet 2014)."
        )
    return notes


def decide_ebrt(
    case: Case,
    centre_policy: Guideline | None = None,
    extra: Mapping[str, Any] | None = None,
) -> EbrtDecision:
    """Apply the TARGIT-A triggers and an optional centre policy to the final pathology.

    Parameters
    ----------
    case
        A case with its ``pathology`` block filled in.
    centre_policy
        A policy file (see :func:`load_policy`); ``None`` applies the trial-wide triggers only.
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
    policies = [bundled_guideline(TRIAL_POLICY_ID)]
    if centre_policy is not None:
        policies.append(centre_policy)
    verdicts = tuple(evaluate(p, facts_for(case, p, extra)) for p in policies)
    groups = {v.group for v in verdicts}
    if ADD_EBRT in groups:
        decision = ADD_EBRT
        deciding = [v for v in verdicts if v.group == ADD_EBRT]
    elif INSUFFICIENT in groups:
        decision = INSUFFICIENT
        deciding = [v for v in verdicts if v.group == INSUFFICIENT]
    else:
        decision = IORT_ALONE
        deciding = list(verdicts)
    reasons: list[Reason] = []
    for v in deciding:
        reasons += [r for r in v.reasons if r.rule_id not in {x.rule_id for x in reasons}]
    missing = tuple(dict.fromkeys(m for v in deciding for m in v.missing))
    why = tuple(dict.fromkeys(w for v in deciding for w in v.provisional_why))
    notes = _timing_notes(case) + [n for v in verdicts for n in v.notes]
    if centre_policy is None:
        notes.append(
            "No centre policy given: only the trial-wide triggers were applied. The TARGIT-A "
            "protocol left further triggers to each centre's pre-specified policy; pass one "
            f"with --policy (example: {EXAMPLE_CENTRE_POLICY_ID})."
        )
    return EbrtDecision(
        decision=decision,
        reasons=tuple(reasons),
        missing=missing,
        verdicts=verdicts,
        provisional=bool(why),
        provisional_why=why,
        notes=tuple(notes),
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
