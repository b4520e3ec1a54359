"""Removals: dak's removals.822 log and the summary lines of its removal mails.

Sans-I/O.  Both formats are written by daklib/rm.py:remove().  The log is
appended to under a lock, one stanza per removal ended by an empty line;
`split_stanzas` hands back only complete stanzas so that a reader can
follow the file while dak writes it.
"""

from __future__ import annotations

import re
from typing import Any

from debian.deb822 import Deb822

from debpulse.emitters.errors import InputError
from debpulse.emitters.event import Event

from . import events
from .changes import bug_number

# "      hello |     2.10-3 | source, amd64" (the regex tracker.debian.org uses)
SUMMARY_LINE = re.compile(r"^\s*(\S+)\s*\|\s*(\S+)\s*\|\s*(.*)$")
REASON_START = "------------------- Reason -------------------"
REASON_END = "----------------------------------------------"


def split_suites(text: str) -> list[str]:
    """"stable, testing and unstable" (utils.join_with_commas_and) -> list."""
    return [s for s in re.split(r",\s*|\s+and\s+", text.strip()) if s]


def parse_summary(lines: list[str]) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """Summary lines -> removed sources and binaries.

    A line names one package at one version: `source` among its
    architectures is the source package of that name, the others are
    binaries of that name."""
    sources: list[dict[str, str]] = []
    binaries: list[dict[str, Any]] = []
    for line in lines:
        m = SUMMARY_LINE.match(line)
        if not m:
            continue
        name, version, arches = m[1], m[2], [a.strip() for a in m[3].split(",") if a.strip()]
        if "source" in arches:
            sources.append({"name": name, "version": version})
        binary_arches = [a for a in arches if a != "source"]
        if binary_arches:
            binaries.append({"name": name, "version": version, "architectures": binary_arches})
    return sources, binaries


def split_stanzas(buffer: bytes) -> list[tuple[bytes, int]]:
    """Complete stanzas at the start of `buffer`, each with the offset just
    after it (where a reader resumes once it is handled).

    Whatever follows the last empty line is a stanza still being written."""
    stanzas: list[tuple[bytes, int]] = []
    pos = 0
    while True:
        end = buffer.find(b"\n\n", pos)
        if end < 0:
            return stanzas
        chunk = buffer[pos:end + 1]
        pos = end + 2
        if chunk.strip():
            stanzas.append((chunk, pos))


def _bugs(text: str) -> list[int]:
    out = []
    for word in text.replace(",", " ").split():
        bug = bug_number(word)
        if bug is None:
            raise InputError(f"removals.822: {word!r} is not a bug number")
        out.append(bug)
    return out


def _split_versioned(item: str) -> tuple[str, str]:
    name, sep, version = item.partition("_")
    if not sep or not name or not version:
        raise InputError(f"removals.822: {item!r} is not name_version")
    return name, version


def parse_stanza(stanza: bytes, *, origin: str = "") -> Event:
    """One removals.822 stanza -> a dak.package.remove event."""
    try:
        text = stanza.decode("utf-8")
    except UnicodeDecodeError:
        text = stanza.decode("latin-1")
    try:
        fields = Deb822(text)
    except Exception as exc:  # python-debian raises assorted errors on garbage
        raise InputError(f"removals.822: unreadable stanza: {exc}") from None
    suites = split_suites(fields.get("Suite", ""))
    if not suites:
        raise InputError("removals.822: stanza without Suite")
    sources = []
    for item in fields.get("Sources", "").split():
        name, version = _split_versioned(item)
        sources.append({"name": name, "version": version})
    binaries = []
    # " hello_2.10-3 [amd64, i386]" one per line
    for line in fields.get("Binaries", "").splitlines():
        line = line.strip()
        if not line:
            continue
        m = re.fullmatch(r"(\S+)\s+\[([^\]]*)\]", line)
        if not m:
            raise InputError(f"removals.822: binary line {line!r} is not 'name_version [arch, ...]'")
        name, version = _split_versioned(m[1])
        arches = [a.strip() for a in m[2].split(",") if a.strip()]
        binaries.append({"name": name, "version": version, "architectures": arches})
    if not sources and not binaries:
        raise InputError("removals.822: stanza removes nothing (no Sources or Binaries)")
    reason = "\n".join(line.strip() for line in fields.get("Reason", "").splitlines())
    closes = _bugs(fields.get("Bug", "")) + _bugs(fields.get("Also-Bugs", "")) + _bugs(fields.get("Also-WNPP", ""))
    return events.removed(
        sources, binaries, suites, reason, closes, route="queue",
        ftpmaster=fields.get("Ftpmaster") or None, date=fields.get("Date") or None, origin=origin,
    )
