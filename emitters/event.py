"""What adapters produce: small frozen events, before any envelope exists."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    """One fact a legacy service told us about.

    `topic` is service-relative ("dak.package.accept"); the Emitter adds the
    "org.debian.<env>." prefix.  `key` is the idempotency key shared by every
    route that can report the same fact (an ACCEPTED mail and the queue/done
    file), so that it is published once.
    """

    topic: str
    body: Mapping[str, Any]
    key: str | None = None
    # Where the event came from, for logs only (a mail's path, a row's id).
    origin: str = field(default="", compare=False)
