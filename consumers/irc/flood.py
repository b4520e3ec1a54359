"""Flood control (pure): token buckets, and a channel's queue that squashes
bursts into one line instead of queueing them for hours or dropping them.

Every message that enters a queue leaves it in a line that was sent: its
own, its group's squashed line, or at worst the backlog line that counts
it.  Nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from debpulse.consumers.common.facts import Facts

from . import lines


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up."""

    def __init__(self, rate: float, burst: int, now: float = 0.0) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs a positive rate and a burst of at least 1")
        self.rate, self.burst = rate, float(burst)
        self.tokens = float(burst)
        self.stamp = now

    def _fill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def ready(self, now: float) -> bool:
        self._fill(now)
        return self.tokens >= 1.0

    def take(self, now: float) -> bool:
        self._fill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def wait(self, now: float) -> float:
        """Seconds until a token is there."""
        self._fill(now)
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.rate


@dataclass
class Entry:
    """A message waiting in a channel's queue, or a line already made (put
    back after a lost connection)."""

    arrived: float
    done: Callable[[], None]          # called once the line holding it was confirmed
    facts: Facts | None = None
    text: str | None = None
    group: tuple[str, ...] = ()
    expect: int = 0                   # commits a branch push announces


@dataclass
class Outgoing:
    text: str
    done: list[Callable[[], None]]
    squashed: int = 1                 # messages the line stands for


@dataclass
class SquashPolicy:
    hold: float = 1.0                 # seconds a message waits for the rest of its burst
    threshold: int = 4                # this many of one group become one line
    max_delay: float = 60.0           # a backlog longer than this to send is squashed whole
    push_wait: float = 10.0           # most a push waits for the commits it announced
    colours: bool = False


@dataclass
class ChannelQueue:
    policy: SquashPolicy
    bucket: TokenBucket
    entries: list[Entry] = field(default_factory=list)

    def add(self, facts: Facts, done: Callable[[], None], now: float) -> None:
        self.entries.append(Entry(now, done, facts, group=lines.group_key(facts),
                                  expect=lines.expected_commits(facts)))

    def put_back(self, out: Outgoing, now: float) -> None:
        """A line sent but never confirmed (the connection broke): first again."""
        self.entries.insert(0, Entry(now - self.policy.hold, _all(out.done), text=out.text))

    def __len__(self) -> int:
        return len(self.entries)

    def _ready_at(self, head: Entry) -> float:
        """When the head's group may go: after `hold`, and for a push once
        the commits it announced are in (or `push_wait` has passed)."""
        if head.text is not None:
            return head.arrived
        at = head.arrived + self.policy.hold
        expect = max((e.expect for e in self.entries if e.group == head.group), default=0)
        if expect:
            got = sum(1 for e in self.entries if e.group == head.group and e.facts is not None
                      and e.facts.relative == "git.receive")
            if got < expect:
                return max(at, head.arrived + self.policy.push_wait)
        return at

    def next_time(self, now: float) -> float | None:
        """When `take` may next give a line (None: nothing waits)."""
        if not self.entries:
            return None
        return max(self._ready_at(self.entries[0]), now + self.bucket.wait(now))

    def take(self, now: float) -> Outgoing | None:
        """The next line, when the head is ready and a channel token is
        there (the caller checks the connection's bucket first)."""
        if not self.entries or self._ready_at(self.entries[0]) > now or not self.bucket.ready(now):
            return None
        self.bucket.take(now)
        try:
            return self._line(now)
        except Exception:  # a body the line could not be made of: said plainly, never lost
            head = self.entries.pop(0)
            text = head.text or (head.facts.relative if head.facts else "message")
            return Outgoing(text, [head.done])

    def _line(self, now: float) -> Outgoing:
        head = self.entries[0]
        if head.text is not None:
            self.entries.pop(0)
            return Outgoing(head.text, [head.done])
        colours = self.policy.colours
        budget = self.bucket.burst + self.bucket.rate * self.policy.max_delay
        groups = {e.group for e in self.entries if e.facts is not None}
        if len(groups) > budget:
            everything = [e for e in self.entries if e.facts is not None]
            self.entries = [e for e in self.entries if e.facts is None]
            return Outgoing(lines.backlog([e.facts for e in everything if e.facts], colours),
                            [e.done for e in everything], len(everything))
        members = [e for e in self.entries if e.group == head.group and e.facts is not None]
        if len(members) >= self.policy.threshold:
            self.entries = [e for e in self.entries if not (e.group == head.group and e.facts is not None)]
            return Outgoing(lines.squashed([e.facts for e in members if e.facts], colours),
                            [e.done for e in members], len(members))
        if head.expect and len(members) > 1:
            # A small push: its commit lines say it all, the first one stands for the push too.
            commit = members[1]
            self.entries.remove(head)
            self.entries.remove(commit)
            assert commit.facts is not None
            return Outgoing(lines.single(commit.facts, colours), [head.done, commit.done], 2)
        self.entries.pop(0)
        assert head.facts is not None
        return Outgoing(lines.single(head.facts, colours), [head.done])

    def drain(self) -> list[Callable[[], None]]:
        """Empty the queue (the channel was removed from the configuration)."""
        done = [e.done for e in self.entries]
        self.entries = []
        return done


def _all(callbacks: list[Callable[[], None]]) -> Callable[[], None]:
    def run() -> None:
        for c in callbacks:
            c()
    return run


def describe(out: Outgoing) -> dict[str, Any]:
    return {"text": out.text, "squashed": out.squashed}
