"""Control transcripts ("Processed: ..." mails) into the changes each
command made and the errors it met.  Pure: text in, a `Transcript` out.

A transcript is what debbugs' scripts/service wrote while running the
commands of a control@ mail (or the `Control:` pseudo-headers of a report):

    Processing commands for control@bugs.debian.org:

    > tags 973061 + patch
    Bug #973061 [src:nototools] nototools: FTBFS: ...
    Added tag(s) patch.
    > thanks
    Stopping processing here.

Each `> command` line is echoed, then Debbugs::Control prints a "Bug #N
[package] title" line for every bug it touches and one "action" line per
change (the `$action` strings of lib/Debbugs/Control.pm), or an error from
lib/Debbugs/Control/Service.pm.  The changes below are recognised from those
action lines, so they say what debbugs actually did, not what was asked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from debpulse.emitters.errors import InputError

# ASCII digits, and few enough that int() takes them (hostile input has others).
_N = r"[0-9]{1,9}"
_BUG = rf"-?{_N}"

# The control grammar of lib/Debbugs/Control/Service.pm (%control_grammar),
# reduced to what tells the verb and the bug(s) a command is about.  They
# match stripped lines: "(\S.*)$" takes the rest without backtracking.
_COMMANDS: list[tuple[str, re.Pattern[str]]] = [
    (verb, re.compile(rx, re.I))
    for verb, rx in [
        ("close", rf"^close\s+#?({_BUG})(?:\s+(\S.*))?$"),
        ("reassign", rf"^reassign\s+#?({_BUG})\s+(\S.*)$"),
        ("reopen", rf"^reopen\s+#?({_BUG})(?:\s+(\S.*))?$"),
        ("notfound", rf"^notfound\s+#?({_BUG})\s+(\S.*)$"),
        ("found", rf"^found\s+#?({_BUG})(?:\s+(\S.*))?$"),
        ("notfixed", rf"^notfixed\s+#?({_BUG})\s+(\S.*)$"),
        ("fixed", rf"^fixed\s+#?({_BUG})\s+(\S.*)$"),
        ("submitter", rf"^submitter\s+#?({_BUG})\s+(\S.*)$"),
        ("notforwarded", rf"^notforwarded\s+#?({_BUG})\s*$"),
        ("forwarded", rf"^forwarded\s+#?({_BUG})\s+(\S.*)$"),
        ("severity", rf"^(?:severity|priority)\s+#?({_BUG})\s+([-0-9a-z]+)\s*$"),
        ("tags", rf"^tags?\s+#?({_BUG})\s+(\S.*)$"),
        ("unblock", rf"^unblock\s+#?({_BUG})\s+(?:by|with)\s+(\S.*)$"),
        ("block", rf"^block\s+#?({_BUG})\s+(?:by|with)\s+(\S.*)$"),
        ("retitle", rf"^retitle\s+#?({_BUG})\s+(\S.*)$"),
        ("unmerge", rf"^unmerge\s+#?({_BUG})\s*$"),
        ("forcemerge", rf"^forcemerge\s+#?({_BUG})((?:\s+#?{_BUG})+)\s*$"),
        ("merge", rf"^merge\s+#?({_BUG})((?:\s+#?{_BUG})+)\s*$"),
        ("clone", rf"^clone\s+#?({_BUG})\s+((?:{_BUG}\s+)*{_BUG})\s*$"),
        ("affects", rf"^affects?\s+#?({_BUG})(?:\s+(\S.*))?$"),
        ("summary", rf"^summary\s+#?({_BUG})\s*(.*)$"),
        ("outlook", rf"^outlook\s+#?({_BUG})\s*(.*)$"),
        ("noowner", rf"^noowner\s+#?({_BUG})\s*$"),
        ("owner", rf"^owner\s+#?({_BUG})\s+(\S.*)$"),
        ("unarchive", rf"^unarchive\s+#?({_BUG})\s*$"),
        ("archive", rf"^archive\s+#?({_BUG})\s*$"),
    ]
]
_TERMINATORS = re.compile(r"^(?:stop|quit|--|thanks?|thank\s+you|kthxbye)\b", re.I)

# "Bug #890716 {Done: Name <mail>} [src:xfsprogs] title" (Control.pm __bug_info)
_BUG_INFO = re.compile(rf"^Bug #({_N})(?: \{{Done: [^}}]*\}})?(?: \{{Forwarded-To: [^}}]*\}})? \[([^\]]*)\] ?(.*)$")
_PROCESSED = re.compile(rf"^Processed(?: \(with ({_N}) errors?\))?: ?(.*)$", re.S)

# Lines debbugs prints for a command that failed (each counted in the
# "Processed (with N errors)" subject by scripts/service).
_ERROR_PREFIXES = (
    "Unknown tag/s:", "Unknown tag(s):", "Failed to ", "Severity level `", "Unknown command or ",
    "Limit key ", "This BTS function is currently disabled", "No valid user selected", "Selected user id",
    "Ignoring illegal tag/s:", "Too many unknown commands", "User defined category specification",
    "Unrecognised syntax", "No commands successfully parsed", "Unable to merge bugs because:",
    "It is nonsensical", "Mismatch - only ",
)
_ERROR_PATTERNS = (
    re.compile(r" is not a valid e-mail address; not changing submitter$"),
    re.compile(r"^Bug number \d+ belongs to package .*, skipping\.$"),
)
# Follow-up lines of an error: the long lists of what would have been valid.
_ERROR_DETAIL_PREFIXES = ("Recognized are:", "These tags are recognized:", "Use ")


@dataclass(frozen=True)
class Command:
    """One `> line` of the transcript and what came of it."""

    line: str
    verb: str | None            # control_grammar name, None for user/usertag/help/...
    bug: int | None             # as written; -1 style references are resolved in `changes`
    changes: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Transcript:
    subject: str                # the subject of the mail that carried the commands
    declared_errors: int        # from "Processed (with N errors)", 0 otherwise
    commands: list[Command]
    bug_titles: dict[int, str] = field(default_factory=dict)
    bug_packages: dict[int, str] = field(default_factory=dict)

    @property
    def changes(self) -> list[dict[str, Any]]:
        return [change for c in self.commands for change in c.changes]

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [
            {"command": c.line, "bug": c.bug, "message": message}
            for c in self.commands
            for message in c.errors
        ]

    @property
    def bugs(self) -> list[int]:
        found: set[int] = set(self.bug_titles)
        for c in self.commands:
            if c.bug is not None:
                found.add(c.bug)
            for change in c.changes:
                found.add(change["bug"])
                found.update(change.get("bugs", ()))
        return sorted(b for b in found if b > 0)  # "close 0" names no bug


def _numbers(words: Iterable[str]) -> list[int]:
    return [int(w) for w in words if re.fullmatch(_N, w)]


def parse_command(line: str) -> tuple[str | None, int | None, str]:
    """(verb, bug, arguments) of one control command; (None, None, line)
    when it is not a control command debbugs knows."""
    for verb, rx in _COMMANDS:
        m = rx.match(line.strip())
        if m:
            bug = int(m.group(1))
            rest = (m.group(2) or "").strip() if m.re.groups >= 2 else ""
            return verb, bug, rest
    return None, None, line.strip()


def requested_changes(verb: str, bug: int, args: str) -> list[dict[str, Any]]:
    """What a command asks for, when no transcript says what it did (a
    control message seen only in a bug log).  Same shape as `Transcript`
    changes, with "requested": True."""
    change: dict[str, Any] = {"bug": bug, "action": verb, "requested": True}
    if verb == "tags":
        added, removed, op = [], [], "+"
        for word in re.split(r"[\s,]+", args):
            m = re.match(r"^([+=-])(.*)$", word)
            if m:
                op, word = m.group(1), m.group(2)
            if word:
                (removed if op == "-" else added).append(word)
        change.update(added=added, removed=removed)
    elif verb == "severity":
        change.update({"from": None, "to": args})
    elif verb == "reassign":
        change.update({"from": None, "to": args.split()[0] if args else ""})
    elif verb in ("found", "notfound", "fixed", "notfixed"):
        change["versions"] = [v for v in re.split(r"[\s,]+", args) if v]
    elif verb in ("merge", "forcemerge"):
        change["bugs"] = sorted({bug, *(int(b.lstrip("#")) for b in args.split())})
    elif verb in ("block", "unblock"):
        change["by"] = _numbers(b.lstrip("#") for b in re.split(r"[\s,]+", args))
    elif verb == "retitle":
        change.update({"from": None, "to": args})
    elif verb in ("owner", "forwarded", "submitter"):
        change.update({"from": None, "to": None if args == "!" else args})
    elif verb == "affects":
        change["packages"] = args
    return [change]


def parse_transcript(text: str, subject: str = "") -> Transcript:
    """Parse the body of a transcript mail (already decoded to text)."""
    m = _PROCESSED.match(" ".join(subject.split()))
    declared = int(m.group(1)) if m and m.group(1) else 0
    original_subject = m.group(2) if m else subject

    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Processing ")
                  and line.rstrip().endswith(":")), None)
    if start is None:
        raise InputError("control transcript without a 'Processing ... commands' line")

    commands: list[Command] = []
    titles: dict[int, str] = {}
    packages: dict[int, str] = {}
    current: _Builder | None = None
    for line in lines[start + 1:]:
        if line in ("--", "-- ") or line.startswith("Please contact me if you need assistance"):
            break
        if line.startswith(">"):
            if current is not None:
                commands.append(current.build())
                current = None
            command = line[1:].strip()
            if not command or _TERMINATORS.match(command):
                continue
            current = _Builder(command)
            continue
        if current is None or not line.strip():
            continue
        info = _BUG_INFO.match(line)
        if info:
            bug = int(info.group(1))
            titles[bug] = info.group(3)
            packages[bug] = info.group(2)
            current.bug_seen = bug
            continue
        current.result(line)
    if current is not None:
        commands.append(current.build())
    return Transcript(original_subject, declared, commands, titles, packages)


class _Builder:
    """Collects the result lines of one command."""

    def __init__(self, line: str) -> None:
        self.line = line
        self.verb, self.bug, self.args = parse_command(line)
        self.bug_seen: int | None = None
        self.changes: list[dict[str, Any]] = []
        self.errors: list[str] = []

    def build(self) -> Command:
        return Command(self.line, self.verb, self.bug, self.changes, self.errors)

    def result(self, line: str) -> None:
        text = line.strip()
        if text.startswith(_ERROR_DETAIL_PREFIXES) and self.errors:
            return
        if text.startswith(_ERROR_PREFIXES) or any(p.search(text) for p in _ERROR_PATTERNS):
            self.errors.append(text)
            return
        bug = self.bug_seen if self.bug_seen is not None else self.bug
        if bug is None or bug < 0:
            return
        for change in _changes_of(text, bug, self.verb):
            change["command"] = self.line
            self.changes.append(change)


def _english_list(text: str) -> list[str]:
    """'a, b, and c' / 'a and b' / 'a' (Debbugs::Common::english_join)."""
    return [p for p in re.split(r",\s*and\s+|,\s*|\s+and\s+", text.strip().rstrip(".")) if p]


def _quoted(rx: str) -> re.Pattern[str]:
    return re.compile(rx, re.I)


# Whole-line actions whose values are quoted and may contain anything.
_LINE_ACTIONS: list[tuple[re.Pattern[str], str, tuple[str, ...]]] = [
    (_quoted(r"^Severity set to '(.*)' from '(.*)'$"), "severity", ("to", "from")),
    (_quoted(r"^Severity set to '(.*)'$"), "severity", ("to",)),
    (_quoted(r"^Bug reassigned from package '(.*)' to '(.*)'\.$"), "reassign", ("from", "to")),
    (_quoted(r"^Bug assigned to package '(.*)'\.$"), "reassign", ("to",)),
    (_quoted(r"^Changed Bug title to '(.*)' from '(.*)'\.$"), "retitle", ("to", "from")),
    (_quoted(r"^Set Bug title to '(.*)'\.$"), "retitle", ("to",)),
    (_quoted(r"^Changed Bug submitter to '(.*)' from '(.*)'\.$"), "submitter", ("to", "from")),
    (_quoted(r"^Set Bug submitter to '(.*)'\.$"), "submitter", ("to",)),
    (_quoted(r"^Changed Bug forwarded-to-address to '(.*)' from '(.*)'\.$"), "forwarded", ("to", "from")),
    (_quoted(r"^Set Bug forwarded-to-address to '(.*)'\.$"), "forwarded", ("to",)),
    (_quoted(r"^Unset Bug forwarded-to-address$"), "notforwarded", ()),
    (_quoted(r"^Owner changed from (.*) to (.*)\.$"), "owner", ("from", "to")),
    (_quoted(r"^Owner recorded as (.*)\.$"), "owner", ("to",)),
    (_quoted(r"^Removed annotation that Bug was owned by (.*)\.$"), "noowner", ("from",)),
    (_quoted(r"^Marked Bug as done$"), "close", ()),
    (_quoted(r"^Bug reopened$"), "reopen", ()),
    (_quoted(r"^Bug archived\.$"), "archive", ()),
    (_quoted(r"^Bug unarchived\.$"), "unarchive", ()),
    (_quoted(rf"^(Summary|Outlook) (?:recorded from|replaced with) message bug ({_N}) message ({_N})$"),
     "summary", ("field", "message_bug", "message")),
    (_quoted(r"^Removed (summary|outlook)$"), "summary", ("field",)),
]
_MERGED = re.compile(rf"^Merged ({_N}(?: {_N})*) ?$")  # not "(\d+ ?)+": that backtracks exponentially
_UNMERGED = re.compile(rf"^Disconnected #({_N}) from all other report\(s\)\.$")
_CLONED = re.compile(rf"^Bug ({_N}) cloned as bugs? (.+)$")
_AFFECTS = re.compile(rf"^(Added|Removed) indication that ({_N}) affects (.+)$", re.I)

# Compound actions: clauses joined with "; ", the line ends with ".".
_CLAUSES: list[tuple[re.Pattern[str], str, str]] = [
    (re.compile(r"^added tag\(s\) (.+)$", re.I), "tags", "added"),
    (re.compile(r"^removed tag\(s\) (.+)$", re.I), "tags", "removed"),
    (re.compile(r"^no longer marked as found in versions (.+)$", re.I), "notfound", "versions"),
    (re.compile(r"^marked as found in versions (.+)$", re.I), "found", "versions"),
    (re.compile(r"^no longer marked as fixed in versions (.+)$", re.I), "notfixed", "versions"),
    (re.compile(r"^marked as fixed in versions (.+)$", re.I), "fixed", "versions"),
    (re.compile(r"^added blocking bug\(s\) of \d+: (.+)$", re.I), "block", "by"),
    (re.compile(r"^removed blocking bug\(s\) of \d+: (.+)$", re.I), "unblock", "by"),
]


def _changes_of(text: str, bug: int, verb: str | None) -> Iterable[dict[str, Any]]:
    for rx, action, names in _LINE_ACTIONS:
        m = rx.match(text)
        if m:
            change: dict[str, Any] = {"bug": bug, "action": action}
            change.update({"from": None, "to": None} if action in (
                "severity", "reassign", "retitle", "submitter", "forwarded", "owner") else {})
            for name, value in zip(names, m.groups(), strict=True):
                change[name] = int(value) if name in ("message_bug", "message") else value
            if action == "summary":
                change["field"] = change["field"].lower()
            yield change
            return
    if m := _MERGED.match(text):
        bugs = sorted(int(b) for b in m.group(1).split())
        # Reported against the first bug of the set, as "merge A B" reads.
        yield {"bug": bugs[0], "action": "forcemerge" if verb == "forcemerge" else "merge", "bugs": bugs}
        return
    if m := _UNMERGED.match(text):
        yield {"bug": int(m.group(1)), "action": "unmerge"}
        return
    if m := _CLONED.match(text):
        yield {"bug": int(m.group(1)), "action": "clone", "clones": _english_list(m.group(2))}
        return
    if m := _AFFECTS.match(text):
        packages = _english_list(m.group(3))
        yield {"bug": int(m.group(2)), "action": "affects",
               "added": packages if m.group(1).lower() == "added" else [],
               "removed": packages if m.group(1).lower() == "removed" else []}
        return
    reopened = text.endswith(" and reopened.")
    body = text[: -len(" and reopened.")] if reopened else text.rstrip(".")
    tags: dict[str, Any] | None = None
    for clause in body.split("; "):
        for rx, action, slot in _CLAUSES:
            m = rx.match(clause)
            if not m:
                continue
            values = _english_list(m.group(1))
            if action == "tags":
                if tags is None:
                    tags = {"bug": bug, "action": "tags", "added": [], "removed": []}
                tags[slot].extend(values)
            elif slot == "by":
                yield {"bug": bug, "action": action, "by": sorted(_numbers(values))}
            else:
                yield {"bug": bug, "action": action, "versions": values}
            break
    if tags is not None:
        yield tags
    if reopened:
        yield {"bug": bug, "action": "reopen"}
