"""The live page's pure parts: its filters, what a row shows, and the
Server-Sent Events it is streamed as.

Filters are the query API's (`parse_search` over the same names: topic,
category, package, user, agent, their `not_` forms, `contains`), so a
filtered live page shows exactly what `/raw` with the same parameters
lists.  Rows stream from the archive; a row's position is its archive id
(`msg_ids.id`), which a browser sends back as `Last-Event-ID` when it
reconnects.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from .params import FILTERS, BadParameter, Search, check_names, parse_search
from .shapes import iso

LIVE_PARAMS = (*FILTERS, *(f"not_{f}" for f in FILTERS), "contains")
# The page's own parameters: how many rows it shows, where a stream starts.
PAGE_PARAMS = ("rows",)
STREAM_PARAMS = ("after", "pulse")  # pulse: "minute" or "all" (the charts it sends)
DEFAULT_ROWS = 50
MAX_ROWS = 500


def form_params(params: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """A form submits its empty fields too: they mean "no filter"."""
    return {k: [v for v in vs if v.strip()] for k, vs in params.items() if any(v.strip() for v in vs)}


def parse_filters(params: Mapping[str, Sequence[str]], extra: Sequence[str] = ()) -> Search:
    """The filters of a live page or stream (a 400 for anything else)."""
    for name in ("start", "end", "delta"):
        if name in params:
            raise BadParameter(name, "not a live filter (a live page follows what arrives; "
                                     "/raw searches a time range)")
    check_names(params, (*LIVE_PARAMS, *extra))
    return parse_search({k: v for k, v in params.items() if k not in extra}, allowed=LIVE_PARAMS)


def rows_param(params: Mapping[str, Sequence[str]]) -> int:
    values = params.get("rows", [])
    if not values:
        return DEFAULT_ROWS
    try:
        rows = int(values[-1])
    except ValueError:
        raise BadParameter("rows", f"{values[-1]!r} is not a whole number") from None
    if not 1 <= rows <= MAX_ROWS:
        raise BadParameter("rows", f"must be between 1 and {MAX_ROWS}")
    return rows


def position(value: str | None, parameter: str) -> int | None:
    """An archive position from `Last-Event-ID` or `after`."""
    if value is None or value.strip() == "":
        return None
    try:
        pos = int(value.strip())
    except ValueError:
        raise BadParameter(parameter, f"{value!r} is not a position this server gave") from None
    if pos < 0:
        raise BadParameter(parameter, "must not be negative")
    return pos


def matches(search: Search, row: Mapping[str, Any]) -> bool:
    """The query API's filters, in Python, for a stored row (its topic,
    category, usernames, packages, agent, and `body_text`: the body as
    PostgreSQL prints jsonb).  The same meaning as query.py's SQL: OR
    within a parameter, AND between, `not_` excludes; a test holds the
    two side by side."""
    if search.topics and row["topic"] not in search.topics:
        return False
    if search.not_topics and row["topic"] in search.not_topics:
        return False
    if search.categories and row["category"] not in search.categories:
        return False
    if search.not_categories and row["category"] in search.not_categories:
        return False
    users, packages = set(row["usernames"]), set(row["packages"])
    if search.users and not users.intersection(search.users):
        return False
    if search.not_users and users.intersection(search.not_users):
        return False
    if search.packages and not packages.intersection(search.packages):
        return False
    if search.not_packages and packages.intersection(search.not_packages):
        return False
    if search.agents and row["agent"] not in search.agents:
        return False
    if search.not_agents and row["agent"] in search.not_agents:
        return False
    return not search.contains or any(c in row["body_text"] for c in search.contains)


@dataclass(frozen=True)
class Card:
    """What the live page shows of one message."""

    id: int          # the archive position
    msg_id: str
    time: str        # HH:MM:SS, UTC
    date: str        # ISO 8601
    topic: str
    category: str
    summary: str
    link: str | None
    signer: str | None
    scope: str | None
    packages: tuple[str, ...]
    agent: str | None

    @property
    def signer_short(self) -> str:
        return self.signer[-16:] if self.signer else ""


def card(row: Mapping[str, Any]) -> Card:
    from .shapes import meta

    info = meta(row, ("summary", "url"))
    link = info["url"] if isinstance(info["url"], str) and info["url"].startswith(("https://", "http://")) else None
    return Card(id=row["id"], msg_id=row["msg_id"], time=row["ts"].astimezone(UTC).strftime("%H:%M:%S"),
                date=iso(row["ts"]), topic=row["topic"], category=row["category"], summary=str(info["summary"]),
                link=link, signer=row["signer"], scope=row["scope"], packages=tuple(sorted(row["packages"])),
                agent=row["agent"])


def sse(data: str, *, event: str | None = None, ident: int | None = None) -> str:
    """One Server-Sent Event; `data` may span lines."""
    head = (f"event: {event}\n" if event else "") + (f"id: {ident}\n" if ident is not None else "")
    return head + "".join(f"data: {line}\n" for line in data.split("\n")) + "\n"


def pulse_event(charts: Mapping[str, str]) -> str:
    return sse(json.dumps(charts, separators=(",", ":")), event="pulse")
