"""Doubling waits between retries, capped, reset after a success.

Every loop that retries something that may come back (the relay, a
database, a broker) uses this, so they all behave alike.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    first: float = 0.5
    most: float = 30.0
    jitter: float = 0.0  # ± this fraction, so that many clients do not retry in step
    _next: float = field(default=0.0, init=False)

    def delay(self) -> float:
        """The wait before the next try: first, then doubling up to most."""
        self._next = self.first if not self._next else min(self.most, self._next * 2)
        if self.jitter:
            return self._next * random.uniform(1 - self.jitter, 1 + self.jitter)
        return self._next

    def reset(self) -> None:
        self._next = 0.0
