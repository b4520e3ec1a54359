"""The relay: holds the signing key for short-lived local publishers.

Clients (the git hook, debpulse-logger) send events over a local socket
whose file permissions decide who may publish; the relay checks them,
numbers, signs, stores and publishes them, and acknowledges once they are
in the outbox.  It drains the spool at start and every few seconds.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq

from . import metrics, transport
from .errors import SchemaError
from .event import Event
from .messages import message_type
from .publisher import Publisher
from .spool import Spool

log = logging.getLogger(__name__)
BATCH = 1000
SPOOL_EVERY = 2.0


def _event(item: Any) -> Event:
    if not isinstance(item, dict) or not isinstance(item.get("topic"), str) or not isinstance(item.get("body"), dict):
        raise SchemaError("an event needs a topic (string) and a body (object)")
    key = item.get("key")
    event = Event(item["topic"], item["body"], key if isinstance(key, str) else None, str(item.get("origin", "")))
    from .topics import check_relative

    try:
        check_relative(event.topic)
    except Exception as exc:
        raise SchemaError(str(exc)) from None
    message_type(event.topic).validate(event.body)
    return event


class Relay:
    def __init__(self, publisher: Publisher, listen: str, *, socket_mode: int = 0o660) -> None:
        self.publisher = publisher
        self.listen = listen
        self.spool = Spool(publisher.opts.spool_dir)
        self.rejected = self.spool.directory / "rejected"
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
        transaction, then acknowledge each."""
        requests: list[tuple[bytes, list[Event] | str]] = []
        while len(requests) < BATCH:
            try:
                frames = self._sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            ident, parts = frames[0], frames[1:]
            try:
                requests.append((ident, [_event(json.loads(p)) for p in parts]))
            except (ValueError, SchemaError) as exc:
                metrics.inc("debpulse_relay_refused_total", help="client requests refused by the relay")
                log.warning("refused a client request: %s", exc)
                requests.append((ident, str(exc)))
        events = [e for _, evs in requests if not isinstance(evs, str) for e in evs]
        new: list[bool] = []
        if events:
            self.publisher.publish_events(events, validated=True)
            new = self.publisher.last_new
        at = 0
        for ident, evs in requests:
            if isinstance(evs, str):
                answer: dict[str, Any] = {"ok": False, "error": evs}
            else:
                # "published": how many were new (a key seen before is not sent again).
                answer = {"ok": True, "count": len(evs), "published": sum(new[at:at + len(evs)])}
                at += len(evs)
            self._sock.send_multipart([ident, json.dumps(answer).encode()])

    def drain_spool(self) -> int:
        """Publish what short-lived clients spooled while no relay answered."""
        drained = 0
        for path in self.spool:
            try:
                event = _event(json.loads(path.read_text()))
            except (ValueError, SchemaError) as exc:
                self._reject(path, str(exc))
                continue
            except OSError:
                continue
            self.publisher.publish_events([event], validated=True)
            path.unlink()
            drained += 1
        if drained:
            metrics.inc("debpulse_spool_drained_total", drained, help="spooled events published by the relay")
            log.info("published %d spooled event(s)", drained)
        return drained

    def _reject(self, path: Path, reason: str) -> None:
        self.rejected.mkdir(parents=True, exist_ok=True)
        target = self.rejected / path.name
        os.rename(path, target)
        target.with_name(target.name + ".reason").write_text(" ".join(reason.split()) + "\n")
        metrics.inc("debpulse_spool_rejected_total", help="spooled events that could not be published")
        log.warning("spooled event %s rejected: %s", path.name, reason)

    def close(self) -> None:
        self._sock.close(0)
        if self.listen.startswith("ipc://"):
            Path(self.listen[len("ipc://"):]).unlink(missing_ok=True)
