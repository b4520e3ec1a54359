"""What the package and person pages make of their rows (pure).

A package page: its uploads and removals, the last successful build on
each architecture and what wanna-build is building now, its bugs, its
git pushes.  A person page: the last time they did each kind of thing.
Rows are the archive's (topic, ts, body, ...), newest first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from debpulse.emitters.topics import relative_topic

STATE_UPDATE = "wannabuild.package.state.update"
BUILD_COMPLETE = "wannabuild.package.build.complete"

# The package page's sections: (key, heading, relative topics).
SECTIONS = (
    ("uploads", "Uploads and removals", ("dak.package.accept", "dak.package.new", "dak.package.reject",
                                         "dak.package.remove")),
    ("bugs", "Bugs", ("debbugs.bug.report", "debbugs.bug.followup", "debbugs.bug.close", "debbugs.bug.forward",
                      "debbugs.bug.control")),
    ("git", "Git pushes", ("git.receive", "git.ref.create", "git.ref.update", "git.ref.delete", "git.tag.create")),
)

# A person's kinds of activity, in the order the page lists them.
KINDS = (
    ("Upload", ("dak.package.accept",)),
    ("Upload to NEW", ("dak.package.new",)),
    ("Rejected upload", ("dak.package.reject",)),
    ("Removal", ("dak.package.remove",)),
    ("Build", (BUILD_COMPLETE,)),
    ("Build state change", (STATE_UPDATE,)),
    ("Bug report", ("debbugs.bug.report",)),
    ("Bug followup", ("debbugs.bug.followup",)),
    ("Bug closed", ("debbugs.bug.close",)),
    ("Bug forwarded", ("debbugs.bug.forward",)),
    ("Bug control", ("debbugs.bug.control",)),
    ("Commit", ("git.receive",)),
    ("Push", ("git.ref.create", "git.ref.update", "git.ref.delete")),
    ("Tag", ("git.tag.create",)),
)


def full_topics(known: Iterable[str], relatives: Iterable[str]) -> tuple[str, ...]:
    """The stored topics (any environment: org.debian.prod..., .dev...)
    whose relative part is one of `relatives`."""
    wanted = set(relatives)
    return tuple(sorted(t for t in known if relative_topic(t) in wanted))


@dataclass(frozen=True)
class ArchBuild:
    architecture: str
    version: str | None
    state: str | None       # wanna-build's state (state updates) or the build's result
    who: str | None
    row: Mapping[str, Any]


def last_successful_builds(rows: Iterable[Mapping[str, Any]]) -> list[ArchBuild]:
    """The newest successful build per architecture (build.complete rows, newest first)."""
    seen: dict[str, ArchBuild] = {}
    for r in rows:
        b = r["body"]
        arch = b.get("architecture")
        if relative_topic(r["topic"]) != BUILD_COMPLETE or b.get("result") != "successful" or not arch:
            continue
        if arch not in seen:
            seen[arch] = ArchBuild(arch, b.get("version"), "successful", b.get("builder"), r)
    return sorted(seen.values(), key=lambda a: a.architecture)


def current_states(rows: Iterable[Mapping[str, Any]]) -> list[ArchBuild]:
    """wanna-build's newest state per architecture (state update rows, newest first)."""
    seen: dict[str, ArchBuild] = {}
    for r in rows:
        b = r["body"]
        arch = b.get("architecture")
        if relative_topic(r["topic"]) != STATE_UPDATE or not arch or arch in seen:
            continue
        seen[arch] = ArchBuild(arch, b.get("version"), b.get("new_state"), b.get("user"), r)
    return sorted(seen.values(), key=lambda a: a.architecture)


def building_now(states: Iterable[ArchBuild]) -> list[ArchBuild]:
    return [s for s in states if s.state == "Building"]


def last_of_each_kind(rows: Iterable[Mapping[str, Any]]) -> list[tuple[str, Mapping[str, Any] | None]]:
    """For each kind of activity, the newest row of it (None if none)."""
    newest: dict[str, Mapping[str, Any]] = {}
    kind_of = {t: kind for kind, topics in KINDS for t in topics}
    for r in rows:
        kind = kind_of.get(relative_topic(r["topic"]))
        if kind is None:
            continue
        if kind not in newest or (r["ts"], r["id"]) > (newest[kind]["ts"], newest[kind]["id"]):
            newest[kind] = r
    return [(kind, newest.get(kind)) for kind, _ in KINDS]
