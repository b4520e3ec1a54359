"""Hand events to the local relay, or to the spool: never hang, never lose.

The relay acknowledges once the events are in its outbox.  Without an
acknowledgement within the bound (default 1 s) the events are written to
the spool, which the relay drains when it starts.  A relay that answers
after the bound may have stored them too: every event carries a key, and
the relay publishes one message per key.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Sequence
from typing import Any

from . import metrics
from .errors import EmitError, SchemaError, TooLarge
from .event import Event
from .options import BusOptions
from .spool import Spool

log = logging.getLogger(__name__)


class RelayClient:
    def __init__(self, opts: BusOptions) -> None:
        self.opts = opts
        self.spool = Spool(opts.spool_dir)
        self.last_route = ""
        self.last_published: int | None = None  # new messages of the last call, as the relay said (None: spooled)
        self._sock: Any = None
        self._why = ""  # why the last call went to the spool, in words

    def emit(self, event: Event) -> None:
        self.emit_many([event])

    def emit_many(self, events: Sequence[Event]) -> str:
        """'relay' or 'spool', depending on where the events went."""
        if not events:
            return "relay"
        items = [
            {"topic": e.topic, "body": dict(e.body), "key": e.key or f"id:{uuid.uuid4()}", "origin": e.origin}
            for e in events
        ]
        answer = self._ask_relay(items)
        if answer is not None:
            if not answer.get("ok"):
                why = str(answer.get("error", "the relay refused the events"))
                raise TooLarge(why) if answer.get("too_large") else SchemaError(why)
            self.last_route = "relay"
            published = answer.get("published")
            self.last_published = published if isinstance(published, int) else None
            return "relay"
        try:
            for item in items:
                self.spool.put({**item, "spooled_at": time.time()})
        except OSError as exc:
            raise EmitError(f"no relay at {self.opts.relay} and cannot spool to {self.spool.directory}: "
                            f"{exc.strerror}") from None
        metrics.inc("debpulse_spooled_total", len(items), help="events written to the spool (no relay answered)")
        log.warning("%s; %d event(s) spooled in %s, which the relay publishes when it is back",
                    self._why, len(items), self.spool.directory)
        self.last_route = "spool"
        self.last_published = None
        return "spool"

    def close(self) -> None:
        self._drop()

    def _drop(self) -> None:
        if self._sock is not None:
            self._sock.close(0)
            self._sock = None

    def _ask_relay(self, items: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The relay's answer, or None when none came within the bound.

        One connection serves every call of a long-running adapter; after a
        call without an answer it is dropped (with whatever it still had
        queued), so a late answer can never be taken for the next one."""
        endpoint = self.opts.relay
        if self._sock is None and endpoint.startswith("ipc://") \
                and not _unix_socket_listening(endpoint[len("ipc://"):]):
            self._why = f"no relay is running at {endpoint}"
            return None  # go to the spool at once instead of waiting
        import zmq

        from . import transport

        deadline = time.monotonic() + self.opts.relay_timeout
        if self._sock is None:
            sock = transport.context().socket(zmq.DEALER)
            # Never queue for a peer that is not there, and drop what is
            # unsent on close: the spool holds it instead.
            sock.setsockopt(zmq.IMMEDIATE, 1)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(endpoint)
            self._sock = sock
        sock = self._sock
        try:
            if not sock.poll(0, zmq.POLLOUT) and endpoint.startswith("ipc://") \
                    and not _unix_socket_listening(endpoint[len("ipc://"):]):
                self._drop()  # the relay went away: the spool, at once
                self._why = f"the relay at {endpoint} went away"
                return None
            if not _wait(sock, zmq.POLLOUT, deadline):
                self._drop()
                self._why = f"no relay took the events at {endpoint} within {self.opts.relay_timeout:g}s"
                return None
            sock.send_multipart([json.dumps(i).encode() for i in items], zmq.NOBLOCK)
            if not _wait(sock, zmq.POLLIN, deadline):
                self._drop()
                self._why = (f"the relay at {endpoint} did not acknowledge within {self.opts.relay_timeout:g}s "
                             "(busy or stuck)")
                return None
            return json.loads(sock.recv())
        except (zmq.ZMQError, ValueError) as exc:
            self._drop()
            self._why = f"talking to the relay at {endpoint} failed ({exc})"
            return None


def _wait(sock: Any, event: int, deadline: float) -> bool:
    remaining = deadline - time.monotonic()
    return remaining > 0 and bool(sock.poll(int(remaining * 1000) + 1, event))


def _unix_socket_listening(path: str) -> bool:
    if not os.path.exists(path):
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(path)
        except OSError:
            return False
    return True
