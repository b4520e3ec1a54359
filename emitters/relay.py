"""The relay: holds the signing key for short-lived local publishers.

Clients (the git hook, debpulse-logger) send events over a local socket
whose file permissions decide who may publish; the relay checks them,
numbers, signs, stores and publishes them, and acknowledges once they are
in the outbox.  What subscribers could not take (too large, too deep, not
its topic's schema) is refused with the reason.  It drains the spool at
start, every few seconds, and before any newer event, so that a
producer's order holds across a relay outage.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import zmq

from . import envelope as env
from . import metrics, transport
from .errors import ConfigError, SchemaError
from .event import Event
from .messages import message_type
from .publisher import Publisher
from .spool import Spool
from .topics import check_relative

log = logging.getLogger(__name__)
BATCH = 1000
SPOOL_EVERY = 2.0


class Refused(Exception):
    """A submission the relay will not publish; `str()` is the one line the
    client gets back, `too_large` whether it is refused for its size or depth
    (the client then treats its input as bad, not its own code)."""

    def __init__(self, reason: str, *, too_large: bool = False) -> None:
        super().__init__(reason)
        self.too_large = too_large


def parse_submission(part: bytes) -> Event:
    """One submitted event (a JSON object: topic, body, key, origin) into an
    Event, or Refused with the reason.  Pure: what subscribers could not take
    (too large, too deep, not the topic's schema) is refused here, before it
    is signed, stored and replayed to everyone forever."""
    return read_submission(part)[0]


def read_submission(part: bytes) -> tuple[Event, bytes]:
    """parse_submission, with the body's canonical bytes, made once here
    and used again for the envelope."""
    if len(part) > env.MAX_FRAME_BYTES:
        raise Refused(f"the event is {len(part)} bytes, more than the bus takes ({env.MAX_FRAME_BYTES})",
                      too_large=True)
    try:
        item = env.loads(part, "the event")
    except env.MalformedFrame as exc:
        raise Refused(str(exc), too_large=exc.reason == "too-deep") from None
    if not isinstance(item, dict) or not isinstance(item.get("topic"), str) or not isinstance(item.get("body"), dict):
        raise Refused("an event needs a topic (string) and a body (object)")
    try:
        check_relative(item["topic"])
        body = env.body_bytes(item["body"])
    except ConfigError as exc:
        raise Refused(str(exc)) from None
    except env.MalformedFrame as exc:
        raise Refused(str(exc), too_large=exc.reason in ("oversized", "too-deep")) from None
    key = item.get("key")
    origin = item.get("origin")
    event = Event(item["topic"], item["body"], key if isinstance(key, str) else None,
                  origin if isinstance(origin, str) else "")
    try:
        message_type(event.topic).validate(event.body)
    except SchemaError as exc:
        raise Refused(str(exc)) from None
    return event, body


class Relay:
    def __init__(self, publisher: Publisher, listen: str, *, socket_mode: int = 0o660) -> None:
        self.publisher = publisher
        self.listen = listen
        self.spool = Spool(publisher.opts.spool_dir)
        self.rejected = self.spool.directory / "rejected"
        self._spool_seen: int | None = None
        self._sock = transport.context().socket(zmq.ROUTER)
        self._sock.setsockopt(zmq.LINGER, 0)
        if listen.startswith("ipc://"):
            path = Path(listen[len("ipc://"):])
            if path.exists():
                path.unlink()  # a stale socket from a killed relay
            transport.bind(self._sock, listen)
            os.chmod(path, socket_mode)
        else:
            transport.bind(self._sock, listen)

    def run(self, stop: threading.Event, periodic: list[tuple[float, Callable[[], None]]] | None = None) -> None:
        """Serve until `stop`; `periodic` jobs (interval, job) run between
        batches, such as refreshing the DNS announcement."""
        jobs = [(SPOOL_EVERY, self.drain_spool), *(periodic or [])]
        due = [0.0] * len(jobs)
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        while not stop.is_set():
            now = time.monotonic()
            for n, (every, job) in enumerate(jobs):
                if now >= due[n]:
                    due[n] = now + every
                    try:
                        job()
                    except Exception as exc:  # a failing side job must not stop publishing
                        log.warning("%s failed: %s", getattr(job, "__name__", "job"), exc)
            if poller.poll(200):
                self._serve_batch()

    def _serve_batch(self) -> None:
        """Take every waiting request (up to BATCH), store them in one
        transaction, acknowledge each, then send them on the bus."""
        requests: list[tuple[bytes, list[tuple[Event, bytes]] | Refused]] = []
        while len(requests) < BATCH:
            try:
                frames = self._sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            ident, parts = frames[0], frames[1:]
            try:
                requests.append((ident, [read_submission(p) for p in parts]))
            except Refused as exc:
                self._refuse(ident, requests, exc)
            except Exception as exc:  # whatever a submission raises, the relay goes on
                log.exception("unexpected error reading a client request")
                self._refuse(ident, requests, Refused(f"the relay could not read the request ({type(exc).__name__})"))
        # What producers spooled while no relay answered is older than what
        # they send now: publish it first, so that each producer's order holds.
        self._drain_if_spooled()
        events = [e for _, evs in requests if not isinstance(evs, Refused) for e in evs]
        stored = self.publisher.store([e for e, _ in events], validated=True,
                                      bodies=[b for _, b in events]) if events else []
        # Durable from here: acknowledge before the (slower) sending.
        new = [is_new for _, _, is_new in stored]
        at = 0
        for ident, evs in requests:
            if isinstance(evs, Refused):
                answer: dict[str, object] = {"ok": False, "error": str(evs), "too_large": evs.too_large}
            else:
                # "published": how many were new (a key seen before is not sent again).
                answer = {"ok": True, "count": len(evs), "published": sum(new[at:at + len(evs)])}
                at += len(evs)
            self._sock.send_multipart([ident, json.dumps(answer).encode()])
        if stored:
            self.publisher.send(stored)

    def _refuse(self, ident: bytes, requests: list[tuple[bytes, list[tuple[Event, bytes]] | Refused]],
                why: Refused) -> None:
        metrics.inc("debpulse_relay_refused_total", help="client requests refused by the relay")
        log.warning("refused a client request: %s", why)
        requests.append((ident, why))

    def _drain_if_spooled(self) -> None:
        """drain_spool when the spool directory changed since the last look
        (one stat per batch instead of a listing)."""
        try:
            mtime = os.stat(self.spool.directory).st_mtime_ns
        except OSError:
            return
        if mtime != self._spool_seen:
            self._spool_seen = mtime
            self.drain_spool()

    def drain_spool(self) -> int:
        """Publish what short-lived clients spooled while no relay answered,
        oldest first, in batches."""
        drained = 0
        while True:
            paths, events = [], []
            for path in self.spool:
                try:
                    events.append(parse_submission(path.read_bytes()))
                except Refused as exc:
                    self._reject(path, str(exc))
                    continue
                except OSError:
                    continue  # taken by a concurrent drain, or unreadable for now
                paths.append(path)
                if len(paths) >= BATCH:
                    break
            if not events:
                break
            self.publisher.publish_events(events, validated=True)
            for path in paths:
                path.unlink(missing_ok=True)
            drained += len(paths)
            if len(paths) < BATCH:
                break
        if drained:
            metrics.inc("debpulse_spool_drained_total", drained, help="spooled events published by the relay")
            log.info("published %d spooled event(s)", drained)
        return drained

    def _reject(self, path: Path, reason: str) -> None:
        self.rejected.mkdir(parents=True, exist_ok=True)
        target = self.rejected / path.name
        try:
            os.rename(path, target)
        except OSError:
            return  # taken by a concurrent drain
        target.with_name(target.name + ".reason").write_text(" ".join(reason.split()) + "\n")
        metrics.inc("debpulse_spool_rejected_total", help="spooled events that could not be published")
        log.warning("spooled event %s rejected: %s", path.name, reason)

    def close(self) -> None:
        self._sock.close(0)
        if self.listen.startswith("ipc://"):
            Path(self.listen[len("ipc://"):]).unlink(missing_ok=True)
