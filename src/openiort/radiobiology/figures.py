"""Small self-contained SVG line charts (no fonts or scripts embedded, no network)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

TUMOUR_COLOUR = "#b03a2e"
LATE_COLOUR = "#1f5fa8"
DASHES = ("", "6 3", "2 3", "8 3 2 3", "1 2")
MAX_MARKERS = 30  # dense profiles are drawn as lines only


@dataclass(frozen=True)
class Series:
    """A curve: points joined by straight lines, with markers at the data points."""

    label: str
    x: Sequence[float]
    y: Sequence[float]
    colour: str
    dash: str = ""
    width: float = 2.2


@dataclass(frozen=True)
class HLine:
    """A horizontal reference line (e.g. the EQD2 of an EBRT schedule)."""

    label: str
    y: float
    colour: str
    dash: str = ""


def nice_ticks(lo: float, hi: float, target: int = 6) -> list[float]:
    """Round tick values (1, 2, 5 x 10^k steps) covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(target - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    v = start
    while v <= hi + 1e-9 * step:
        ticks.append(round(v, 10))
        v += step
    if ticks[-1] < hi:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def line_chart_svg(
    series: Sequence[Series],
    hlines: Sequence[HLine] = (),
    *,
    title: str,
    x_label: str,
    y_label: str,
    width: int = 760,
    height: int = 420,
    legend_width: int = 250,
) -> str:
    """An SVG document (string) with the curves, reference lines and a legend at the right."""
    left, right, top, bottom = 62, legend_width + 16, 34, 52
    pw, ph = width - left - right, height - top - bottom
    xs = [float(v) for s in series for v in s.x]
    ys = [float(v) for s in series for v in s.y] + [h.y for h in hlines]
    x_ticks = nice_ticks(min(xs, default=0.0), max(xs, default=1.0))
    y_ticks = nice_ticks(0.0, max(ys, default=1.0) * 1.02)
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]

    def px(v: float) -> float:
        return left + (v - x0) / (x1 - x0) * pw

    def py(v: float) -> float:
        return top + ph - (v - y0) / (y1 - y0) * ph

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" font-family="sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="20" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    for t in y_ticks:
        out.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{py(t):.1f}" y2="{py(t):.1f}" '
            'stroke="#e3e3e3"/>'
        )
        out.append(f'<text x="{left - 6}" y="{py(t) + 4:.1f}" text-anchor="end">{t:g}</text>')
    for t in x_ticks:
        out.append(
            f'<line x1="{px(t):.1f}" x2="{px(t):.1f}" y1="{top + ph}" '
            f'y2="{top + ph + 4}" stroke="#444"/>'
        )
        out.append(f'<text x="{px(t):.1f}" y="{top + ph + 17}" text-anchor="middle">{t:g}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>')
    out.append(
        f'<text x="{left + pw / 2:.1f}" y="{height - 12}" text-anchor="middle">'
        f"{escape(x_label)}</text>"
    )
    out.append(
        f'<text transform="translate(16 {top + ph / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle">{escape(y_label)}</text>'
    )
    for h in hlines:
        out.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{py(h.y):.1f}" y2="{py(h.y):.1f}" '
            f'stroke="{h.colour}" stroke-width="1.2" stroke-opacity="0.75"'
            f"{_dash(h.dash)}/>"
        )
    for s in series:
        pts = " ".join(
            f"{px(float(a)):.1f},{py(float(b)):.1f}" for a, b in zip(s.x, s.y, strict=True)
        )
        out.append(
            f'<polyline points="{pts}" fill="none" stroke="{s.colour}" '
            f'stroke-width="{s.width}"{_dash(s.dash)}/>'
        )
        for a, b in zip(s.x, s.y, strict=True) if len(s.x) <= MAX_MARKERS else ():
            out.append(
                f'<circle cx="{px(float(a)):.1f}" cy="{py(float(b)):.1f}" r="2.8" '
                f'fill="{s.colour}"/>'
            )
    lx, ly = left + pw + 16, top + 6
    entries = [(s.label, s.colour, s.dash, s.width) for s in series]
    entries += [(h.label, h.colour, h.dash, 1.2) for h in hlines]
    for i, (label, colour, dash, w) in enumerate(entries):
        y = ly + 18 * i
        out.append(
            f'<line x1="{lx}" x2="{lx + 26}" y1="{y}" y2="{y}" stroke="{colour}" '
            f'stroke-width="{w}"{_dash(dash)}/>'
        )
        out.append(f'<text x="{lx + 32}" y="{y + 4}" font-size="11">{escape(label)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _dash(dash: str) -> str:
    return f' stroke-dasharray="{dash}"' if dash else ""
