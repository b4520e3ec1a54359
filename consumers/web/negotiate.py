"""HTML for browsers, JSON for everything else (pure)."""

from __future__ import annotations


def _accepted(header: str) -> list[tuple[str, float]]:
    out = []
    for part in header.split(","):
        kind, *params = [p.strip() for p in part.split(";")]
        q = 1.0
        for p in params:
            if p.startswith("q="):
                try:
                    q = float(p[2:])
                except ValueError:
                    q = 0.0
        if kind:
            out.append((kind.lower(), q))
    return out


def wants_html(accept: str | None) -> bool:
    """True when text/html is asked for and preferred to JSON: a browser
    (text/html first), not curl or a script (*/* or nothing: JSON, as
    datagrepper answers)."""
    if not accept:
        return False
    quality = dict(_accepted(accept))
    html = max(quality.get("text/html", 0.0), quality.get("application/xhtml+xml", 0.0))
    return html > 0 and html > quality.get("application/json", 0.0)
