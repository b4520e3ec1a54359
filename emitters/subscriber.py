"""The consumer side: discover, verify, dedupe, repair gaps, resume.

Every publisher stream numbers its messages (`seq_id`, inside the
signature).  The subscriber remembers the last number per stream; a jump
makes it fetch the missing range from the stream's replay endpoint and
deliver it first, so the consumer sees each stream in order and once.
What cannot be repaired now is retried, and the consumer is told with a
`Gap` (with the missing range) rather than silently missing it.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import zmq

from . import envelope as env
from . import metrics, replay, transport
from .checkpoint import Checkpoint
from .messages import Message, message_for
from .verify import Verdict, Verifier

log = logging.getLogger(__name__)

LOCAL_RELAY = "tcp://127.0.0.1:9940"


@dataclass
class Received:
    envelope: dict[str, Any]
    verdict: Verdict
    replayed: bool = False

    @property
    def topic(self) -> str:
        return self.envelope["topic"]

    @property
    def body(self) -> dict[str, Any]:
        return self.envelope["msg"]

    @property
    def msg_id(self) -> str:
        return self.envelope["msg_id"]

    @property
    def seq_id(self) -> int | None:
        return self.envelope.get("seq_id")

    @property
    def publisher(self) -> str | None:
        return self.envelope.get("publisher")

    @property
    def message(self) -> Message:
        return message_for(self.topic, self.body)

    @property
    def summary(self) -> str:
        try:
            return self.message.summary()
        except Exception:  # a consumer never dies on a producer's summary
            return self.topic


@dataclass
class Gap:
    """Messages `first`..`last` of `publisher` did not arrive.  `permanent`
    when they never can (pruned, outbox replaced); otherwise a retry goes on
    and the messages are delivered late if it succeeds."""

    publisher: str
    first: int
    last: int
    reason: str
    permanent: bool = False


@dataclass
class _Stream:
    last: int                       # highest seq_id received (delivered or known missing)
    replay: str | None = None
    missing: list[list[int]] = field(default_factory=list)  # [first, last] ranges still to repair
    acked: int = 0


class Subscriber:
    def __init__(
        self,
        endpoints: list[str] | None = None,
        *,
        verifier: Verifier,
        topics: list[str] | None = None,
        discovery: Any = None,
        checkpoint: Checkpoint | None = None,
        auto_ack: bool = True,
        hwm: int = 100_000,
        yield_rejected: bool = False,
        catchup_interval: float = 30.0,
        replay_timeout: float = 2.0,
        since: float | None = None,
    ) -> None:
        self.verifier = verifier
        self.topics = [t for t in (topics or [""])]
        self.discovery = discovery
        self.checkpoint = checkpoint
        self.auto_ack = auto_ack
        self.yield_rejected = yield_rejected
        self.catchup_interval = catchup_interval
        self.replay_timeout = replay_timeout
        self.counts: dict[str, int] = {}
        self._delivered = 0  # not yet added to the metric: it is counted once per burst
        self._ready: deque[Received | Gap] = deque()
        self._streams: dict[str, _Stream] = {}
        self._connected: set[str] = set()
        self._static = list(endpoints or [])
        self._sock = transport.connect_sub([], self.topics, hwm)
        self._next_discovery = 0.0
        self._next_catchup = 0.0
        self._last_live = 0.0
        # Replay endpoints of publishers not heard yet, asked at the next
        # catch-up for what they published since the start: announced ones
        # (True: asked until they answer) and, once, the relay's well-known
        # replay port beside a configured relay endpoint (9940 -> 9941).
        self._probe: dict[str, bool] = {}
        self._guessed: set[str] = set()
        # The start of the subscription: every message stamped in or after
        # this second is delivered, also from a publisher first seen later
        # (a slow joiner misses the first moments of a PUB socket).  A
        # checkpoint keeps the start of its first run.
        if checkpoint is not None and checkpoint.since is not None:
            self.since: float | None = checkpoint.since
        else:
            self.since = since if since is not None else time.time()
            if checkpoint is not None:
                checkpoint.since = self.since
                checkpoint.save(sync=True)
        if checkpoint:
            for name, st in checkpoint.streams.items():
                self._streams[name] = _Stream(last=int(st["last"]), replay=st.get("replay"),
                                              missing=[list(r) for r in st.get("missing", [])],
                                              acked=int(st["last"]))
        self._rediscover()

    # -- endpoints -----------------------------------------------------------

    def _rediscover(self) -> None:
        wanted = set(self._static)
        if self.discovery is not None:
            try:
                found = self.discovery.current()
                wanted |= {p.endpoint for p in found}
                known = {st.replay for st in self._streams.values()}
                self._probe.update({p.replay: True for p in found if p.replay and p.replay not in known})
            except Exception as exc:  # discovery trouble must not stop delivery
                log.warning("discovery failed: %s", exc)
                wanted |= self._connected
            self._next_discovery = time.monotonic() + self.discovery.refresh_interval
        else:
            self._next_discovery = float("inf")
        for e in sorted(wanted - self._connected - self._guessed):
            self._guessed.add(e)
            if urlsplit(e).scheme == "tcp" and e.endswith(":9940"):
                self._probe.setdefault(transport.replay_endpoint_for(e), False)
        for e in sorted(wanted - self._connected):
            log.info("connecting to %s", e)
            self._sock.connect(e)
        for e in sorted(self._connected - wanted):
            log.info("dropping %s (no longer announced)", e)
            try:
                self._sock.disconnect(e)
            except zmq.ZMQError:
                pass
        self._connected = wanted

    @property
    def endpoints(self) -> list[str]:
        return sorted(self._connected)

    # -- the consumer's interface --------------------------------------------

    def __iter__(self) -> Iterator[Received | Gap]:
        while True:
            item = self.receive(timeout=1.0)
            if item is not None:
                yield item

    def receive(self, timeout: float | None = None) -> Received | Gap | None:
        """The next item, or None after `timeout` seconds without one."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._ready:
            now = time.monotonic()
            if now >= self._next_discovery:
                self._rediscover()
            if now >= self._next_catchup:
                more = self._catch_up()
                self._next_catchup = time.monotonic() + (0 if more else self.catchup_interval)
                continue
            wait = min(self._next_discovery, self._next_catchup) - now
            if deadline is not None:
                if now >= deadline:
                    return None
                wait = min(wait, deadline - now)
            # At most a second per poll: a signal that lands between Python's
            # last check and the poll() call does not interrupt it, and its
            # handler (SIGTERM's clean stop) runs only when the poll returns.
            if self._sock.poll(max(1, int(min(wait, 1.0) * 1000)), zmq.POLLIN):
                self._last_live = time.monotonic()
                # Take what is waiting in one go: one poll per burst, not per
                # message; the burst's signatures are checked together.
                burst = []
                for _ in range(1000):
                    try:
                        frames = self._sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    envelope = self._parse(frames)
                    if envelope is not None:
                        burst.append(envelope)
                self.verifier.prepare(burst)
                for envelope in burst:
                    self._accept_safely(envelope, replayed=False)
        if self._delivered:
            metrics.inc("debpulse_received_total", self._delivered, help="verified messages delivered to the consumer")
            self._delivered = 0
        item = self._ready.popleft()
        if self.auto_ack:
            self.ack(item)
        return item

    def ack(self, item: Received | Gap) -> None:
        """The consumer is done with `item`: advance the checkpoint."""
        if self.checkpoint is None:
            return  # what is acknowledged matters only to a checkpoint
        if isinstance(item, Gap):
            st = self._streams.get(item.publisher)
            if st and item.permanent:
                st.acked = max(st.acked, item.last)
        elif item.publisher and item.seq_id:
            st = self._streams.get(item.publisher)
            if st:
                st.acked = max(st.acked, item.seq_id)
        self.checkpoint.streams = {
            name: {"last": st.acked, "replay": st.replay,
                   "missing": [r for r in st.missing if r[0] <= st.acked]}
            for name, st in self._streams.items()
        }
        self.checkpoint.save()

    def close(self) -> None:
        if self.checkpoint is not None:
            self.checkpoint.save(sync=True)
        self._sock.close(0)
        close_keyring = getattr(self.verifier.keyring, "close", None)
        if close_keyring is not None:
            close_keyring()  # its helper process, if it started one

    # -- receiving -------------------------------------------------------------

    def _count(self, reason: str) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        metrics.inc("debpulse_rejected_total", help="received messages rejected, by reason", reason=reason)

    def _parse(self, frames: list[bytes]) -> dict[str, Any] | None:
        try:
            return env.from_frames(frames)
        except env.MalformedFrame as exc:
            self._count(exc.reason)
            log.warning("dropped a malformed frame set: %s", exc)
            return None

    def _accept_safely(self, envelope: dict[str, Any], *, replayed: bool) -> None:
        """_accept, but nothing a hostile envelope raises stops the subscriber."""
        try:
            self._accept(envelope, replayed=replayed)
        except Exception as exc:
            self._count("malformed")
            log.warning("dropped %s: %s: %s", "a replayed envelope" if replayed else "a frame set",
                        type(exc).__name__, str(exc)[:200])

    def _accept(self, envelope: dict[str, Any], *, replayed: bool) -> None:
        stream, seq = envelope.get("publisher"), envelope.get("seq_id")
        st = self._streams.get(stream) if isinstance(stream, str) else None
        if st is not None and isinstance(seq, int) and seq <= st.last and not _in(st.missing, seq):
            # Only this frame is dropped, so trusting its unsigned claim costs nothing.
            self._count("already-delivered")
            return
        verdict = self.verifier.check(envelope, replayed=replayed)
        if not verdict.ok:
            self._count(verdict.reason)
            log.warning("rejected %s (%s): %s %s", str(envelope.get("msg_id"))[:80], str(envelope.get("topic"))[:200],
                        verdict.reason, verdict.detail)
            if self.yield_rejected:
                self._ready.append(Received(envelope, verdict, replayed))
            return
        if verdict.scope != env.SCOPE_ENVELOPE or not isinstance(stream, str) or not isinstance(seq, int):
            # The stream and its numbers are not under the signature (the
            # fedmsg scope signs msg alone; plain fedmsg has no numbers):
            # never let them stop delivery or announce a loss.  Such
            # messages are delivered as they come, deduplicated by the
            # verifier, with no repair.
            self._deliver(envelope, verdict, replayed)
            return
        if st is None:
            st = self._streams[stream] = _Stream(last=seq - 1, acked=seq - 1)
            if isinstance(envelope.get("replay"), str):
                st.replay = envelope["replay"]
                self._probe.pop(st.replay, None)
                if not replayed:
                    # Joined late: repair back to the start of the subscription.
                    first = self._first_since(st.replay, stream, seq)
                    st.last = st.acked = min(first, seq) - 1
        elif isinstance(envelope.get("replay"), str):
            st.replay = envelope["replay"]
        if seq <= st.last:  # a late repair of a missing range
            _remove(st.missing, seq)
            self._deliver(envelope, verdict, replayed)
            return
        if seq > st.last + 1:
            first, last = st.last + 1, seq - 1
            st.last = last
            self._repair(stream, st, first, last)
        st.last = seq
        self._deliver(envelope, verdict, replayed)

    def _first_since(self, replay_endpoint: str, stream: str, default: int) -> int:
        """The first seq_id `stream` published in or after the subscription's
        start second, asked of its replay endpoint; `default` if unknown."""
        if self.since is None:
            return default
        try:
            found = replay.request(replay_endpoint, {"status": True, "since": int(self.since)}, self.replay_timeout)
            status = found[0]["status"] if found else {}
        except (replay.ReplayError, KeyError, TypeError):
            log.warning("could not ask %s what %s published since the start; following it from now",
                        replay_endpoint, stream)
            return default
        first = status.get("first_seq_since") if isinstance(status, dict) else None
        if status.get("publisher") != stream or not isinstance(first, int) or isinstance(first, bool):
            return default
        if first < default:
            log.info("joined %s at %d; fetching %d..%d, published since the start", stream, default, first, default - 1)
        return first

    def _deliver(self, envelope: dict[str, Any], verdict: Verdict, replayed: bool) -> None:
        if replayed and not any(envelope["topic"].startswith(t) for t in self.topics):
            return  # a repair brings the whole stream; the SUB filter only the topics asked for
        self._delivered += 1
        self._ready.append(Received(envelope, verdict, replayed))

    # -- repairing -------------------------------------------------------------

    def _repair(self, stream: str, st: _Stream, first: int, last: int) -> None:
        """Fetch first..last from the stream's replay endpoint and deliver."""
        if st.replay is None:
            self._ready.append(Gap(stream, first, last, "no replay endpoint known", permanent=True))
            return
        log.info("gap in %s: %d..%d, asking %s", stream, first, last, st.replay)
        _add(st.missing, first, last)
        self._fetch(stream, st, first, last)

    def _fetch(self, stream: str, st: _Stream, first: int, last: int | None) -> None:
        lo = first
        while last is None or lo <= last:
            try:
                found = replay.request(st.replay or "", {"seq_id_range": [lo, last]}, self.replay_timeout)
            except replay.ReplayError as exc:
                if last is not None:
                    self._count("gap-unrepaired")
                    self._ready.append(Gap(stream, lo, last, str(exc)))
                return
            found = [e for e in found if e.get("publisher") == stream and isinstance(e.get("seq_id"), int)]
            if not found:
                break
            self.verifier.prepare(found)
            for e in found:
                self._accept_safely(e, replayed=True)
            lo = max(e["seq_id"] for e in found) + 1
        if last is not None and any(r[0] <= last and r[1] >= first for r in st.missing):
            self._report_lost(stream, st, first, last)

    def _report_lost(self, stream: str, st: _Stream, first: int, last: int) -> None:
        """The replay endpoint answered but lacks some of the range."""
        for r in [r for r in st.missing if r[0] <= last and r[1] >= first]:
            st.missing.remove(r)
            self._count("gap-permanent")
            self._ready.append(Gap(stream, r[0], r[1], "not in the publisher's outbox (pruned or replaced), "
                                   "or not readable", permanent=True))

    def _catch_up(self) -> bool:
        """Retry missing ranges, and ask each stream for anything after the
        last number we saw (loss at the end of a burst shows no gap).
        True when an answer was full, so that more may be waiting."""
        more = False
        for name, st in list(self._streams.items()):
            if not st.replay:
                continue
            for r in list(st.missing):
                self._fetch(name, st, r[0], r[1])
            if time.monotonic() - self._last_live < self.catchup_interval and self._last_live:
                continue  # messages are flowing: a loss would show as a gap
            try:
                found = replay.request(st.replay, {"seq_id_range": [st.last + 1, None]}, self.replay_timeout)
            except replay.ReplayError:
                continue
            found = [e for e in found if isinstance(e, dict) and e.get("publisher") == name]
            self.verifier.prepare(found)
            for e in found:
                self._accept_safely(e, replayed=True)
            more = more or len(found) >= replay.MAX_REPLY
        for endpoint, keep in sorted(self._probe.items()):
            more = self._probe_publisher(endpoint, keep) or more
        return more

    def _probe_publisher(self, endpoint: str, keep: bool) -> bool:
        """Ask a publisher not heard on the live socket yet for what it
        published since the start (it may have sent only before we joined)."""
        try:
            found = replay.request(endpoint, {"status": True, "since": int(self.since or time.time())},
                                   self.replay_timeout if keep else min(self.replay_timeout, 0.5))
            status = found[0]["status"] if found else {}
            name, first = status.get("publisher"), status.get("first_seq_since")
        except (replay.ReplayError, KeyError, TypeError, AttributeError):
            if not keep:
                self._probe.pop(endpoint, None)
            return False
        self._probe.pop(endpoint, None)
        if not isinstance(name, str) or name in self._streams or not isinstance(first, int):
            return False
        last_seq = status.get("last_seq")
        if not isinstance(last_seq, int) or first > last_seq:
            return False  # nothing since the start: the live socket will bring the first one
        st = self._streams[name] = _Stream(last=first - 1, replay=endpoint, acked=first - 1)
        self._fetch(name, st, first, None)
        return True

    def follow(self, replay_endpoint: str, after: int | None = None) -> str:
        """Follow a publisher known by its replay endpoint from message
        `after` + 1 (default: from its newest), whether or not the live
        socket has joined yet.  Returns the publisher's stream name."""
        found = replay.request(replay_endpoint, {"status": True}, self.replay_timeout)
        status = found[0]["status"] if found else {}
        name = status.get("publisher")
        if not name:
            raise replay.ReplayError(f"{replay_endpoint} did not name its publisher")
        if after is not None or name not in self._streams:
            last = status["last_seq"] if after is None else after
            self._streams[name] = _Stream(last=last, replay=replay_endpoint, acked=last)
        self._next_catchup = 0.0
        return name

    def catch_up(self) -> None:
        """Force a catch-up now (a consumer that was told of a reconnect)."""
        self._next_catchup = 0.0


def _in(ranges: list[list[int]], n: int) -> bool:
    return any(a <= n <= b for a, b in ranges)


def _add(ranges: list[list[int]], first: int, last: int) -> None:
    ranges.append([first, last])


def _remove(ranges: list[list[int]], n: int) -> None:
    for r in ranges:
        if r[0] <= n <= r[1]:
            ranges.remove(r)
            if r[0] < n:
                ranges.append([r[0], n - 1])
            if n < r[1]:
                ranges.append([n + 1, r[1]])
            ranges.sort()
            return
