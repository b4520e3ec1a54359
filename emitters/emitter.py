"""The one interface adapters use: hand over an Event, durably.

Two implementations:
- `Publisher` (publisher.py) signs, numbers, writes the outbox and
  publishes on its own PUB socket; long-running adapters and the relay.
- `RelayClient` (relay_client.py) hands the event to the local relay and
  falls back to the spool; short-lived publishers such as the git hook.

`emit` returns only once the event is safe (in an outbox, acknowledged by
the relay, or in the spool): an adapter advances its position after that.
"""

from __future__ import annotations

import argparse
from typing import Protocol

from .config import Config
from .event import Event


class Emitter(Protocol):
    def emit(self, event: Event) -> None:
        """Hand `event` over durably or raise EmitError / SchemaError."""

    def close(self) -> None:
        ...


def open_emitter(args: argparse.Namespace, config: Config, *, name: str, relay_only: bool = False) -> Emitter:
    """The emitter the flags and the [bus] section ask for.

    --publish (or [bus] publish) binds a PUB socket and signs here, with
    --signing-key; otherwise events go to the local relay.  `name` names the
    publisher (state directory, `username`).  `relay_only`: short-lived
    publishers (the git hook) always hand over to the relay, whatever the
    host's [bus] publish says.
    """
    from .options import BusOptions

    opts = BusOptions.from_args(args, config, name=name)
    if opts.publish and not relay_only:
        from .cli import signals_held
        from .publisher import Publisher

        publisher = Publisher(opts)
        try:
            publisher.announce(config)  # a long-running direct publisher, as the relay, is found through DNS
        except BaseException:  # stopped while announcing: withdraw what may have been added
            with signals_held():
                publisher.close()
            raise
        return publisher
    from .relay_client import RelayClient

    return RelayClient(opts)
