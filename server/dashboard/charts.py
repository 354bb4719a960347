"""Bar charts drawn on the server: no chart library, no script, readable without colour, and on a phone.

The horizontal bars are HTML rows whose words are the page's own text, at its own size however narrow the
card; only each bar is an SVG, stretched to its share. The columns are one SVG scaled to the card; its
few short words grow in a narrow card (`.chart-box` is a CSS container, see dashboard.css), so that they
stay readable where the drawing shrinks.
"""

from __future__ import annotations

from markupsafe import Markup, escape

WIDTH = 640


def hbars(rows: list[tuple[str, float, str]], title: str) -> Markup:
    """One horizontal bar per row (label, value, text shown beside the bar)."""
    if not rows:
        return Markup("")
    top = max(v for _, v, _ in rows) or 1.0
    parts = [f'<div class="hbars" role="group" aria-label="{escape(title)}">']
    for label, value, text in rows:
        w = max(0.5, 100 * value / top) if value > 0 else 0
        parts.append(
            f'<span class="label">{escape(label[:32])}</span>'
            f'<svg class="bar" viewBox="0 0 100 1" preserveAspectRatio="none" aria-hidden="true">'
            f'<rect width="{w:.1f}" height="1"></rect></svg>'
            f'<span class="text">{escape(text)}</span>'
        )
    parts.append("</div>")
    return Markup("".join(parts))


def columns(rows: list[tuple[str, float, str]], title: str) -> Markup:
    """One vertical bar per row (a day) with its number above it, labels under every few bars."""
    if not rows:
        return Markup("")
    top = max(v for _, v, _ in rows) or 1.0
    height, base = 190, 150
    step = WIDTH / len(rows)
    every = -(-len(rows) // 6)  # at most 6 day labels: they fit a phone's width, grown as they are there
    parts = [f'<div class="chart-box"><svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
             f'aria-label="{escape(title)}"><title>{escape(title)}</title>']
    for i, (label, value, text) in enumerate(rows):
        h = (base - 34) * value / top if value > 0 else 0  # room above the highest bar for its number
        x = i * step
        parts.append(f'<rect x="{x + step * 0.15:.1f}" y="{base - h:.1f}" width="{step * 0.7:.1f}" '
                     f'height="{h:.1f}"><title>{escape(label)}: {escape(text)}</title></rect>')
        if value > 0:  # the number itself above its bar: readable without hovering
            parts.append(f'<text class="value" {_under(x, step)} y="{base - h - 4:.1f}">{escape(text)}</text>')
        if i % every == 0:
            parts.append(f'<text {_under(x, step)} y="{base + 26}">{escape(label[5:])}</text>')
    parts.append(f'<line x1="0" y1="{base}" x2="{WIDTH}" y2="{base}"></line></svg></div>')
    return Markup("".join(parts))


EDGE = 40  # user units: about half a day label at its largest (dashboard.css), kept inside the drawing


def _under(x: float, step: float) -> str:
    """Where a word over or under the column at `x` goes: centred on it, or from its bar's edge inwards
    near either end of the chart, so that it is not cut off."""
    centre = x + step / 2
    if centre < EDGE:
        return f'x="{x + step * 0.15:.1f}" text-anchor="start"'
    if centre > WIDTH - EDGE:
        return f'x="{x + step * 0.85:.1f}" text-anchor="end"'
    return f'x="{centre:.1f}" text-anchor="middle"'
