"""Acknowledge in order: an item is acknowledged only when it and every
earlier item of the same publisher are done, so that a checkpoint never
passes a message that is still waiting (in a queue, a digest, a squashed
burst).  An item may have several parts (one per channel, per person):
it is done when all are."""

from __future__ import annotations

from collections import deque
from typing import Protocol

from debpulse.emitters.subscriber import Gap, Received


class Acker(Protocol):
    def ack(self, item: Received | Gap) -> None: ...


class Ticket:
    __slots__ = ("item", "remaining")

    def __init__(self, item: Received | Gap, parts: int) -> None:
        self.item = item
        self.remaining = parts


class AckQueue:
    def __init__(self, acker: Acker) -> None:
        self.acker = acker
        self._queues: dict[str | None, deque[Ticket]] = {}
        self.acked = 0

    def add(self, item: Received | Gap, parts: int = 0) -> Ticket:
        """Track `item`; with no parts it is done at once."""
        ticket = Ticket(item, parts)
        self._queues.setdefault(item.publisher, deque()).append(ticket)
        if parts == 0:
            self.release()
        return ticket

    def done(self, ticket: Ticket, parts: int = 1) -> None:
        ticket.remaining = max(0, ticket.remaining - parts)
        if ticket.remaining == 0:
            self.release()

    def release(self) -> None:
        # The checkpoint keeps the highest acknowledged number per stream: one
        # ack for the last done item of a run is the same as one per item.
        for name, q in list(self._queues.items()):
            last: Received | Gap | None = None
            while q and q[0].remaining == 0:
                item = q.popleft().item
                self.acked += 1
                if isinstance(item, Received) or item.permanent:  # a gap under repair moves nothing
                    last = item
            if last is not None:
                self.acker.ack(last)
            if not q:
                del self._queues[name]

    def pending(self) -> int:
        return sum(len(q) for q in self._queues.values())
