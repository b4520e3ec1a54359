"""Charts as SVG, rendered on the server (pure: numbers in, markup out).

No JavaScript and no library: the pages show them with scripts off, a
phone scales them (viewBox, width 100%), and each bar carries a <title>
that a pointer or a screen reader reads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from html import escape as _escape

# One colour per service (the topic's category), the same on every page.
COLOURS = {
    "dak": "#c70036",
    "wannabuild": "#2f6fb0",
    "debbugs": "#e09b1a",
    "git": "#2e9a5c",
    "logger": "#8a8a8a",
}
EXTRA = ("#7d4fa8", "#1aa3a3", "#b05a2f", "#5a6b7d")
FONT = "font-family=\"system-ui, sans-serif\""
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def escape(text: str) -> str:
    """Text for SVG: escaped, without what XML cannot hold (control characters)."""
    return _escape(_NOT_XML.sub("\ufffd", text))


def colour(name: str, order: Sequence[str] = ()) -> str:
    if name in COLOURS:
        return COLOURS[name]
    others = [n for n in order if n not in COLOURS]
    index = others.index(name) if name in others else sum(map(ord, name))
    return EXTRA[index % len(EXTRA)]


def nice_top(value: int) -> int:
    """The axis' top: 1, 2 or 5 times a power of ten, at least `value`."""
    top = 1
    while True:
        for step in (1, 2, 5):
            if top * step >= value:
                return top * step
        top *= 10


def _fmt(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def stacked_columns(labels: Sequence[str], series: Mapping[str, Sequence[int]], *, title: str,
                    width: int = 720, height: int = 180, tick_every: int = 1,
                    ticks: Sequence[str] | None = None, unit: str = "messages", bare: bool = False,
                    colours: Mapping[str, str] | None = None) -> str:
    """Columns, one per label, stacked by series (services).  `ticks`: the
    text under each column (blank to skip); default `labels` every
    `tick_every`.  `bare`: a sparkline, without axis, ticks or legend."""
    n = max(1, len(labels))
    names = [s for s in series if any(series[s])] or list(series)
    totals = [sum(series[s][i] for s in names) for i in range(len(labels))]
    top = nice_top(max(totals, default=0) or 1)
    left, right, above, below = (1, 1, 2, 1) if bare else (34, 6, 8, 34)
    paint = {s: (colours or {}).get(s) or colour(s, names) for s in names}
    plot_w, plot_h = width - left - right, height - above - below
    col_w = plot_w / n
    gap = min(2.0, col_w * 0.2)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" class="chart" role="img"'
           f' aria-label="{escape(title)}" preserveAspectRatio="xMidYMid meet">',
           f"<title>{escape(title)}</title>"]
    for frac in () if bare else (0, 0.5, 1):
        y = above + plot_h * (1 - frac)
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{_fmt(y)}" y2="{_fmt(y)}" stroke="#ddd"'
                   f' stroke-width="1"/>')
        out.append(f'<text x="{left - 4}" y="{_fmt(y + 4)}" text-anchor="end" font-size="11" fill="#666" {FONT}>'
                   f"{_fmt(top * frac)}</text>")
    texts: Sequence[str] = [] if bare else ticks if ticks is not None else [
        lab if i % tick_every == 0 else "" for i, lab in enumerate(labels)]
    for i, label in enumerate(labels):
        x = left + i * col_w
        y = above + plot_h
        parts = [f"{label}: {totals[i]} {unit}"] + [f"{s} {series[s][i]}" for s in names if series[s][i]]
        out.append(f'<g><title>{escape(", ".join(parts))}</title>')
        for s in names:
            v = series[s][i]
            if not v:
                continue
            h = plot_h * v / top
            y -= h
            out.append(f'<rect x="{_fmt(x + gap / 2)}" y="{_fmt(y)}" width="{_fmt(max(col_w - gap, 0.5))}"'
                       f' height="{_fmt(h)}" fill="{paint[s]}"/>')
        # A transparent column so the whole height answers the pointer.
        out.append(f'<rect x="{_fmt(x)}" y="{above}" width="{_fmt(col_w)}" height="{_fmt(plot_h)}"'
                   ' fill="transparent"/></g>')
        if i < len(texts) and texts[i]:
            # Centred under its column, but kept inside the picture at the edges.
            cx, anchor = x + col_w / 2, "middle"
            if cx + 3.3 * len(texts[i]) > width - right:
                cx, anchor = width - right, "end"
            out.append(f'<text x="{_fmt(cx)}" y="{height - below + 14}" text-anchor="{anchor}"'
                       f' font-size="11" fill="#555" {FONT}>{escape(texts[i])}</text>')
    lx = left
    for s in () if bare else names:
        out.append(f'<rect x="{lx}" y="{height - 12}" width="10" height="10" fill="{paint[s]}"/>'
                   f'<text x="{lx + 14}" y="{height - 3}" font-size="11" fill="#333" {FONT}>{escape(s)}</text>')
        lx += 24 + 7 * len(s)
    out.append("</svg>")
    return "".join(out)


def compare_bars(rows: Sequence[tuple[str, int, int]], *, title: str, width: int = 720,
                 row_h: int = 26, label_w: int = 130, colours: Sequence[str] = ()) -> str:
    """Horizontal bars: each row's value this period, a mark at the
    period before, and the change written out."""
    top = nice_top(max([max(v, p) for _, v, p in rows], default=0) or 1)
    height = row_h * len(rows) + 8
    bar_w = width - label_w - 110
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" class="chart" role="img"'
           f' aria-label="{escape(title)}">', f"<title>{escape(title)}</title>"]
    for i, (label, value, previous) in enumerate(rows):
        y = 4 + i * row_h
        w = bar_w * value / top
        pw = bar_w * previous / top
        change = value - previous
        sign = "+" if change > 0 else ""
        tint = "#2e9a5c" if change > 0 else "#c70036" if change < 0 else "#666"
        out.append(f"<g><title>{escape(label)}: {value} (the week before: {previous})</title>")
        out.append(f'<text x="{label_w - 8}" y="{y + row_h / 2 + 4}" text-anchor="end" font-size="13" fill="#222"'
                   f" {FONT}>{escape(label)}</text>")
        fill = colours[i] if i < len(colours) else "#2f6fb0"
        out.append(f'<rect x="{label_w}" y="{y + 4}" width="{_fmt(w)}" height="{row_h - 8}" fill="{fill}"'
                   ' rx="2"/>')
        out.append(f'<rect x="{_fmt(label_w + pw - 1)}" y="{y + 1}" width="2" height="{row_h - 2}" fill="#222"/>')
        out.append(f'<text x="{_fmt(label_w + max(w, pw) + 6)}" y="{y + row_h / 2 + 4}" font-size="13" fill="#222"'
                   f' {FONT}>{value}<tspan fill="{tint}" dx="6">{sign}{change}</tspan></text></g>')
    out.append("</svg>")
    return "".join(out)
