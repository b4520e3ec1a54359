"""Message types of the dak topics: body schemas, summaries, links."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from debpulse.emitters.messages import Message, parse_address, people, person, register

TRACKER = "https://tracker.debian.org/pkg/"

_STR = {"type": "string", "minLength": 1}
_OPT_STR = {"type": ["string", "null"]}
_STRINGS = {"type": "array", "items": _STR}
_BUGS = {"type": "array", "items": {"type": "integer", "minimum": 1}}
_ROUTE = {"enum": ["mail", "queue"]}
_FILE = {
    "type": "object",
    "required": ["name", "size", "sha256"],
    "additionalProperties": False,
    "properties": {
        "name": _STR,
        "size": {"type": "integer", "minimum": 0},
        # null for Format 1.7 uploads, which only had MD5 sums
        "sha256": {"type": ["string", "null"], "pattern": "^[0-9a-f]{64}$"},
    },
}
# Fields of an upload: what the .changes says, and where we learnt it.
_UPLOAD = {
    "source": _STR,
    "version": _STR,
    "architectures": _STRINGS,
    "suites": _STRINGS,
    "maintainer": _OPT_STR,
    "changed_by": _OPT_STR,
    "urgency": _OPT_STR,
    "closes": _BUGS,
    "binaries": _STRINGS,
    "files": {"type": "array", "items": _FILE},
    "date": _OPT_STR,
    "changes": {"type": "string", "pattern": r"\.changes$"},
    "signature": {"enum": ["verified", "unverified", "bad"]},
    "signed_by": {"type": ["string", "null"], "pattern": "^[0-9A-F]{40}$"},
    "queue": _STR,                     # the policy queue an upload waits in
    "route": _ROUTE,
    "message_id": _OPT_STR,            # of the mail it came from
}


def _schema(required: list[str], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "required": required,
        "additionalProperties": False,
        "properties": {**_UPLOAD, **(extra or {})},
    }


def _name(address: str | None) -> str:
    if not address:
        return "someone"
    name, mail = parse_address(address)
    return name or mail or address


class _Upload(Message):
    def link(self) -> str | None:
        return TRACKER + self.body["source"]

    def packages(self) -> list[str]:
        return [self.body["source"]]

    def usernames(self) -> list[str]:
        # The key's owner is not in the body (only its fingerprint, signed_by).
        return people(self.body.get("changed_by"), self.body.get("maintainer"))

    def agent(self) -> str | None:
        return person(self.body.get("changed_by"))

    def _what(self) -> str:
        b = self.body
        arches = b.get("architectures") or []
        # Binary-only (buildd) uploads: say which architecture was built.
        if arches and "source" not in arches:
            return f"{b['source']} {b['version']} ({', '.join(arches)})"
        return f"{b['source']} {b['version']}"


@register
class Accepted(_Upload):
    """An upload was accepted into a suite (an ACCEPTED or Accepted mail, a .changes in queue/done)."""
    topic: ClassVar[str] = "dak.package.accept"
    body_schema: ClassVar[dict[str, Any]] = _schema([
        "source", "version", "architectures", "suites", "maintainer", "changed_by", "urgency",
        "closes", "files", "changes", "signature", "signed_by", "route",
    ])

    def summary(self) -> str:
        b = self.body
        who = _name(b.get("changed_by") or b.get("maintainer"))
        return f"{who} uploaded {self._what()} to {' and '.join(b['suites'])}"


@register
class New(_Upload):
    """An upload waits in the NEW queue for the ftp-masters (an "is NEW" mail, a .changes in queue/new)."""
    topic: ClassVar[str] = "dak.package.new"
    # An "is NEW" mail names only the upload; the queue file has everything.
    body_schema: ClassVar[dict[str, Any]] = _schema(["source", "version", "changes", "route"])

    def summary(self) -> str:
        if self.body.get("queue"):
            return f"{self._what()} waits in {self.body['queue']}"
        return f"{self._what()} is NEW"


@register
class Rejected(_Upload):
    """An upload was rejected, with dak's reason (a REJECTED mail, queue/reject and its .reason)."""
    topic: ClassVar[str] = "dak.package.reject"
    body_schema: ClassVar[dict[str, Any]] = _schema(
        ["source", "version", "changes", "reason", "route"],
        {"reason": {"type": "string"}, "rejection": {"enum": ["automatic", "manual"]},
         "rejected_by": _OPT_STR},
    )

    def summary(self) -> str:
        return f"{self._what()} rejected: {reason_line(self.body['reason'])}"


def reason_line(reason: str, limit: int = 200) -> str:
    """The gist of a rejection reason on one line.  dak heads each failed
    check with a line of its own ("Version check failed:"); the reason is
    what follows, so headings are skipped and the first sentence kept."""
    lines = [line.strip() for line in reason.replace("\r\n", "\n").splitlines()]
    start = next((i for i, line in enumerate(lines) if line and not line.endswith(":")), None)
    if start is None:
        return next((line for line in lines if line), "no reason given").rstrip(":")
    end = next((i for i in range(start, len(lines)) if not lines[i]), len(lines))
    paragraph = " ".join(lines[start:end])
    m = re.match(r"(.+?[.!?])(?:\s|$)", paragraph)
    text = m.group(1) if m else paragraph
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


_REMOVED_SOURCE = {
    "type": "object",
    "required": ["name", "version"],
    "additionalProperties": False,
    "properties": {"name": _STR, "version": _STR},
}
_REMOVED_BINARY = {
    "type": "object",
    "required": ["name", "version", "architectures"],
    "additionalProperties": False,
    "properties": {"name": _STR, "version": _STR, "architectures": _STRINGS},
}


@register
class Removed(Message):
    """Packages were removed from suites (a removal mail, removals.822)."""
    topic: ClassVar[str] = "dak.package.remove"
    body_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "required": ["sources", "binaries", "suites", "reason", "closes", "route"],
        "additionalProperties": False,
        "properties": {
            "sources": {"type": "array", "items": _REMOVED_SOURCE},
            "binaries": {"type": "array", "items": _REMOVED_BINARY},
            "suites": {**_STRINGS, "minItems": 1},
            "reason": {"type": "string"},
            "closes": _BUGS,
            "ftpmaster": _OPT_STR,
            "date": _OPT_STR,
            "route": _ROUTE,
            "message_id": _OPT_STR,
        },
    }

    def summary(self) -> str:
        b = self.body
        if b["sources"]:
            what = [f"{s['name']} {s['version']}" for s in b["sources"]]
        else:
            what = [f"{x['name']} {x['version']} ({', '.join(x['architectures'])})" for x in b["binaries"]]
        shown = ", ".join(what[:3]) + (f" and {len(what) - 3} more" if len(what) > 3 else "")
        return f"Removed {shown} from {' and '.join(b['suites'])}"

    def link(self) -> str | None:
        names = self.packages()
        return TRACKER + names[0] if names else None

    def packages(self) -> list[str]:
        names = [s["name"] for s in self.body["sources"]] + [x["name"] for x in self.body["binaries"]]
        return list(dict.fromkeys(names))

    def usernames(self) -> list[str]:
        return people(self.body.get("ftpmaster"))

    def agent(self) -> str | None:
        return person(self.body.get("ftpmaster"))
