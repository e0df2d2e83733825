"""The clinical section of the plan report and plan.json: verdicts, EBRT decision, evidence."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import openiort
from openiort.case import Case
from openiort.clinical.burden import Burden, treatment_burden
from openiort.clinical.eligibility import Verdict, evaluate_case
from openiort.clinical.facts import PENDING_FIELDS
from openiort.clinical.outcomes import PatientEvidence, match_evidence
from openiort.clinical.pathology import EbrtDecision, decide_ebrt
from openiort.clinical.rules import Guideline


@dataclass(frozen=True)
class ClinicalSection:
    """Typed results for the report template ``sections/clinical.html`` (variable ``section``).

    ``to_dict()`` gives the same content for plan.json; the template renders either form.
    """

    case_id: str
    verdicts: tuple[Verdict, ...]
    supplemental_ebrt: EbrtDecision | None  # None before final pathology
    evidence: PatientEvidence
    burden: Burden
    pending_fields: tuple[dict[str, str], ...]  # fields guidelines asked for, not in the model
    notice: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "verdicts": [v.to_dict() for v in self.verdicts],
            "supplemental_ebrt": self.supplemental_ebrt.to_dict()
            if self.supplemental_ebrt
            else None,
            "evidence": self.evidence.to_dict(),
            "burden": self.burden.to_dict(),
            "pending_fields": [dict(p) for p in self.pending_fields],
            "notice": self.notice,
        }


def pending_fields_asked(verdicts: tuple[Verdict, ...]) -> tuple[dict[str, str], ...]:
    """The pending (not yet modelled) case fields that some verdict lists as missing."""
    asked: dict[str, dict[str, str]] = {}
    for v in verdicts:
        for name in (*v.missing, *v.iort_missing):
            if name in PENDING_FIELDS and name not in asked:
                p = PENDING_FIELDS[name]
                asked[name] = {
                    "field": name,
                    "type": p.type.__name__,
                    "meaning": p.meaning,
                    "needed_by": p.needed_by,
                }
    return tuple(asked.values())


def build_clinical_section(
    case: Case,
    extra: Mapping[str, Any] | None = None,
    centre_policy: Guideline | None = None,
    one_way_km: float | None = None,
) -> ClinicalSection:
    """Collect the clinical section for one case.

    Parameters
    ----------
    case
        The validated case.
    extra
        Values for pending fields the case model does not hold yet.
    centre_policy
        A supplemental-EBRT centre policy (see :func:`openiort.clinical.pathology.load_policy`);
        ``None``: openiort's safe default decides (a project default, not a published policy).
    one_way_km
        Home-to-radiotherapy distance for the travel figures.
    """
    verdicts = tuple(evaluate_case(case, extra))
    ebrt = decide_ebrt(case, centre_policy, extra) if case.pathology is not None else None
    evidence = match_evidence(case)
    burden = treatment_burden(case, one_way_km, evidence=evidence)
    return ClinicalSection(
        case_id=case.patient.id,
        verdicts=verdicts,
        supplemental_ebrt=ebrt,
        evidence=evidence,
        burden=burden,
        pending_fields=pending_fields_asked(verdicts),
        notice=openiort.RESEARCH_NOTICE,
    )
