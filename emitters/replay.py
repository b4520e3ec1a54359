"""The replay endpoint: answers fedmsg's query shapes from the outbox.

Request: one JSON frame, e.g. {"seq_id_range": [120, 180]} (fedmsg's
shapes: seq_id, seq_ids, seq_id_range, msg_id, msg_ids, time) or
{"status": true}.  Reply: one frame per envelope (canonical JSON), at most
MAX_REPLY of them; an empty answer is a single empty frame; an error is a
single {"error": "..."} frame; status is {"status": {...}}.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import zmq

from . import metrics, transport
from .envelope import MalformedFrame, canonical, check, loads
from .outbox import MAX_REPLY, Outbox

__all__ = ["MAX_REPLY", "ReplayServer", "ReplayError", "request"]

log = logging.getLogger(__name__)


class ReplayServer:
    def __init__(self, outbox: Outbox, endpoint: str, publisher: str = "") -> None:
        self.outbox = outbox
        self.publisher = publisher
        self.endpoint = endpoint
        self._stop = threading.Event()
        self._sock = transport.context().socket(zmq.REP)
        self._sock.setsockopt(zmq.LINGER, 0)
        transport.bind(self._sock, endpoint)
        self._thread = threading.Thread(target=self._serve, name="replay", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                if not poller.poll(200):
                    continue
                request = self._sock.recv()
                self._sock.send_multipart(self.answer(request))
        finally:
            self._sock.close(0)
            self.outbox.close()

    def answer(self, request: bytes) -> list[bytes]:
        try:
            query = loads(request, "query")
            if not isinstance(query, dict):
                raise ValueError("query must be a JSON object")
            if query.get("status"):
                status = {
                    "publisher": self.publisher,
                    "stream": self.outbox.stream,
                    "first_seq": self.outbox.first_seq(),
                    "last_seq": self.outbox.last_seq(),
                }
                if "since" in query:
                    # Where a subscriber that started at `since` begins.
                    status["first_seq_since"] = self.outbox.first_seq_since(float(query["since"]))
                return [canonical({"status": status})]
            found = self.outbox.query_raw(query)
        except (ValueError, TypeError, KeyError, OverflowError, MalformedFrame) as exc:
            return [canonical({"error": str(exc)[:200]})]
        metrics.inc("debpulse_replayed_total", len(found), help="envelopes sent by the replay endpoint")
        return found or [b""]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


class ReplayError(Exception):
    pass


def request(endpoint: str, query: dict[str, Any], timeout: float = 5.0) -> list[dict[str, Any]]:
    """Ask a replay endpoint; raise ReplayError when it does not answer."""
    sock = transport.context().socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, int(timeout * 1000))
    sock.setsockopt(zmq.SNDTIMEO, int(timeout * 1000))
    sock.setsockopt(zmq.MAXMSGSIZE, transport.MAX_WIRE_BYTES)
    try:
        sock.connect(endpoint)
        sock.send(canonical(query))
        frames = sock.recv_multipart()
    except zmq.Again:
        raise ReplayError(f"{endpoint} did not answer within {timeout:g}s") from None
    except zmq.ZMQError as exc:
        raise ReplayError(f"{endpoint}: {exc.strerror}") from None
    finally:
        sock.close(0)
    if frames == [b""]:
        return []
    out = []
    skipped = 0
    for f in frames:
        try:
            data = loads(f, "answer")
        except MalformedFrame:
            skipped += 1
            continue
        if isinstance(data, dict) and "error" in data and "topic" not in data:
            raise ReplayError(f"{endpoint}: {str(data['error'])[:200]}")
        if isinstance(data, dict) and "status" in data and "topic" not in data:
            if not isinstance(data["status"], dict):
                raise ReplayError(f"{endpoint}: malformed status")
            return [data]
        try:
            out.append(check(data))
        except MalformedFrame:
            skipped += 1
    if skipped:
        # One unreadable envelope must not block the repair of the others;
        # what stays missing is reported to the consumer as a gap.
        metrics.inc("debpulse_rejected_total", skipped, help="received messages rejected, by reason",
                    reason="malformed-replay")
        log.warning("%s: skipped %d malformed envelope(s) in a replay answer", endpoint, skipped)
    return out
