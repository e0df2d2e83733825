"""HTML formatting: the template environment and the helpers the templates call."""

from __future__ import annotations

import datetime as dt
from importlib import resources
from typing import Any

import jinja2

import openiort
from openiort.records.errors import RecordsValueError
from openiort.web.auth import may

TECHNIQUE_LABELS = {
    "xray": "50 kV x-rays",
    "electron": "electrons",
    "hdr": "HDR brachytherapy",
}


def verdict_class(group: str) -> str:
    """CSS class of a guideline verdict group: good, warn, bad or unknown."""
    g = group.lower()
    if g.startswith("insufficient"):
        return "unknown"
    if g.startswith(("not", "unsuitable", "high", "out-of-scope", "exclu")):
        return "bad"
    if g.startswith(("cautionary", "conditional", "intermediate")):
        return "warn"
    return "good"


def fmt_time(when: dt.datetime | None) -> str:
    if when is None:
        return ""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def console_text(plan_json: dict[str, Any]) -> str:
    """One line of console settings for plan lists."""
    from openiort.records.plan_data import planned_delivery

    try:
        p = planned_delivery(plan_json)
    except RecordsValueError:
        return ""
    parts = [p.applicator]
    if p.energy_mev:
        parts.append(f"{p.energy_mev:g} MeV")
    if p.monitor_units:
        parts.append(f"{p.monitor_units:g} MU")
    if p.time_s:
        parts.append(f"{p.time_s / 60:.2f} min")
    return ", ".join(parts)


def audit_text(summary: Any) -> str:
    """A short, readable line for an audit entry's summary (field names and values)."""
    if not isinstance(summary, dict):
        return ""
    parts: list[str] = []
    for key, value in summary.items():
        if key == "changed" and isinstance(value, dict):
            parts.append(
                "changed "
                + ", ".join(
                    f"{k}: {v.get('from')!r} → {v.get('to')!r}" if isinstance(v, dict) else k
                    for k, v in list(value.items())[:8]
                )
                + (" …" if len(value) > 8 else "")
            )
        elif key == "added" and isinstance(value, dict):
            parts.append(f"{len(value)} fields set")
        elif key == "removed" and isinstance(value, list) and value:
            parts.append("cleared " + ", ".join(map(str, value[:8])))
        elif isinstance(value, dict) and {"from", "to"} <= set(value):
            parts.append(f"{key} {value['from']} → {value['to']}")
        elif key == "mismatches" and isinstance(value, list):
            parts.append("refused: " + "; ".join(map(str, value)))
        elif isinstance(value, str | int | float | bool) or value is None:
            parts.append(f"{key} {value}")
    return "; ".join(parts)


def template_env() -> jinja2.Environment:
    """The pages' templates (and the report's, which the pages include), with the helpers."""
    report_templates = str(resources.files("openiort.report").joinpath("templates"))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [
                jinja2.PackageLoader("openiort.web", "templates"),
                jinja2.FileSystemLoader(report_templates),
            ]
        ),
        autoescape=jinja2.select_autoescape(["html"]),
    )
    env.globals.update(
        may=may,
        verdict_class=verdict_class,
        fmt_time=fmt_time,
        console_text=console_text,
        audit_text=audit_text,
        technique_labels=TECHNIQUE_LABELS,
        notice=openiort.RESEARCH_NOTICE,
        version=openiort.__version__,
    )
    return env
