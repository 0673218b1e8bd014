"""Server-rendered SVG charts for the console (no JavaScript, no CDN): a horizontal bar chart
of residents' average rating (1–5) per group, with the number of ratings written beside each
bar. Labels are escaped; the SVG is inline in the page.
Must not import the conversation engine.
"""
from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 640
LABEL_W = 190
BAR_H = 22
GAP = 10
TOP = 26
RIGHT = 120
#: Label room in half-width units (a CJK character counts 2): longer labels end with "…"
#: (the full label is in the table beside the chart and in the bar's data-label).
LABEL_UNITS = 26


def _units(ch: str) -> int:
    import unicodedata

    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def _fit(label: str, units: int) -> str:
    if sum(_units(ch) for ch in label) <= units:
        return label
    out, used = [], 0
    for ch in label:
        if used + _units(ch) > units - 1:
            break
        out.append(ch)
        used += _units(ch)
    return "".join(out) + "…"


@dataclass(frozen=True)
class Bar:
    label: str
    average: float | None     # mean rating 1–5 (None: no rating in this group)
    rated: int                # ratings counted
    satisfied: int = 0        # ratings of 4 or 5


def satisfaction_chart(bars: list[Bar], *, title: str, chart_id: str, scale: float = 5.0) -> Markup:
    """An inline ``<svg>``: one bar per group, length = average rating out of ``scale``."""
    height = TOP + len(bars) * (BAR_H + GAP) + 24
    plot = WIDTH - LABEL_W - RIGHT
    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" id="{escape(chart_id)}" class="bars" role="img" '
             f'viewBox="0 0 {WIDTH} {height}" aria-label="{escape(title)}">'),
             f"<title>{escape(title)}</title>"]
    for tick in range(int(scale) + 1):
        x = LABEL_W + plot * tick / scale
        parts.append(f'<line x1="{x:.1f}" y1="{TOP - 6}" x2="{x:.1f}" y2="{height - 20}" stroke="#d9dde3"/>')
        parts.append(f'<text x="{x:.1f}" y="{height - 6}" font-size="11" text-anchor="middle" fill="#5b6472">{tick}</text>')
    for n, bar in enumerate(bars):
        y = TOP + n * (BAR_H + GAP)
        label = _fit(bar.label, LABEL_UNITS)
        parts.append(f'<text x="{LABEL_W - 8}" y="{y + BAR_H * 0.7:.1f}" font-size="13" text-anchor="end" '
                     f'fill="#1d2430">{escape(label)}</text>')
        if bar.average is not None:
            w = plot * max(0.0, min(bar.average, scale)) / scale
            share = f" · 4–5: {round(100 * bar.satisfied / bar.rated)}%" if bar.rated else ""
            parts.append(f'<rect class="bar" data-label="{escape(bar.label)}" data-average="{bar.average:.2f}" '
                         f'data-rated="{bar.rated}" x="{LABEL_W}" y="{y}" width="{w:.1f}" height="{BAR_H}" '
                         f'rx="4" fill="#0b5cad"/>')
            parts.append(f'<text x="{LABEL_W + w + 6:.1f}" y="{y + BAR_H * 0.7:.1f}" font-size="12" fill="#1d2430">'
                         f'{bar.average:.2f} (n={bar.rated}){escape(share)}</text>')
        else:
            parts.append(f'<text x="{LABEL_W + 6}" y="{y + BAR_H * 0.7:.1f}" font-size="12" fill="#5b6472">– (n=0)</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
