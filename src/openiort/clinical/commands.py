"""Typer command functions: ``iort eligibility``, ``iort pathology``, ``iort evidence``.

Register them on the application with ``app.command("eligibility")(eligibility)`` and so on.
A case that cannot be used exits with code 2 and one line per problem on stderr.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

import openiort
from openiort.case import Case, CaseError, load_case
from openiort.clinical.burden import treatment_burden
from openiort.clinical.eligibility import Verdict, evaluate_case
from openiort.clinical.facts import consistency_problems, parse_fact
from openiort.clinical.outcomes import Estimate, match_evidence
from openiort.clinical.pathology import (
    EXAMPLE_CENTRE_POLICY_ID,
    SAFE_DEFAULT_POLICY_ID,
    EbrtDecision,
    load_policy,
    review_pathology,
)
from openiort.clinical.rules import Guideline
from openiort.clinical.section import pending_fields_asked
from openiort.clinical.summary import build_patient_summary, render_patient_summary
from openiort.command_errors import reported_input_errors

CaseArg = Annotated[Path, typer.Argument(help="Case file (YAML or JSON).", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
FactOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--fact",
        help="A case field the case model does not hold yet, as NAME=VALUE "
        "(e.g. preoperative.bilateral_cancer=false); repeatable.",
    ),
]


def _load(case_path: Path, facts: list[str] | None) -> tuple[Case, dict[str, Any]]:
    case = load_case(case_path)
    problems = consistency_problems(case)
    if problems:
        raise CaseError(str(case_path), problems)
    extra: dict[str, Any] = {}
    for text in facts or []:
        name, value = parse_fact(text)
        extra[name] = value
    return case, extra


def _iort_cell(v: Verdict) -> str:
    if v.iort_supported is None:
        return "open" if v.iort_text and v.iort_missing else "-"
    return "supported" if v.iort_supported else "not supported"


def _compact_ids(ids: Sequence[str]) -> str:
    """'gec-low-age, gec-low-pn' -> 'gec-low-{age, pn}'."""
    if len(ids) < 2:
        return ", ".join(ids)
    prefix = ids[0]
    for other in ids[1:]:  # longest common leading string, then cut back to a "-"
        while not other.startswith(prefix):
            prefix = prefix[:-1]
    prefix = prefix[: prefix.rfind("-") + 1]
    if not prefix:
        return ", ".join(ids)
    return prefix + "{" + ", ".join(i[len(prefix) :] for i in ids) + "}"


def _rules_cell(v: Verdict) -> str:
    by_status: dict[str, list[str]] = {}
    for r in v.reasons:
        by_status.setdefault(r.status, []).append(r.rule_id)
    return "\n".join(f"{status}: {_compact_ids(ids)}" for status, ids in by_status.items())


def _verdict_table(verdicts: Sequence[Verdict], title: str) -> Table:
    table = Table(title=title, show_lines=True, expand=True)
    columns = (
        ("guideline", 2, 14),
        ("verdict", 2, 17),
        ("IORT", 1, 9),
        ("deciding rules", 5, 20),
        ("missing", 2, 12),
    )
    for name, ratio, width in columns:
        table.add_column(name, overflow="fold", ratio=ratio, min_width=width)
    for v in verdicts:
        group = v.group + ("\n(provisional)" if v.provisional else "")
        rules = _rules_cell(v)
        missing = ", ".join(v.missing) if v.missing else ""
        if v.iort_missing:
            missing += ("\n" if missing else "") + "IORT: " + ", ".join(v.iort_missing)
        table.add_row(f"{v.guideline}\n[{v.basis}]", group, _iort_cell(v), rules, missing)
    return table


def _print_provisional(console: Console, verdicts: Sequence[Verdict]) -> None:
    for v in verdicts:
        for why in v.provisional_why:
            console.print(f"[bold]{v.guideline}[/] provisional: {why}", highlight=False)
        for note in v.notes:
            console.print(f"[bold]{v.guideline}[/] note: {note}", highlight=False)


def eligibility(case_path: CaseArg, json_output: JsonOpt = False, fact: FactOpt = None) -> None:
    """Guideline and trial verdicts for a case, with the rules that decided them."""
    with reported_input_errors():
        case, extra = _load(case_path, fact)
        verdicts = tuple(evaluate_case(case, extra))
    pending = pending_fields_asked(verdicts)
    if json_output:
        payload = {
            "case_id": case.patient.id,
            "verdicts": [v.to_dict() for v in verdicts],
            "pending_fields": list(pending),
            "notice": openiort.RESEARCH_NOTICE,
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    console = Console()
    console.print(_verdict_table(verdicts, f"Eligibility: case {case.patient.id}"))
    _print_provisional(console, verdicts)
    for p in pending:
        console.print(
            f"needs {p['field']} ({p['type']}: {p['meaning']}); not in the case model yet, "
            f"give it with --fact {p['field']}=...",
            highlight=False,
        )
    console.print(openiort.RESEARCH_NOTICE, style="italic", highlight=False)


PolicyOpt = Annotated[
    str | None,
    typer.Option(
        "--policy",
        help="Centre policy for supplemental EBRT: a YAML file or a bundled id "
        f"(example: {EXAMPLE_CENTRE_POLICY_ID}). Default: openiort's safe default "
        f"({SAFE_DEFAULT_POLICY_ID}), a project default, not a published policy: any adverse "
        "feature gives add-ebrt or discuss, never iort-alone.",
    ),
]


def pathology(
    case_path: CaseArg,
    json_output: JsonOpt = False,
    policy: PolicyOpt = None,
    fact: FactOpt = None,
) -> None:
    """After final pathology: guideline verdicts and whether to add whole-breast EBRT."""
    with reported_input_errors():
        case, extra = _load(case_path, fact)
        centre: Guideline | None = load_policy(policy) if policy else None
        review = review_pathology(case, centre, extra)
    if json_output:
        payload = review.to_dict()
        payload["notice"] = openiort.RESEARCH_NOTICE
        typer.echo(json.dumps(payload, indent=2))
        return
    console = Console()
    console.print(_verdict_table(review.verdicts, f"Final pathology: case {case.patient.id}"))
    _print_provisional(console, review.verdicts)
    _print_ebrt(console, review.ebrt)
    console.print(openiort.RESEARCH_NOTICE, style="italic", highlight=False)


def _decided_by(e: EbrtDecision) -> str:
    names = []
    for p in e.decided_by:
        if p["policy_type"] == "project-default":
            names.append(
                f"{p['id']} (openiort's safe default: a project default, not a published policy)"
            )
        else:
            names.append(f"{p['id']} ({p['policy_type']})")
    return ", ".join(names)


def _print_ebrt(console: Console, e: EbrtDecision) -> None:
    console.print(
        f"\n[bold]Supplemental whole-breast EBRT: {e.decision}[/]"
        + (" (provisional)" if e.provisional else ""),
        highlight=False,
    )
    console.print(f"  {e.action}", highlight=False)
    console.print(f"  decided by: {_decided_by(e)}", highlight=False)
    for r in e.reasons:
        observed = f" ({r.observed})" if r.observed else ""
        console.print(f"  {r.rule_id}: {r.text}: {r.status}{observed}", highlight=False)
    if e.missing:
        console.print("  missing: " + ", ".join(e.missing), highlight=False)
    for why in e.provisional_why:
        console.print(f"  provisional: {why}", highlight=False)
    for note in e.notes:
        console.print(f"  note: {note}", highlight=False)


OutOpt = Annotated[
    Path, typer.Option("--out", "-o", help="Folder for patient-summary.html and evidence.json.")
]
DistanceOpt = Annotated[
    float | None,
    typer.Option("--distance-km", min=0, help="One-way distance from home to radiotherapy."),
]


def evidence(
    case_path: CaseArg, out_dir: OutOpt = Path("."), distance_km: DistanceOpt = None
) -> None:
    """Published evidence for this patient: patient-summary.html and evidence.json."""
    with reported_input_errors():
        case, _ = _load(case_path, None)
        matched = match_evidence(case)
        burden = treatment_burden(case, distance_km, evidence=matched)
        summary = build_patient_summary(case, matched, burden)
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path = out_dir / "patient-summary.html"
    html_path.write_text(render_patient_summary(summary), encoding="utf-8")
    json_path = out_dir / "evidence.json"
    payload = {
        "case_id": case.patient.id,
        "evidence": matched.to_dict(),
        "burden": burden.to_dict(),
        "notice": openiort.RESEARCH_NOTICE,
    }
    json_path.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    console = Console()
    table = Table(title=f"Evidence for case {case.patient.id} ({matched.trial or 'no trial'})")
    for name in ("outcome", "publication", "time", "IORT", "comparator", "status"):
        table.add_column(name, overflow="fold")
    for item in matched.items:
        if not item.default:
            continue
        iort, other = item.treated_arm, item.arm("ebrt")
        table.add_row(
            item.label,
            f"{item.trial_key} {item.year} ({item.stratum})",
            f"{item.timepoint_years:g} y" if item.timepoint_years else "",
            _pct(iort) or item.comparison,
            _pct(other),
            item.status,
        )
    console.print(table)
    for note in matched.notes:
        console.print(f"note: {note}", highlight=False)
    console.print(f"wrote {html_path} and {json_path}", highlight=False)
    console.print(openiort.RESEARCH_NOTICE, style="italic", highlight=False)


def _pct(arm: Estimate | None) -> str:
    """An arm's figure with its status beside it (the patient page shows only verified ones)."""
    if arm is None or arm.estimate_pct is None:
        return ""
    return escape(f"{arm.estimate_pct:g} % [{arm.status}]")  # brackets are not Rich markup
