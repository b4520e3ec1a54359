"""The weekly overview's arithmetic (pure): ISO weeks, which message is
which activity, the counts, their change from the week before, the most
active people, and the maintainer changes seen in uploads.

Weeks are ISO 8601 weeks in UTC (Monday 00:00 to the next Monday), named
`2024-W18`.  A message counts by its own time; a person by the message
type's `agent` (who caused the event: the uploader, the buildd, the bug's
sender, the pusher).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from debpulse.emitters.messages import parse_address
from debpulse.emitters.topics import relative_topic

_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
TOP = 5


@dataclass(frozen=True)
class Activity:
    key: str
    label: str
    topics: tuple[str, ...]          # relative topics
    result: str | None = None        # a build's result, for build.complete

    @property
    def service(self) -> str:
        return self.topics[0].split(".", 1)[0]


BUILD_COMPLETE = "wannabuild.package.build.complete"
ACTIVITIES = (
    Activity("uploads", "Uploads", ("dak.package.accept",)),
    Activity("new", "NEW", ("dak.package.new",)),
    Activity("rejects", "Rejects", ("dak.package.reject",)),
    Activity("removals", "Removals", ("dak.package.remove",)),
    Activity("builds", "Builds", (BUILD_COMPLETE,)),
    Activity("build_failures", "Build failures", (BUILD_COMPLETE,), result="failed"),
    Activity("bugs_opened", "Bugs opened", ("debbugs.bug.report",)),
    Activity("bugs_closed", "Bugs closed", ("debbugs.bug.close",)),
    Activity("pushes", "Pushes", ("git.ref.create", "git.ref.update", "git.ref.delete", "git.tag.create")),
    Activity("commits", "Commits", ("git.receive",)),
)
TOPICS = tuple(sorted({t for a in ACTIVITIES for t in a.topics}))


class BadWeek(ValueError):
    pass


@dataclass(frozen=True)
class Week:
    year: int
    number: int

    @classmethod
    def parse(cls, text: str) -> Week:
        m = _WEEK.match(text)
        if not m:
            raise BadWeek(f"{text!r} is not a week: write it as YYYY-Www, such as 2024-W18")
        year, number = int(m.group(1)), int(m.group(2))
        try:
            date.fromisocalendar(year, number, 1)
        except ValueError:
            raise BadWeek(f"{year} has no week {number}") from None
        if year < 2 or year > 9998:
            raise BadWeek(f"{text!r} is out of range")
        return cls(year, number)

    @classmethod
    def of(cls, when: datetime | date) -> Week:
        day = when.astimezone(UTC).date() if isinstance(when, datetime) else when
        year, number, _ = day.isocalendar()
        return cls(year, number)

    @property
    def name(self) -> str:
        return f"{self.year:04d}-W{self.number:02d}"

    @property
    def monday(self) -> date:
        return date.fromisocalendar(self.year, self.number, 1)

    @property
    def start(self) -> datetime:
        return datetime.combine(self.monday, time(0), UTC)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=7)

    @property
    def days(self) -> list[date]:
        return [self.monday + timedelta(days=i) for i in range(7)]

    def shift(self, weeks: int) -> Week:
        return Week.of(self.monday + timedelta(weeks=weeks))

    def __str__(self) -> str:
        return self.name


def activities_of(topic: str, result: str | None) -> list[str]:
    """The activities a message counts in (a failed build is a build too)."""
    rel = relative_topic(topic)
    return [a.key for a in ACTIVITIES if rel in a.topics and (a.result is None or a.result == result)]


@dataclass
class WeekStats:
    counts: Counter[str] = field(default_factory=Counter)
    people: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    per_day: dict[str, Counter[date]] = field(default_factory=lambda: defaultdict(Counter))

    def top(self, activity: str, n: int = TOP) -> list[tuple[str, int]]:
        # Most first, then by name: the same order every time.
        return sorted(self.people[activity].items(), key=lambda kv: (-kv[1], kv[0]))[:n]


def aggregate(rows: Iterable[Mapping[str, Any]]) -> WeekStats:
    """Rows of (topic, result, agent, day, n), as WEEK_SQL groups them."""
    stats = WeekStats()
    for r in rows:
        for key in activities_of(r["topic"], r["result"]):
            stats.counts[key] += r["n"]
            stats.per_day[key][r["day"]] += r["n"]
            if r["agent"]:
                stats.people[key][r["agent"]] += r["n"]
    return stats


WEEK_SQL = ("SELECT t.name AS topic, CASE WHEN t.name LIKE %s THEN m.body->>'result' END AS result, m.agent,"
            " (m.ts AT TIME ZONE 'UTC')::date AS day, count(*) AS n FROM messages m"
            " JOIN topics t ON t.id = m.topic_id WHERE m.topic_id = ANY(%s) AND m.ts >= %s AND m.ts < %s"
            " GROUP BY 1, 2, 3, 4")
BUILD_LIKE = "%." + BUILD_COMPLETE

# A source's earlier uploads: how far back the maintainer it had is looked for.
LOOKBACK = timedelta(days=730)
ACCEPTS_SQL = (
    "WITH week AS (SELECT DISTINCT m.body->>'source' AS source FROM messages m"
    " WHERE m.topic_id = ANY(%(accept)s) AND m.ts >= %(start)s AND m.ts < %(end)s)"
    " SELECT m.ts, m.id, m.body->>'source' AS source, m.body->>'version' AS version,"
    " m.body->>'maintainer' AS maintainer, m.agent FROM messages m"
    " WHERE m.topic_id = ANY(%(accept)s) AND m.ts >= %(since)s AND m.ts < %(end)s"
    " AND m.body->>'source' IN (SELECT source FROM week) AND m.body->>'maintainer' IS NOT NULL"
    " ORDER BY m.ts, m.id")


@dataclass(frozen=True)
class MaintainerChange:
    source: str
    version: str
    before: str
    after: str
    by: str | None
    when: datetime


def _address(maintainer: str) -> str:
    name, mail = parse_address(maintainer)
    return (mail or maintainer).strip().lower()


def maintainer_changes(accepts: Iterable[Mapping[str, Any]], start: datetime) -> list[MaintainerChange]:
    """Uploads from `start` on whose Maintainer differs (by address) from
    the source's upload before: a package adopted, orphaned, moved to a
    team.  `accepts`: every accepted upload of those sources, oldest first."""
    last: dict[str, str] = {}
    changes = []
    for a in accepts:
        source, maintainer = a["source"], a["maintainer"]
        if not source or not maintainer:
            continue
        before = last.get(source)
        if a["ts"] >= start and before is not None and _address(before) != _address(maintainer):
            changes.append(MaintainerChange(source, a["version"] or "", before, maintainer, a["agent"], a["ts"]))
        last[source] = maintainer
    return changes


def change(value: int, previous: int) -> dict[str, Any]:
    """The change from the week before, as a number and a percentage (None
    when the week before had none)."""
    return {"previous": previous, "change": value - previous,
            "percent": round(100 * (value - previous) / previous) if previous else None}


def overview(week: Week, this: WeekStats, before: WeekStats, changes: list[MaintainerChange]) -> dict[str, Any]:
    """The weekly overview as JSON (what the HTML page shows)."""
    return {
        "week": week.name,
        "start": week.start.isoformat().replace("+00:00", "Z"),
        "end": week.end.isoformat().replace("+00:00", "Z"),
        "previous_week": week.shift(-1).name,
        "activities": [
            {"activity": a.key, "label": a.label, "service": a.service, "count": this.counts[a.key],
             **change(this.counts[a.key], before.counts[a.key]),
             "per_day": [this.per_day[a.key][d] for d in week.days],
             "top": [{"user": who, "count": n} for who, n in this.top(a.key)]}
            for a in ACTIVITIES
        ],
        "maintainer_changes": [
            {"source": c.source, "version": c.version, "from": c.before, "to": c.after, "by": c.by,
             "date": c.when.astimezone(UTC).isoformat().replace("+00:00", "Z")}
            for c in changes
        ],
    }
