"""Events of the dak topics, built the same way by every route.

An upload reported by a mail and by a queue file gets one idempotency key
(the .changes name, the action and the suite), so it is published once.
Only what both routes know goes into the key: an "is NEW" or REJECTED
mail does not name a suite, so those keys carry none.  They carry the UTC
day instead (of the mail's Date, of the queue file's arrival): the same
version is often uploaded again after a rejection, and that second NEW or
REJECTED must not be taken for a repeat of the first.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from debpulse.emitters.event import Event

from .changes import Changes

ACCEPT, NEW, REJECT, REMOVE = "dak.package.accept", "dak.package.new", "dak.package.reject", "dak.package.remove"


def upload_key(action: str, changes: str, suite: str = "") -> str:
    return f"dak:{action}:{suite}:{changes}"


def _extra(route: str, message_id: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"route": route}
    if route == "mail":
        out["message_id"] = message_id
    return out


def accepted(changes: Changes, name: str, suite: str, *, route: str, message_id: str | None = None,
             origin: str = "") -> Event:
    body = {**changes.fields(), "suites": [suite], "changes": name, **_extra(route, message_id)}
    return Event(ACCEPT, body, key=upload_key("accept", name, suite), origin=origin)


def new(name: str, fields: dict[str, Any], *, day: str, route: str, queue: str | None = None,
        message_id: str | None = None, origin: str = "") -> Event:
    """An upload waiting in NEW, or (with `queue`) in another policy queue."""
    body = {**fields, "changes": name, **_extra(route, message_id)}
    if queue:
        body["queue"] = queue
        key = upload_key("policy", name, queue)
    else:
        key = upload_key("new", name)
    return Event(NEW, body, key=f"{key}:{day}", origin=origin)


def rejected(name: str, fields: dict[str, Any], reason: str, *, day: str, route: str,
             rejection: str | None = None, rejected_by: str | None = None, message_id: str | None = None,
             origin: str = "") -> Event:
    body = {**fields, "changes": name, "reason": reason.replace("\r\n", "\n").strip(),
            **_extra(route, message_id)}
    if rejection in ("automatic", "manual"):
        body["rejection"] = rejection
    if rejected_by:
        body["rejected_by"] = rejected_by
    return Event(REJECT, body, key=f"{upload_key('reject', name)}:{day}", origin=origin)


def utc_day(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


def removed(sources: list[dict[str, str]], binaries: list[dict[str, Any]], suites: list[str], reason: str,
            closes: list[int], *, route: str, ftpmaster: str | None = None, date: str | None = None,
            message_id: str | None = None, origin: str = "") -> Event:
    """A removal; the key is what was removed from where, which both the
    removal mail's summary lines and removals.822 list."""
    rows = sorted(
        [f"{s['name']}_{s['version']}_source" for s in sources]
        + [f"{b['name']}_{b['version']}_{a}" for b in binaries for a in b["architectures"]]
    )
    digest = hashlib.sha256("\n".join(rows).encode()).hexdigest()[:24]
    body: dict[str, Any] = {
        "sources": sources,
        "binaries": binaries,
        "suites": suites,
        "reason": reason.strip(),
        "closes": sorted(set(closes)),
        "ftpmaster": ftpmaster,
        "date": date,
        **_extra(route, message_id),
    }
    return Event(REMOVE, body, key=f"dak:remove:{','.join(sorted(suites))}:{digest}", origin=origin)


def name_fields(source: str, version: str, architectures: list[str] | None = None) -> dict[str, Any]:
    """What a mail without the .changes tells about an upload."""
    out: dict[str, Any] = {"source": source, "version": version}
    if architectures:
        out["architectures"] = architectures
    return out
