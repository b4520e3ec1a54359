"""An Atom feed (RFC 4287) of stored messages (pure): any search as a
feed a reader can follow, e.g. /feed.atom?package=hello."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree as ET

from .shapes import iso, meta

ATOM = "http://www.w3.org/2005/Atom"
# Characters XML 1.0 cannot carry at all, even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(value: object) -> str:
    return _NOT_XML.sub("\ufffd", str(value))


def _el(parent: ET.Element, tag: str, text: object = None, **attrs: str) -> ET.Element:
    e = ET.SubElement(parent, f"{{{ATOM}}}{tag}", {k: _text(v) for k, v in attrs.items()})
    if text is not None:
        e.text = _text(text)
    return e


def message_url(base_url: str, msg_id: str) -> str:
    return f"{base_url.rstrip('/')}/id?id={quote(msg_id, safe='')}"


def feed(rows: Iterable[Mapping[str, Any]], *, title: str, self_url: str, html_url: str, base_url: str,
         now: datetime | None = None) -> bytes:
    ET.register_namespace("", ATOM)
    root = ET.Element(f"{{{ATOM}}}feed")
    rows = list(rows)
    _el(root, "id", self_url)
    _el(root, "title", title)
    updated = rows[0]["ts"] if rows else (now or datetime.now(UTC))
    _el(root, "updated", iso(max((r["ts"] for r in rows), default=updated)))
    _el(root, "link", rel="self", type="application/atom+xml", href=self_url)
    _el(root, "link", rel="alternate", type="text/html", href=html_url)
    _el(root, "generator", "debpulse")
    for row in rows:
        info = meta(row, ("summary", "url"))
        entry = _el(root, "entry")
        _el(entry, "id", message_url(base_url, row["msg_id"]))
        _el(entry, "title", info["summary"])
        _el(entry, "updated", iso(row["ts"]))
        _el(entry, "link", rel="alternate", href=info["url"] or message_url(base_url, row["msg_id"]))
        _el(entry, "link", rel="related", type="application/json", href=message_url(base_url, row["msg_id"]))
        author = _el(entry, "author")
        _el(author, "name", row["agent"] or row["username"] or "debpulse")
        _el(entry, "category", term=row["topic"])
        _el(entry, "content", f"{info['summary']}\n\n{row['topic']} ({row['msg_id']})", type="text")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
