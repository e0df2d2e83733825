"""The DVH of the plan page as inline SVG (no JavaScript needed to see it).

``static/viewer.js`` adds a dose cursor that reads every curve's volume at the pointer and
check boxes that hide curves; it reads the same curves from the page's JSON block.
"""

from __future__ import annotations

import html
import math
from typing import Any

from openiort.report.figures import STRUCTURE_COLOURS

WIDTH, HEIGHT = 640, 360
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 14, 44
DEFAULT_COLOUR = "#444444"


def nice_step(span: float, target_ticks: int = 8) -> float:
    """A 1-2-5 step giving about ``target_ticks`` ticks over ``span``."""
    if span <= 0:
        return 1.0
    raw = span / target_ticks
    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * power:
            return m * power
    return 10 * power  # pragma: no cover - the loop always returns


def dvh_svg(curves: dict[str, dict[str, Any]], max_dose_gy: float, prescription_gy: float) -> str:
    """SVG of cumulative DVHs (volume % against dose) with axes, grid and the prescription."""
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    top = max(max_dose_gy, 1e-6)

    def x(d: float) -> float:
        return LEFT + plot_w * min(max(d / top, 0.0), 1.0)

    def y(v: float) -> float:
        return TOP + plot_h * (1.0 - min(max(v / 100.0, 0.0), 1.0))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="dvh" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="cumulative dose-volume histograms" data-left="{LEFT}" '
        f'data-right="{WIDTH - RIGHT}" data-top="{TOP}" data-bottom="{HEIGHT - BOTTOM}" '
        f'data-max-dose="{top:.6g}">',
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" class="dvh-frame"/>',
    ]
    step = nice_step(top)
    d = 0.0
    while d <= top + 1e-9:
        xv = x(d)
        parts.append(
            f'<line x1="{xv:.1f}" y1="{TOP}" x2="{xv:.1f}" y2="{TOP + plot_h}" class="dvh-grid"/>'
        )
        parts.append(
            f'<text x="{xv:.1f}" y="{TOP + plot_h + 16}" class="dvh-tick" text-anchor="middle">{d:g}</text>'
        )
        d += step
    for v in range(0, 101, 20):
        yv = y(v)
        parts.append(
            f'<line x1="{LEFT}" y1="{yv:.1f}" x2="{LEFT + plot_w}" y2="{yv:.1f}" class="dvh-grid"/>'
        )
        parts.append(
            f'<text x="{LEFT - 6}" y="{yv + 4:.1f}" class="dvh-tick" text-anchor="end">{v}</text>'
        )
    parts.append(
        f'<text x="{LEFT + plot_w / 2:.0f}" y="{HEIGHT - 6}" class="dvh-label" text-anchor="middle">dose (Gy)</text>'
    )
    parts.append(
        f'<text x="14" y="{TOP + plot_h / 2:.0f}" class="dvh-label" text-anchor="middle" '
        f'transform="rotate(-90 14 {TOP + plot_h / 2:.0f})">volume (%)</text>'
    )
    if 0 < prescription_gy <= top:
        xp = x(prescription_gy)
        parts.append(
            f'<line x1="{xp:.1f}" y1="{TOP}" x2="{xp:.1f}" y2="{TOP + plot_h}" class="dvh-rx"/>'
        )
    for name, curve in curves.items():
        colour = STRUCTURE_COLOURS.get(name, DEFAULT_COLOUR)
        points = " ".join(
            f"{x(dv):.1f},{y(vv):.1f}"
            for dv, vv in zip(curve["dose_gy"], curve["volume_pct"], strict=True)
        )
        safe = html.escape(name, quote=True)
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2" '
            f'data-structure="{safe}"><title>{safe}</title></polyline>'
        )
    parts.append(
        f'<line class="dvh-cursor" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" visibility="hidden"/>'
    )
    parts.append("</svg>")
    return "".join(parts)


def dvh_legend(curves: dict[str, dict[str, Any]]) -> list[tuple[str, str, float]]:
    """(structure, colour, volume cc) for the legend beside the plot."""
    return [
        (name, STRUCTURE_COLOURS.get(name, DEFAULT_COLOUR), float(c.get("volume_cc", 0.0)))
        for name, c in curves.items()
    ]
