"""The Python API, as easy as fedmsg's:

    from debpulse.emitters.api import publish, subscribe
    publish(topic="package.note", modname="dak", msg={"source": "hello"})
    for message in subscribe(topics=["org.debian.dev.dak."], resume="my-importer"):
        print(message.summary)          # acknowledged when the loop goes round
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Mapping
from typing import Any

from .config import Config, load_config
from .consumer import open_subscriber
from .event import Event
from .options import BusOptions
from .relay_client import RelayClient
from .subscriber import Gap, Received, Subscriber

__all__ = ["publish", "subscribe", "Subscription", "Received", "Gap"]


def publish(
    topic: str,
    msg: Mapping[str, Any],
    *,
    modname: str | None = None,
    key: str | None = None,
    config: Config | None = None,
    relay: str | None = None,
) -> str:
    """Hand one message to the local relay (or its spool).  `topic` is
    service-relative ("dak.package.accept"), or fedmsg-style with `modname`
    ("package.accept", modname="dak").  Returns "relay" or "spool"."""
    full = f"{modname}.{topic}" if modname else topic
    args = argparse.Namespace(relay=relay)
    opts = BusOptions.from_args(args, config or load_config(), name=modname or "api")
    return RelayClient(opts).emit_many([Event(full, dict(msg), key, origin="api")])


class Subscription:
    """Verified messages, in order per publisher, each once while the
    process runs; at least once across a restart with `resume`.

    The checkpoint moves only when the consumer is done with a message:
    when it asks for the next one (the loop goes round), or when it calls
    `ack(item)`.  A consumer killed while handling a message gets it again
    after the restart, so it should make handling idempotent by the
    message's `msg_id` (the same fact always has the same msg_id).

        with subscribe(topics=[...], resume="my-importer") as messages:
            for message in messages:
                store(message.msg_id, message.body)   # idempotent on msg_id
    """

    def __init__(self, subscriber: Subscriber, include_gaps: bool) -> None:
        self._sub = subscriber
        self._include_gaps = include_gaps
        self._pending: Received | Gap | None = None

    def __iter__(self) -> Iterator[Received | Gap]:
        return self

    def __next__(self) -> Received | Gap:
        while True:
            if self._pending is not None:
                self.ack(self._pending)  # the loop went round: done with it
            item = self._sub.receive(timeout=1.0)
            if item is None:
                continue
            if isinstance(item, Gap) and not self._include_gaps:
                self._pending = item  # logged by the subscriber; acknowledged at once
                continue
            self._pending = item
            return item

    def receive(self, timeout: float | None = None) -> Received | Gap | None:
        """The next item, or None after `timeout` seconds; acknowledges the
        previous one as the loop does."""
        if self._pending is not None:
            self.ack(self._pending)
        item = self._sub.receive(timeout=timeout)
        self._pending = item
        return item

    def ack(self, item: Received | Gap) -> None:
        """Done with `item` (and everything before it from its publisher)."""
        self._sub.ack(item)
        if item is self._pending:
            self._pending = None

    def close(self) -> None:
        """Stop; the message being handled is not acknowledged."""
        self._sub.close()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def subscribe(
    topics: list[str] | None = None,
    *,
    endpoints: list[str] | None = None,
    srv: list[str] | None = None,
    keyring: str | None = None,
    policy: str | None = None,
    resume: str | None = None,
    config: Config | None = None,
    include_gaps: bool = False,
    since: float | None = None,
) -> Subscription:
    """Subscribe to the bus.  With `resume`, a checkpoint of that name makes
    a restart continue where the last run stopped (at least once: see
    `Subscription`).  `since` (seconds since the epoch, default now) is the
    start of the subscription: every message stamped from then on is
    delivered, also from a publisher first heard of later.  Gaps that could
    not be repaired are yielded as `Gap` items when `include_gaps` is set
    (and logged always)."""
    args = argparse.Namespace(endpoint=endpoints or [], srv=srv or [], keyring=keyring, policy=policy,
                              gnupg_home=None, state_dir=None)
    sub = open_subscriber(args, config or load_config(), topics=topics, resume=resume, auto_ack=False,
                          since=since)
    return Subscription(sub, include_gaps)
