"""Time partitions of the archive's tables (pure: dates in, dates out).

Each partitioned table has one partition per period (a day, an ISO week
or a calendar month, UTC), made when the first message of that period
comes; retention drops whole partitions once their end is older than the
retention age, which costs nothing like a DELETE.  A partition never
overlaps another: after a change of period length, the new ones are cut
to fit between those that exist.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

INTERVALS = ("day", "week", "month")
Bounds = tuple[datetime, datetime]


def period(ts: datetime, interval: str) -> Bounds:
    """The period of `interval` that holds `ts`, [start, end) in UTC."""
    ts = ts.astimezone(UTC)
    day = ts.replace(hour=0, minute=0, second=0, microsecond=0)
    if interval == "day":
        return day, day + timedelta(days=1)
    if interval == "week":
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=7)
    if interval == "month":
        start = day.replace(day=1)
        end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
        return start, end
    raise ValueError(f"partition interval must be one of {', '.join(INTERVALS)}, not {interval!r}")


def covering(ts: datetime, existing: Iterable[Bounds]) -> Bounds | None:
    return next(((lo, hi) for lo, hi in existing if lo <= ts < hi), None)


def fit(ts: datetime, interval: str, existing: Iterable[Bounds]) -> Bounds:
    """The bounds of a new partition for `ts`: its period, cut so as not to
    overlap any existing partition.  `ts` must not be covered already."""
    lo, hi = period(ts, interval)
    for a, b in existing:
        if a <= ts < b:
            raise ValueError(f"{ts.isoformat()} is already covered by [{a.isoformat()}, {b.isoformat()})")
        if b <= ts:
            lo = max(lo, b)
        elif a > ts:
            hi = min(hi, a)
    return lo, hi


def name(table: str, bounds: Bounds) -> str:
    lo = bounds[0]
    suffix = f"{lo:%Y%m%d}" if lo.time() == datetime.min.time() else f"{lo:%Y%m%d_%H%M%S}"
    return f"{table}_p{suffix}"


def expired(existing: Iterable[Bounds], cutoff: datetime) -> list[Bounds]:
    """The partitions wholly older than `cutoff`, oldest first."""
    return sorted(b for b in existing if b[1] <= cutoff)


_BOUND = re.compile(r"FOR VALUES FROM \('([^']+)'\) TO \('([^']+)'\)")


def parse_bound(expr: str) -> Bounds | None:
    """PostgreSQL's text of a range partition bound (pg_get_expr of
    relpartbound, with the session's time zone UTC)."""
    m = _BOUND.fullmatch(expr.strip())
    if not m:
        return None
    return _parse_time(m[1]), _parse_time(m[2])


def _parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
