"""The high-water mark of one (architecture, table) stream: pure logic.

wanna-build stamps rows with `now()`, the start of the writing database
transaction, and the tables have no key.  So a row can become visible long
after rows with later times (a long `--merge-v3` run commits minutes after it
started), many rows share one time, and identical rows can exist.

A mark is therefore two things:
- `settled`: every row with a time at or below it has been handled;
- `seen`: the rows handled above `settled`, as {time: {row digest: count}}.

A poll reads rows above `settled`, and `unseen()` returns those not counted
in `seen` (the n-th identical copy is new when only n-1 were seen).
`settle()` moves `settled` up to what can no longer change: the caller
passes min(what it has read completely, server clock - lookback), assuming
no writing transaction stays open longer than the lookback.  `seen`
therefore holds about one lookback's worth of rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Unseen:
    row: Sequence[Any]
    time: datetime
    digest: str
    occurrence: int  # 0 for the first copy of an identical row


@dataclass
class Mark:
    settled: datetime | None = None  # None: from the beginning of the table
    seen: dict[datetime, Counter[str]] = field(default_factory=dict)

    # -- persistence (a small JSON document) ---------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "settled": self.settled.isoformat() if self.settled else None,
            "seen": {t.isoformat(): dict(c) for t, c in sorted(self.seen.items())},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Mark:
        settled = data.get("settled")
        return cls(
            settled=datetime.fromisoformat(settled) if settled else None,
            seen={datetime.fromisoformat(t): Counter(c) for t, c in data.get("seen", {}).items()},
        )

    # -- queries ----------------------------------------------------------------

    @property
    def frontier(self) -> datetime | None:
        """The latest time handled."""
        return max(self.seen) if self.seen else self.settled

    def seen_count(self) -> int:
        return sum(sum(c.values()) for c in self.seen.values())

    def unseen(self, rows: Iterable[tuple[datetime, str, Sequence[Any]]]) -> list[Unseen]:
        """The rows (time, digest, row) not handled yet, in the given order."""
        fetched: Counter[tuple[datetime, str]] = Counter()
        out: list[Unseen] = []
        for time, digest, row in rows:
            if self.settled is not None and time <= self.settled:
                continue
            n = fetched[time, digest]
            fetched[time, digest] += 1
            already = self.seen.get(time, Counter())[digest]
            if n >= already:
                out.append(Unseen(row, time, digest, n))
        return out

    # -- updates ----------------------------------------------------------------

    def record(self, time: datetime, digest: str) -> None:
        """One row was handed over (emitted or quarantined)."""
        self.seen.setdefault(time, Counter())[digest] += 1

    def settle(self, upto: datetime) -> bool:
        """Everything at or below `upto` is final; forget it.  True if changed."""
        if self.settled is not None and upto <= self.settled:
            return False
        self.settled = upto
        for t in [t for t in self.seen if t <= upto]:
            del self.seen[t]
        return True
