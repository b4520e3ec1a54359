"""Desktop notifications (pure): what one says, bursts collapsed into one
(notification servers choke on hundreds: fedmsg-notify#9), and noticing a
resume after suspend."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

from debpulse.consumers.common.facts import Facts

SHOWN = 5


@dataclass(frozen=True)
class Notice:
    summary: str
    body: str
    category: str
    count: int


def _text(f: Facts) -> str:
    # Notification servers may render a subset of HTML in the body (the spec's
    # "body-markup"): message text is escaped so that it shows as written.
    link = f' <a href="{escape(f.link, quote=True)}">{escape(f.link)}</a>' if f.link else ""
    return escape(" ".join(f.summary.split())) + link


def notice(members: Sequence[Facts]) -> Notice:
    if len(members) == 1:
        f = members[0]
        return Notice(f"debpulse: {f.service}", _text(f), f"debpulse.{f.service}", 1)
    services = sorted({f.service for f in members})
    lines = [_text(f) for f in members[:SHOWN]]
    if len(members) > SHOWN:
        lines.append(f"and {len(members) - SHOWN} more")
    return Notice(f"debpulse: {len(members)} messages ({', '.join(services)})", "\n".join(lines),
                  "debpulse.burst", len(members))


@dataclass
class Waiting:
    facts: Facts
    done: Callable[[], None]


@dataclass
class Burst:
    """Messages wait `hold` seconds for the rest of their burst; then up to
    `collapse` of them show one by one, more show as one notification."""

    hold: float = 2.0
    collapse: int = 3
    waiting: list[Waiting] = field(default_factory=list)
    since: float = 0.0

    def add(self, f: Facts, done: Callable[[], None], now: float) -> None:
        if not self.waiting:
            self.since = now
        self.waiting.append(Waiting(f, done))

    def next_time(self) -> float | None:
        return self.since + self.hold if self.waiting else None

    def take(self, now: float) -> list[Waiting]:
        """The burst, once its hold is over (empty before)."""
        if not self.waiting or now < self.since + self.hold:
            return []
        batch, self.waiting = self.waiting, []
        return batch

    def notices(self, batch: Sequence[Waiting]) -> list[tuple[Notice, list[Callable[[], None]]]]:
        if len(batch) > self.collapse:
            return [(notice([w.facts for w in batch]), [w.done for w in batch])]
        return [(notice([w.facts]), [w.done]) for w in batch]

    def restore(self, batch: list[Waiting], since: float) -> None:
        """Not shown (no notification server): first again, from `since`."""
        if batch:
            self.waiting = batch + self.waiting
            self.since = since


class SleepWatch:
    """The monotonic clock stops while the machine sleeps, CLOCK_BOOTTIME
    does not: a gap between their advances is a suspend (ZeroMQ
    connections may be stale, and what was published meanwhile must be
    fetched)."""

    def __init__(self, monotonic: float, boottime: float, threshold: float = 5.0) -> None:
        self.mono, self.boot, self.threshold = monotonic, boottime, threshold

    def slept(self, monotonic: float, boottime: float) -> float:
        """Seconds slept since the last call (0 when none worth noticing)."""
        gap = (boottime - self.boot) - (monotonic - self.mono)
        self.mono, self.boot = monotonic, boottime
        return gap if gap >= self.threshold else 0.0
