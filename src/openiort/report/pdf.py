"""The plan report as PDF (WeasyPrint), from the same results object and HTML as the HTML report.

:func:`report_pdf` renders :func:`openiort.report.html.render_report` for a
:class:`~openiort.plan.PlanResult` and prints it; :func:`html_report_to_pdf` prints an HTML
report already written (``report.html`` of a plan folder). A print style sheet adds A4 pages,
page numbers and the research notice in every footer.

The first page carries a :class:`TreatmentChart` (template ``templates/chart.html``): who the
plan is for (name, date of birth, patient id), the device and its serial, the plan version, the
delivery settings, who computed, reviewed and approved it and when, the seal, and signature
lines for the physicist and the oncologist. Every page's header repeats the patient and the
plan's status. The web app builds the chart from the treatment record and the sealed plan at
download time (the sealed plan never holds a patient's name or birth date);
:func:`case_chart` builds it from a plan computed from a case file, which names the patient by
``patient.id`` only, so the chart leaves name and date of birth to be written in by hand.

The chart's patient details go into the PDF only: the chart's ``repr`` omits them, and nothing
here logs.

WeasyPrint fetches nothing: the report is self-contained, and any URL other than an inline
``data:`` URL is refused, so printing works offline and cannot be made to reach the network.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import jinja2

from openiort import RESEARCH_NOTICE, __version__
from openiort.delivery import (
    DeviceDataRef,
    ElectronDelivery,
    HdrDelivery,
    XrayDelivery,
)
from openiort.plan import PlanResult
from openiort.report.html import render_report

REPORT_PDF = "report.pdf"
CHART_TEMPLATE = "chart.html"
PLAN_STATUSES = ("draft", "reviewed", "approved", "delivered")

AnyDelivery = XrayDelivery | ElectronDelivery | HdrDelivery

# Print layout. WeasyPrint computes the min-content width of every table cell; the report's
# `overflow-wrap: anywhere` makes that a per-character search, so it is relaxed here, which
# more than halves the time to print a report. The running header takes its text from the
# chart (`string-set`), so a page separated from the rest still names the patient and status.
PRINT_CSS = """
@page {
  size: A4;
  margin: 15mm 12mm 17mm 12mm;
  @top-left { content: string(chart-name) "\\2003" string(chart-doblabel) " " string(chart-dob)
      "\\2003" string(chart-idlabel) " " string(chart-id);
    font-size: 7pt; vertical-align: bottom; font-weight: bold;
    font-family: "DejaVu Sans", Arial, sans-serif; color: #1b3a5c; width: 55%%; }
  @top-right { content: string(chart-plan); font-size: 7pt; vertical-align: bottom;
    font-family: "DejaVu Sans", Arial, sans-serif; color: #1b3a5c; width: 45%%; }
  @bottom-left { content: "openiort plan report \\2014  %(notice)s"; font-size: 6.5pt;
    font-family: "DejaVu Sans", Arial, sans-serif; color: #555; width: 80%%; }
  @bottom-right { content: "page " counter(page) " of " counter(pages); font-size: 7pt;
    font-family: "DejaVu Sans", Arial, sans-serif; color: #555; }
}
@page :first { @top-left { content: none; } @top-right { content: none; } }
html { font-size: 9pt; }
body { margin: 0; max-width: none; font-size: 9pt; }
h1 { font-size: 15pt; }
h2 { font-size: 11.5pt; break-after: avoid; }
h3 { break-after: avoid; }
table { font-size: 8pt; }
tr, svg, img, .notice, .warn, .chart { break-inside: avoid; }
svg { max-width: 100%%; height: auto; }
.small, .cl-small { overflow-wrap: break-word !important; }
"""

# The chart's styles (no %-formatting here).
CHART_CSS = """
.chart { border: 1.4pt solid #1b3a5c; margin: 0 0 7pt 0; font-size: 8pt; color: #111; }
.chart table { border-collapse: collapse; margin: 0; width: 100%; font-size: 8pt; }
.chart th, .chart td { border: none; background: none; text-align: left; vertical-align: top;
  padding: 1.2pt 4pt 1.2pt 0; }
.chart .bar { background: #1b3a5c; color: #fff; padding: 3pt 6pt; }
.chart .bar td { color: #fff; padding: 0; vertical-align: middle; }
.chart .bar .title { font-size: 12pt; font-weight: bold; letter-spacing: 0.3pt; }
.chart .bar .sub { font-size: 7pt; }
.chart .bar .state { text-align: right; }
.chart .badge { display: inline-block; padding: 1.5pt 6pt; border-radius: 2pt; font-weight: bold;
  font-size: 9pt; background: #fff; }
.chart .badge.go { color: #14612a; border: 1pt solid #14612a; }
.chart .badge.stop { color: #b00020; border: 1pt solid #b00020; }
.chart .example { border: 2pt solid #b00020; background: #fdecea; color: #b00020;
  margin: 4pt 6pt 0 6pt; padding: 3pt 6pt; font-size: 8pt; }
.chart .example b { font-size: 11pt; }
.chart .grid { margin: 0; }
.chart .grid > tbody > tr > td, .chart .grid > tr > td { width: 50%; padding: 4pt 6pt 3pt 6pt; }
.chart .grid td.left { border-right: 0.6pt solid #9fb1c4; }
.chart .grid tr.sep > td { border-top: 0.6pt solid #9fb1c4; }
.chart h3 { font-size: 7pt; text-transform: uppercase; letter-spacing: 0.6pt; color: #1b3a5c;
  margin: 0 0 2pt 0; border: none; }
.chart .kv th { width: 30%; color: #444; font-weight: normal; white-space: nowrap; }
.chart .kv td { font-weight: bold; }
.chart .kv td.plain { font-weight: normal; }
.chart .pname { font-size: 12pt; }
.chart .missing { font-weight: normal; font-style: italic; color: #666; }
.chart .writein { display: inline-block; width: 48mm; border-bottom: 0.6pt solid #111;
  height: 9pt; }
.chart .note { font-size: 6.8pt; color: #555; font-weight: normal; margin: 2pt 0 0 0; }
.chart .stop { color: #b00020; font-weight: bold; }
.chart .go { color: #14612a; font-weight: bold; }
.chart .steps { margin: 0; }
.chart .steps th { color: #444; font-weight: normal; border-bottom: 0.6pt solid #9fb1c4; }
.chart .steps td { border-bottom: 0.3pt solid #d6dde5; }
.chart .hash { font-family: "DejaVu Sans Mono", monospace; font-size: 6.8pt;
  font-weight: normal; }
.chart table.sign { border-collapse: separate; border-spacing: 7pt 0; margin: 1pt 0 0 -7pt;
  width: auto; }
.chart .sign th { color: #444; font-weight: normal; font-size: 7pt; padding: 0; }
.chart .sign td { height: 10mm; vertical-align: bottom; padding: 0 0 1pt 0; }
.chart .sign td.line { border-bottom: 0.7pt solid #111; }
.chart .sign .role { font-weight: bold; width: 34mm; }
.chart .sign .name { width: 62mm; }
.chart .sign .date { width: 28mm; }
.chart .sign .signature { width: 48mm; }
.chart .run-name { string-set: chart-name content(); }
.chart .run-doblabel { string-set: chart-doblabel content(); }
.chart .run-dob { string-set: chart-dob content(); }
.chart .run-idlabel { string-set: chart-idlabel content(); }
.chart .run-id { string-set: chart-id content(); }
.chart .run-plan { string-set: chart-plan content(); }
"""

_BODY_OPEN = re.compile(r"<body[^>]*>", re.IGNORECASE)
_HEAD_CLOSE = re.compile(r"</head>", re.IGNORECASE)
_STATUS_LINE = re.compile(r"(status <b>)(draft|reviewed|approved|delivered)(</b>)")


class PdfError(ValueError):
    """The report cannot be printed (named in the message)."""


@dataclass(frozen=True)
class ChartPatient:
    """Who the plan is for.

    ``name`` and ``birth_date`` come from the treatment record (the web app); a case file names
    the patient by ``patient.id`` only (``source="case"``). None of the three is in ``repr``.
    """

    id: str = field(repr=False)
    name: str | None = field(default=None, repr=False)
    birth_date: dt.date | None = field(default=None, repr=False)
    source: Literal["record", "case"] = "record"


@dataclass(frozen=True)
class ChartStep:
    """One step of the plan's record: computed, reviewed, changes requested, approved, ...

    ``by`` is the user's name in the record (its username), ``at`` a timezone-aware time.
    """

    step: str
    by: str | None = None
    role: str | None = None
    at: dt.datetime | None = None
    note: str = ""


@dataclass(frozen=True)
class TreatmentChart:
    """The chart block on the PDF's first page (see the module docstring).

    Attributes
    ----------
    status:
        ``draft``, ``reviewed``, ``approved`` or ``delivered``; replaces the status the report
        was rendered with (always ``draft``, since plans are computed as drafts).
    plan_label:
        Where the plan is filed (``plan 12 of case 3``), or that it is not in a record.
    version:
        The plan's version in the record (``2``; ``None`` outside a record).
    delivery:
        The sealed plan's typed delivery (device data and console settings); ``None`` for a
        plan stored before deliveries were typed.
    example_data:
        Whether the plan was computed with example device data (never for treatment).
    steps:
        The record's steps in order; the chart adds "not reviewed" / "not approved" itself.
    """

    status: str
    patient: ChartPatient
    plan_label: str
    version: str | None
    delivery: AnyDelivery | None
    example_data: bool
    steps: tuple[ChartStep, ...] = ()
    technique: str = ""
    case_version: int | None = None
    software: str = ""
    seal_sha256: str | None = None
    in_record: bool = True

    @property
    def reviewed(self) -> bool:
        return self.status in ("reviewed", "approved", "delivered")

    @property
    def approved(self) -> bool:
        return self.status in ("approved", "delivered")

    def html(self) -> str:
        """The chart as an HTML block (escaped; for :func:`print_html`)."""
        if self.status not in PLAN_STATUSES:
            raise PdfError(f"record status {self.status!r} is not a plan status")
        return (
            _environment()
            .get_template(CHART_TEMPLATE)
            .render(
                chart=self,
                patient=self.patient,
                birth_date=self.patient.birth_date.isoformat() if self.patient.birth_date else "",
                banner=_banner(self),
                device_rows=_device_rows(self.delivery),
                delivery_rows=_delivery_rows(self.delivery),
                steps=[
                    (s.step, s.by or "", s.role or "", utc_text(s.at), s.note) for s in self.steps
                ],
                technique=_TECHNIQUES.get(self.technique, self.technique),
            )
        )


_TECHNIQUES = {"xray": "50 kV x-ray", "electron": "electron", "hdr": "HDR Ir-192"}


def _environment() -> jinja2.Environment:
    loader = jinja2.FileSystemLoader(str(resources.files("openiort.report").joinpath("templates")))
    return jinja2.Environment(
        loader=loader, autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True
    )


def utc_text(when: dt.datetime | None) -> str:
    """``2026-03-01 14:05 UTC`` (empty for None)."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if when else ""


def _banner(chart: TreatmentChart) -> tuple[str, bool]:
    """The status badge's text, and whether it says the plan may be used."""
    if not chart.in_record:
        return "NOT IN A TREATMENT RECORD · not reviewed · not approved", False
    if chart.status == "draft":
        return "DRAFT · not reviewed · not approved", False
    if chart.status == "reviewed":
        return "REVIEWED · not approved", False
    return ("APPROVED" if chart.status == "approved" else "DELIVERED"), not chart.example_data


def _device_rows(delivery: AnyDelivery | None) -> list[tuple[str, str, str]]:
    """(label, value, css class) of the device the plan was computed for."""
    if delivery is None:
        return [
            ("device", "not named in this plan (stored before plans named their device)", "stop")
        ]
    d: DeviceDataRef = delivery.device
    rows = [
        ("device", d.name, ""),
        ("serial", d.serial, "")
        if d.serial
        else ("serial", "not stated in the device data", "stop"),
    ]
    if isinstance(delivery, HdrDelivery):
        rows.append(("source", delivery.source_id, ""))
    if d.is_example:
        example = "EXAMPLE data built into openiort"
        if isinstance(delivery, ElectronDelivery):
            example += ": example machine, not your machine"
        rows.append(("device data", example, "stop"))
    else:
        by = f", commissioned by {d.commissioned_by}" if d.commissioned_by else ""
        rows.append(("device data", f"department data{by}", "plain"))
    effective = f"effective {d.effective_date}" if d.effective_date else None
    version = ", ".join(x for x in (d.version, effective) if x)
    if version:
        rows.append(("data version", version, "plain"))
    rows.append(("data SHA-256", d.sha256[:16] + "…", "hash"))
    return rows


def _minutes(minutes: float) -> str:
    total = round(minutes * 60.0)
    return f"{minutes:.2f} min ({total // 60}:{total % 60:02d} min:s)"


def _delivery_rows(delivery: AnyDelivery | None) -> list[tuple[str, str]]:
    if delivery is None:
        return []
    if isinstance(delivery, XrayDelivery):
        return [
            (
                "prescription",
                f"{delivery.prescription_gy:g} Gy ({delivery.dose_definition} definition)",
            ),
            ("applicator", f"spherical, {delivery.applicator_diameter_cm:g} cm"),
            ("treatment time", _minutes(delivery.treatment_time_min)),
            ("", "at the source's reference output (the day's time: console session)"),
        ]
    if isinstance(delivery, ElectronDelivery):
        return [
            (
                "prescription",
                f"{delivery.prescription_gy:g} Gy at the {delivery.isodose_pct:g} % isodose",
            ),
            (
                "applicator",
                f"{delivery.applicator_diameter_cm:g} cm, bevel {delivery.bevel_deg:g}°",
            ),
            ("energy", f"{delivery.energy_mev:g} MeV"),
            ("monitor units", f"{delivery.monitor_units} MU at reference conditions"),
        ]
    n = len(delivery.dwells)
    strength = f"{delivery.air_kerma_strength_u:g} U"
    if delivery.strength_reference_utc:
        strength += f" at {delivery.strength_reference_utc}"
    return [
        ("prescription", f"{delivery.prescription_gy:g} Gy"),
        ("applicator", delivery.applicator),
        ("dwell time", f"{delivery.total_time_s:.1f} s in {n} dwell{'s' if n != 1 else ''}"),
        ("air-kerma strength", strength),
    ]


def case_chart(plan: PlanResult) -> TreatmentChart:
    """The chart of a plan computed from a case file (``iort``, scripts): not in a record.

    A case file names the patient by ``patient.id`` only; name and date of birth are left as
    lines to write in, and the chart says the plan is neither reviewed nor approved.
    """
    created = dt.datetime.fromisoformat(plan.created_utc) if plan.created_utc else None
    if created is not None and created.tzinfo is None:
        created = created.replace(tzinfo=dt.UTC)
    return TreatmentChart(
        status=plan.status,
        patient=ChartPatient(plan.case_id, source="case"),
        plan_label="not filed in a treatment record (computed from a case file)",
        version=None,
        delivery=plan.delivery,
        example_data=plan.delivery.device.is_example,
        steps=(ChartStep("computed", at=created),),
        technique=plan.technique,
        software=f"openiort {__version__}",
        in_record=False,
    )


def _offline_fetcher() -> Any:
    """A WeasyPrint URL fetcher that serves inline ``data:`` URLs and nothing else."""
    from weasyprint import urls

    if hasattr(urls, "URLFetcher"):  # WeasyPrint >= 66
        return urls.URLFetcher(allowed_protocols=("data",))
    fallback = urls.default_url_fetcher  # pragma: no cover - older WeasyPrint

    def fetch(url: str, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover
        if not url.startswith("data:"):
            raise ValueError(f"external resource refused: {url[:80]}")
        return fallback(url, *args, **kwargs)

    return fetch  # pragma: no cover


def print_html(report_html: str, chart: TreatmentChart | None = None) -> str:
    """The report HTML with the print style sheet last in ``<head>`` (so that it overrides the
    report's own styles) and, if given, the chart after ``<body>`` and the status updated.
    """
    css = PRINT_CSS % {"notice": RESEARCH_NOTICE.replace('"', "'")} + CHART_CSS
    head = _HEAD_CLOSE.search(report_html)
    if head is None:
        raise PdfError("the report HTML has no </head>")
    out = report_html[: head.start()] + "<style>" + css + "</style>" + report_html[head.start() :]
    return out if chart is None else _charted(out, chart)


def _charted(report_html: str, chart: TreatmentChart) -> str:
    block = chart.html()
    match = _BODY_OPEN.search(report_html)
    if match is None:
        raise PdfError("the report HTML has no <body>")
    out = report_html[: match.end()] + block + report_html[match.end() :]
    return _STATUS_LINE.sub(lambda m: m.group(1) + chart.status + m.group(3), out, count=1)


def html_report_to_pdf(report_html: str, chart: TreatmentChart | None = None) -> bytes:
    """Print an HTML report (from :func:`openiort.report.html.render_report`) as PDF bytes.

    Raises
    ------
    PdfError
        If the HTML has no body or refers to anything outside itself.
    """
    import weasyprint

    document = weasyprint.HTML(
        string=print_html(report_html, chart), url_fetcher=_offline_fetcher(), base_url=None
    )
    pdf: bytes = document.write_pdf()
    return pdf


def report_pdf(
    plan: PlanResult, plan_json: dict[str, Any] | None = None, chart: TreatmentChart | None = None
) -> bytes:
    """The plan report of ``plan`` as PDF bytes (same content as the HTML report), with
    ``chart`` on its first page (by default :func:`case_chart`).
    """
    data = plan_json if plan_json is not None else plan.to_json_dict()
    return html_report_to_pdf(render_report(plan, data), chart or case_chart(plan))


def write_report_pdf(
    plan: PlanResult, out_dir: str | Path, chart: TreatmentChart | None = None
) -> Path:
    """Write ``report.pdf`` into ``out_dir`` (usable as an ``extra_writers`` entry of
    :func:`openiort.report.outputs.write_plan_outputs`: ``lambda d: write_report_pdf(plan, d)``).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / REPORT_PDF
    path.write_bytes(report_pdf(plan, chart=chart))
    return path
