"""The pulse: messages per minute per service over the last hour and per
hour over the last week (pure: counting and the charts' inputs).

Counted by the message's own time (the envelope's timestamp, UTC), per
service (the topic's category).  The web loads the counts from the
archive at start and adds each row as it streams in, so the charts move
with the bus; a reload from the archive now and then puts right what came
in late (a backfill, a delayed publisher).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from . import charts

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
MINUTES = 60   # the last hour, per minute
HOURS = 168    # the last week, per hour

# SQL for the counts of a window, per bucket and service.
COUNT_SQL = ("SELECT date_trunc(%s, m.ts) AS bucket, c.name AS category, count(*) AS n FROM messages m"
             " JOIN categories c ON c.id = m.category_id WHERE m.ts >= %s AND m.ts < %s GROUP BY 1, 2")


def floor(ts: datetime, step: timedelta) -> datetime:
    ts = ts.astimezone(UTC)
    if step == MINUTE:
        return ts.replace(second=0, microsecond=0)
    return ts.replace(minute=0, second=0, microsecond=0)


def buckets(now: datetime, step: timedelta, n: int) -> list[datetime]:
    """The starts of the last `n` buckets, oldest first, the current one last."""
    last = floor(now, step)
    return [last - step * (n - 1 - i) for i in range(n)]


@dataclass
class Window:
    step: timedelta
    size: int
    counts: dict[datetime, dict[str, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))

    def add(self, ts: datetime, category: str, n: int = 1) -> None:
        self.counts[floor(ts, self.step)][category] += n

    def replace(self, rows: Iterable[tuple[datetime, str, int]]) -> None:
        self.counts = defaultdict(lambda: defaultdict(int))
        for bucket, category, n in rows:
            self.add(bucket, category, n)

    def trim(self, now: datetime) -> None:
        oldest = buckets(now, self.step, self.size)[0]
        for bucket in [b for b in self.counts if b < oldest]:
            del self.counts[bucket]

    def series(self, now: datetime) -> tuple[list[datetime], dict[str, list[int]]]:
        starts = buckets(now, self.step, self.size)
        services = sorted({c for b in starts for c in self.counts.get(b, {})},
                          key=lambda s: (s not in charts.COLOURS, list(charts.COLOURS).index(s)
                                         if s in charts.COLOURS else 0, s))
        return starts, {s: [self.counts.get(b, {}).get(s, 0) for b in starts] for s in services}

    def total(self, now: datetime) -> int:
        starts = set(buckets(now, self.step, self.size))
        return sum(sum(v.values()) for b, v in self.counts.items() if b in starts)


@dataclass
class Pulse:
    minutes: Window = field(default_factory=lambda: Window(MINUTE, MINUTES))
    hours: Window = field(default_factory=lambda: Window(HOUR, HOURS))

    def add(self, ts: datetime, category: str, now: datetime) -> bool:
        """Count one message; False when it is older than both windows."""
        counted = False
        for window in (self.minutes, self.hours):
            if floor(ts, window.step) >= buckets(now, window.step, window.size)[0]:
                window.add(ts, category)
                counted = True
        return counted

    def windows(self, now: datetime) -> dict[str, tuple[datetime, datetime]]:
        """What to load from the archive: each window's [start, end)."""
        return {name: (buckets(now, w.step, w.size)[0], floor(now, w.step) + w.step)
                for name, w in (("minute", self.minutes), ("hour", self.hours))}

    def minute_chart(self, now: datetime) -> str:
        starts, series = self.minutes.series(now)
        labels = [b.strftime("%H:%M") for b in starts]
        ticks = [lab if b.minute % 10 == 0 else "" for lab, b in zip(labels, starts, strict=True)]
        return charts.stacked_columns(labels, series, ticks=ticks, height=170,
                                      title=f"Messages per minute, the last hour to {labels[-1]} UTC "
                                            f"({self.minutes.total(now)} in all)")

    def hour_chart(self, now: datetime) -> str:
        starts, series = self.hours.series(now)
        labels = [b.strftime("%a %d %H:00") for b in starts]
        ticks = [b.strftime("%a %d") if b.hour == 12 else "" for b in starts]
        return charts.stacked_columns(labels, series, ticks=ticks, height=200,
                                      title=f"Messages per hour, the last week ({self.hours.total(now)} in all)")
