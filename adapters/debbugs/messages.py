"""Message types of the debbugs topics: body schema, summary, link."""

from __future__ import annotations

from typing import Any, ClassVar

from debpulse.emitters.messages import Message, parse_address, people, person, register

BUG_URL = "https://bugs.debian.org/{}"

# What get_status tells about a bug, reduced to what consumers use
# (see status_of in soap.py).
STATUS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["severity", "tags", "done", "found_versions", "fixed_versions", "last_modified"],
    "properties": {
        "package": {"type": "string"},
        "source": {"type": "string"},
        "subject": {"type": "string"},
        "originator": {"type": ["string", "null"]},
        "severity": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "done": {"type": ["string", "null"]},
        "forwarded": {"type": ["string", "null"]},
        "owner": {"type": ["string", "null"]},
        "pending": {"type": "string"},
        "found_versions": {"type": "array", "items": {"type": "string"}},
        "fixed_versions": {"type": "array", "items": {"type": "string"}},
        "mergedwith": {"type": "array", "items": {"type": "integer"}},
        "blocks": {"type": "array", "items": {"type": "integer"}},
        "blockedby": {"type": "array", "items": {"type": "integer"}},
        "affects": {"type": "array", "items": {"type": "string"}},
        "archived": {"type": "boolean"},
        "date": {"type": ["integer", "null"]},
        "last_modified": {"type": ["integer", "null"]},
        "log_modified": {"type": ["integer", "null"]},
    },
}

_NULLABLE_STRING = {"type": ["string", "null"]}

BUG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["bug", "package", "source", "title", "from", "severity", "tags",
                 "message_id", "enriched", "status", "via"],
    "properties": {
        "bug": {"type": "integer", "minimum": 1},
        "package": {"type": "string"},
        "source": _NULLABLE_STRING,
        "title": {"type": "string"},
        "from": _NULLABLE_STRING,
        "severity": _NULLABLE_STRING,
        "tags": {"type": "array", "items": {"type": "string"}},
        # The Message-ID of the mail debbugs received (not of its copy).
        "message_id": _NULLABLE_STRING,
        "enriched": {"type": "boolean"},
        "status": {"oneOf": [{"type": "null"}, STATUS_SCHEMA]},
        "via": {"enum": ["mail", "soap"]},
        "version": _NULLABLE_STRING,
        "forwarded_to": _NULLABLE_STRING,
    },
}

CHANGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["bug", "action"],
    "properties": {
        "bug": {"type": "integer"},
        "action": {"enum": [
            "tags", "severity", "reassign", "found", "notfound", "fixed", "notfixed", "merge",
            "forcemerge", "unmerge", "retitle", "owner", "noowner", "block", "unblock", "close",
            "reopen", "forwarded", "notforwarded", "affects", "summary", "submitter", "clone",
            "archive", "unarchive", "outlook",
        ]},
        "command": {"type": "string"},
        "requested": {"type": "boolean"},
        # What describe_change reads, typed so that a summary never trips.
        "added": {"type": "array", "items": {"type": "string"}},
        "removed": {"type": "array", "items": {"type": "string"}},
        "versions": {"type": "array", "items": {"type": "string"}},
        "clones": {"type": "array", "items": {"type": "string"}},
        "bugs": {"type": "array", "items": {"type": "integer"}},
        "by": {"type": "array", "items": {"type": "integer"}},
        "from": _NULLABLE_STRING,
        "to": _NULLABLE_STRING,
        "packages": {"type": "string"},
    },
}

CONTROL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["bugs", "packages", "from", "subject", "changes", "errors", "message_id", "via"],
    "properties": {
        "bugs": {"type": "array", "items": {"type": "integer", "minimum": 1}},
        "packages": {"type": "array", "items": {"type": "string"}},
        "from": _NULLABLE_STRING,
        "subject": {"type": "string"},
        "changes": {"type": "array", "items": CHANGE_SCHEMA},
        "errors": {"type": "array", "items": {
            "type": "object",
            "required": ["command", "message"],
            "properties": {"command": {"type": "string"}, "bug": {"type": ["integer", "null"]},
                           "message": {"type": "string"}},
        }},
        "message_id": _NULLABLE_STRING,
        "via": {"enum": ["mail", "soap"]},
    },
}


def display_name(address: str | None) -> str:
    if not address:
        return "someone"
    name, mail = parse_address(address)
    return name or mail or address


def _package_names(*values: str | None) -> list[str]:
    names: list[str] = []
    for value in values:
        for part in (value or "").replace(",", " ").split():
            name = part.removeprefix("src:")
            if name and name not in names:
                names.append(name)
    return names


class _BugMessage(Message):
    body_schema: ClassVar[dict[str, Any]] = BUG_SCHEMA
    verb: ClassVar[str] = ""

    def _head(self) -> str:
        b = self.body
        package = b.get("source") or (b.get("package") or "").removeprefix("src:")
        return f"Bug #{b['bug']} ({package})" if package else f"Bug #{b['bug']}"

    def summary(self) -> str:
        return f"{self._head()}: {self.verb} from {display_name(self.body.get('from'))}: {self.body.get('title')}"

    def link(self) -> str | None:
        return BUG_URL.format(self.body["bug"])

    def packages(self) -> list[str]:
        status = self.body.get("status") or {}
        return _package_names(self.body.get("package"), self.body.get("source"), *status.get("affects", []))

    def usernames(self) -> list[str]:
        # The sender (submitter, closer, follower-up), and the owner and
        # closer the BTS knows when the adapter asked it (status).
        status = self.body.get("status") or {}
        return people(self.body.get("from"), status.get("owner"), status.get("done"))

    def agent(self) -> str | None:
        return person(self.body.get("from"))


@register
class BugReport(_BugMessage):
    """A new bug was reported."""
    topic = "debbugs.bug.report"
    verb = "new report"


@register
class BugFollowup(_BugMessage):
    """Someone wrote to a bug."""
    topic = "debbugs.bug.followup"
    verb = "followup"


@register
class BugClose(_BugMessage):
    """A bug was closed (a -done mail, or fixed by an upload)."""
    topic = "debbugs.bug.close"

    def summary(self) -> str:
        version = self.body.get("version")
        fixed = f" (fixed in {version})" if version else ""
        return f"{self._head()} closed by {display_name(self.body.get('from'))}{fixed}: {self.body.get('title')}"


@register
class BugForward(_BugMessage):
    """A bug was forwarded upstream."""
    topic = "debbugs.bug.forward"

    def summary(self) -> str:
        to = self.body.get("forwarded_to")
        where = f" to {to}" if to else ""
        return f"{self._head()} marked as forwarded{where}: {self.body.get('title')}"


def describe_change(change: dict[str, Any]) -> str:
    """A few words for one change, for summaries."""
    action = change["action"]
    if action == "tags":
        words = [f"+{t}" for t in change.get("added", [])] + [f"-{t}" for t in change.get("removed", [])]
        return "tags " + " ".join(words)
    if action in ("severity", "reassign", "retitle", "owner", "forwarded", "submitter"):
        old, new = change.get("from"), change.get("to")
        label = {"reassign": "reassigned", "retitle": "retitled"}.get(action, action)
        return f"{label} {old} → {new}" if old else f"{label} {new}"
    if action in ("found", "notfound", "fixed", "notfixed"):
        label = {"found": "found in", "notfound": "not found in", "fixed": "fixed in",
                 "notfixed": "not fixed in"}[action]
        return f"{label} {', '.join(change.get('versions', []))}"
    if action in ("merge", "forcemerge"):
        others = [f"#{b}" for b in change.get("bugs", []) if b != change["bug"]]
        return f"{action}d with {' '.join(others)}"
    if action in ("block", "unblock"):
        by = " ".join(f"#{b}" for b in change.get("by", []))
        return f"blocked by {by}" if action == "block" else f"no longer blocked by {by}"
    if action == "affects":
        words = [f"+{p}" for p in change.get("added", [])] + [f"-{p}" for p in change.get("removed", [])]
        return "affects " + " ".join(words) if words else f"affects {change.get('packages', '')}"
    return {"close": "closed", "reopen": "reopened", "unmerge": "unmerged", "noowner": "owner removed",
            "notforwarded": "no longer forwarded", "archive": "archived", "unarchive": "unarchived",
            "clone": "cloned"}.get(action, action)


@register
class BugControl(Message):
    """Bugs were changed by control commands (tags, severity, reassign, merge, found, fixed, ...)."""
    topic = "debbugs.bug.control"
    body_schema: ClassVar[dict[str, Any]] = CONTROL_SCHEMA

    def summary(self) -> str:
        bugs = self.body.get("bugs", [])
        changes = self.body.get("changes", [])
        # Changes grouped by bug, in the order they were made.
        parts: list[str] = []
        by_bug: dict[int, list[str]] = {}
        for change in changes:
            words = describe_change(change)
            if words not in by_bug.setdefault(change["bug"], []):
                by_bug[change["bug"]].append(words)
        multi = len(by_bug) > 1
        for bug, words in by_bug.items():
            parts.append((f"#{bug} " if multi else "") + ", ".join(words))
        head = "Bug #" + ", #".join(str(b) for b in bugs) if len(bugs) < 4 else f"{len(bugs)} bugs"
        text = "; ".join(parts) or "no change"
        if len(text) > 200:
            text = text[:197] + "..."
        errors = len(self.body.get("errors", []))
        tail = f" ({errors} error{'s' if errors != 1 else ''})" if errors else ""
        return f"{head}: {text}{tail}"

    def link(self) -> str | None:
        bugs = self.body.get("bugs", [])
        return BUG_URL.format(bugs[0]) if bugs else None

    def packages(self) -> list[str]:
        return _package_names(*self.body.get("packages", []))

    def usernames(self) -> list[str]:
        # Who sent the commands, and whom they made owner or submitter.
        named = [c.get("to") for c in self.body.get("changes", []) if c.get("action") in ("owner", "submitter")]
        return people(self.body.get("from"), *[n for n in named if isinstance(n, str)])

    def agent(self) -> str | None:
        return person(self.body.get("from"))
