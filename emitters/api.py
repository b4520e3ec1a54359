"""The Python API, as easy as fedmsg's:

    from debpulse.emitters.api import publish, subscribe
    publish(topic="package.note", modname="dak", msg={"source": "hello"})
    for message in subscribe(topics=["org.debian.dev.dak."]):
        print(message.summary)
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
from .subscriber import Gap, Received

__all__ = ["publish", "subscribe", "Received", "Gap"]


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
) -> Iterator[Received | Gap]:
    """Verified messages, in order per publisher, each once.  With
    `resume`, a checkpoint of that name makes a restart continue exactly
    where the last run stopped.  Gaps that could not be repaired are
    yielded as `Gap` items when `include_gaps` is set (and logged always)."""
    args = argparse.Namespace(endpoint=endpoints or [], srv=srv or [], keyring=keyring, policy=policy,
                              gnupg_home=None, state_dir=None)
    sub = open_subscriber(args, config or load_config(), topics=topics, resume=resume)
    try:
        for item in sub:
            if isinstance(item, Gap) and not include_gaps:
                continue
            yield item
    finally:
        sub.close()
