"""Bar charts drawn as SVG on the server: no chart library, no script, readable without colour."""

from __future__ import annotations

from markupsafe import Markup, escape

WIDTH = 640
ROW = 22


def hbars(rows: list[tuple[str, float, str]], title: str) -> Markup:
    """One horizontal bar per row (label, value, text shown beside the bar)."""
    if not rows:
        return Markup("")
    top = max(v for _, v, _ in rows) or 1.0
    label_w, text_w = 200, 110
    span = WIDTH - label_w - text_w
    height = ROW * len(rows) + 4
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}" '
             f'preserveAspectRatio="xMinYMin meet"><title>{escape(title)}</title>']
    for i, (label, value, text) in enumerate(rows):
        y = i * ROW + 2
        w = max(1.0, span * value / top) if value > 0 else 0
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{escape(label[:32])}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{ROW - 8}" rx="2"></rect>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + 15}">{escape(text)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def columns(rows: list[tuple[str, float, str]], title: str) -> Markup:
    """One vertical bar per row (a day) with its number above it, labels under every few bars."""
    if not rows:
        return Markup("")
    top = max(v for _, v, _ in rows) or 1.0
    height, base = 180, 150
    step = WIDTH / len(rows)
    every = max(1, len(rows) // 8)
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}">'
             f'<title>{escape(title)}</title>']
    for i, (label, value, text) in enumerate(rows):
        h = (base - 20) * value / top if value > 0 else 0
        x = i * step
        parts.append(f'<rect x="{x + step * 0.15:.1f}" y="{base - h:.1f}" width="{step * 0.7:.1f}" '
                     f'height="{h:.1f}"><title>{escape(label)}: {escape(text)}</title></rect>')
        if value > 0:  # the number itself above its bar: readable without hovering
            parts.append(f'<text class="value" x="{x + step / 2:.1f}" y="{base - h - 4:.1f}" text-anchor="middle">'
                         f'{escape(text)}</text>')
        if i % every == 0:
            parts.append(f'<text x="{x + step / 2:.1f}" y="{base + 16}" text-anchor="middle">'
                         f'{escape(label[5:])}</text>')
    parts.append(f'<line x1="0" y1="{base}" x2="{WIDTH}" y2="{base}"></line></svg>')
    return Markup("".join(parts))
