"""The plan report as PDF (WeasyPrint), from the same results object and HTML as the HTML report.

:func:`report_pdf` renders :func:`openiort.report.html.render_report` for a
:class:`~openiort.plan.PlanResult` and prints it; :func:`html_report_to_pdf` prints an HTML
report already written (``report.html`` of a plan folder). A print style sheet adds A4 pages,
page numbers and the research notice in every footer. An optional :class:`RecordStamp` puts
the plan's standing in the treatment record (status, version, reviewer, approver, seal) at
the top of the first page, so that an approved plan's PDF says who approved it and which
sealed content it shows.

WeasyPrint fetches nothing: the report is self-contained, and any URL other than an inline
``data:`` URL is refused, so printing works offline and cannot be made to reach the network.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openiort import RESEARCH_NOTICE
from openiort.plan import PlanResult
from openiort.report.html import render_report

REPORT_PDF = "report.pdf"

# Print layout. WeasyPrint computes the min-content width of every table cell; the report's
# `overflow-wrap: anywhere` makes that a per-character search, so it is relaxed here, which
# more than halves the time to print a report.
PRINT_CSS = """
@page {
  size: A4;
  margin: 15mm 12mm 17mm 12mm;
  @bottom-left { content: "openiort plan report \\2014  %(notice)s"; font-size: 6.5pt;
    font-family: "DejaVu Sans", Arial, sans-serif; color: #555; width: 80%%; }
  @bottom-right { content: "page " counter(page) " of " counter(pages); font-size: 7pt;
    font-family: "DejaVu Sans", Arial, sans-serif; color: #555; }
}
html { font-size: 9pt; }
body { margin: 0; max-width: none; font-size: 9pt; }
h1 { font-size: 15pt; }
h2 { font-size: 11.5pt; break-after: avoid; }
h3 { break-after: avoid; }
table { font-size: 8pt; }
tr, svg, img, .notice, .warn, .record-stamp { break-inside: avoid; }
svg { max-width: 100%%; height: auto; }
.small, .cl-small { overflow-wrap: break-word !important; }
.record-stamp { border: 1.5pt solid #1b4f8a; border-radius: 3pt; padding: 4pt 8pt;
  margin: 0 0 8pt 0; }
.record-stamp h2 { margin: 0 0 3pt 0; border: none; font-size: 10.5pt; color: #1b4f8a; }
.record-stamp table { margin: 0; }
.record-stamp th, .record-stamp td { text-align: left; border: none; padding: 1pt 6pt 1pt 0;
  background: none; }
.record-stamp .tampered { color: #b00020; font-weight: bold; }
"""

_BODY_OPEN = re.compile(r"<body[^>]*>", re.IGNORECASE)
_HEAD_CLOSE = re.compile(r"</head>", re.IGNORECASE)
_STATUS_LINE = re.compile(r"(status <b>)(draft|reviewed|approved|delivered)(</b>)")


class PdfError(ValueError):
    """The report cannot be printed (named in the message)."""


@dataclass(frozen=True)
class RecordStamp:
    """The plan's standing in the treatment record, printed at the top of the PDF.

    Attributes
    ----------
    status:
        ``draft``, ``reviewed``, ``approved`` or ``delivered``; replaces the status the report
        was rendered with (always ``draft``, since plans are computed as drafts).
    rows:
        (label, value) lines: record ids, version, reviewer, approver, seal hash, ...
    """

    status: str
    rows: Sequence[tuple[str, str]] = field(default_factory=tuple)

    def html(self) -> str:
        cells = "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in self.rows
        )
        return (
            '<section class="record-stamp"><h2>Treatment record: '
            f"{html.escape(self.status)}</h2><table>{cells}</table></section>"
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


def print_html(report_html: str, stamp: RecordStamp | None = None) -> str:
    """The report HTML with the print style sheet last in ``<head>`` (so that it overrides the
    report's own styles) and, if given, the record stamp after ``<body>`` and the status updated.
    """
    style = "<style>" + PRINT_CSS % {"notice": RESEARCH_NOTICE.replace('"', "'")} + "</style>"
    head = _HEAD_CLOSE.search(report_html)
    if head is None:
        raise PdfError("the report HTML has no </head>")
    out = report_html[: head.start()] + style + report_html[head.start() :]
    return out if stamp is None else _stamped(out, stamp)


def _stamped(report_html: str, stamp: RecordStamp) -> str:
    if stamp.status not in ("draft", "reviewed", "approved", "delivered"):
        raise PdfError(f"record status {stamp.status!r} is not a plan status")
    match = _BODY_OPEN.search(report_html)
    if match is None:
        raise PdfError("the report HTML has no <body>")
    out = report_html[: match.end()] + stamp.html() + report_html[match.end() :]
    return _STATUS_LINE.sub(lambda m: m.group(1) + stamp.status + m.group(3), out, count=1)


def html_report_to_pdf(report_html: str, stamp: RecordStamp | None = None) -> bytes:
    """Print an HTML report (from :func:`openiort.report.html.render_report`) as PDF bytes.

    Raises
    ------
    PdfError
        If the HTML has no body or refers to anything outside itself.
    """
    import weasyprint

    document = weasyprint.HTML(
        string=print_html(report_html, stamp), url_fetcher=_offline_fetcher(), base_url=None
    )
    pdf: bytes = document.write_pdf()
    return pdf


def report_pdf(
    plan: PlanResult, plan_json: dict[str, Any] | None = None, stamp: RecordStamp | None = None
) -> bytes:
    """The plan report of ``plan`` as PDF bytes (same content as the HTML report)."""
    data = plan_json if plan_json is not None else plan.to_json_dict()
    return html_report_to_pdf(render_report(plan, data), stamp)


def write_report_pdf(
    plan: PlanResult, out_dir: str | Path, stamp: RecordStamp | None = None
) -> Path:
    """Write ``report.pdf`` into ``out_dir`` (usable as an ``extra_writers`` entry of
    :func:`openiort.report.outputs.write_plan_outputs`: ``lambda d: write_report_pdf(plan, d)``).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / REPORT_PDF
    path.write_bytes(report_pdf(plan, stamp=stamp))
    return path
