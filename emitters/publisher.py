"""The direct publisher: checks, numbers, signs, stores, then sends.

Order matters: the envelope is in the outbox (committed) before it is
sent, so a message a subscriber could have seen can always be replayed,
and a publisher killed at any point loses nothing it acknowledged.
"""

from __future__ import annotations

import base64
import itertools
import logging
import socket
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import zmq

from . import envelope as env
from . import metrics, transport
from .config import Config
from .errors import SchemaError, TooLarge
from .event import Event
from .messages import message_type
from .options import BusOptions
from .outbox import Outbox
from .replay import ReplayServer
from .signing import SequoiaSigner, Signer, open_signer, sign_many
from .topics import full_topic

log = logging.getLogger(__name__)
_counter = itertools.count(1)  # fedmsg's `i`: per process


class _Fixed(NamedTuple):
    """Canonical JSON of the envelope fields that are the same for every
    message of a publisher, encoded once."""

    username: bytes
    publisher: bytes
    replay: bytes  # the whole `,"replay":...` member, or nothing


class Publisher:
    def __init__(self, opts: BusOptions, *, signer: Signer | None = None, bind: bool = True) -> None:
        self.opts = opts
        if signer is None and opts.scope != "none":
            if not opts.signing_key:
                from .errors import ConfigError

                raise ConfigError("publishing needs a signing key (--signing-key or [bus] signing_key)")
            signer = open_signer(opts.backend, opts.signing_key, opts.gnupg_home)
        if isinstance(signer, SequoiaSigner):
            # 2: a helper process signs half of each large batch (the relay's).
            signer.processes = opts.signing_processes
        self.signer: Signer | None = signer
        self.outbox = Outbox(opts.own_state / "outbox.sqlite", synchronous=opts.synchronous)
        self.stream = f"{opts.name}@{socket.gethostname()}/{self.outbox.stream[:12]}"
        self._sock = None
        self._replay: ReplayServer | None = None
        self.replay_endpoint: str | None = None
        if bind and opts.publish:
            self._sock = transport.bind_pub(opts.publish, opts.high_water_mark)
            self.replay_endpoint = opts.replay or transport.replay_endpoint_for(opts.publish)
            self._replay = ReplayServer(Outbox(self.outbox.path), self.replay_endpoint, self.stream)
        # What subscribers are told to ask for missed messages (a wildcard
        # bind becomes this host's name); worked out once, not per message.
        self._replay_advertised = transport.advertised(self.replay_endpoint) if self.replay_endpoint else None
        self._last_prune = 0.0
        self._announcement: Any = None  # announce.KeptAnnouncement
        # Of the events of the last send (publish_events), which were new
        # (False: their key was published before, nothing was sent).
        self.last_new: list[bool] = []
        self._topic_frames: dict[str, bytes] = {}
        self._fixed = _Fixed(
            env.canonical(opts.username), env.canonical(self.stream),
            b',"replay":' + env.canonical(self._replay_advertised) if self._replay_advertised else b"")

    # The Emitter interface -------------------------------------------------

    @property
    def last_published(self) -> int:
        """How many events of the last call went out as new messages."""
        return sum(self.last_new)

    def emit(self, event: Event) -> None:
        self.publish_events([event])

    def announce(self, config: Config) -> None:
        """Announce this publisher in DNS when the configuration has a
        [dns.announce] table, and keep it announced (retrying a failure,
        restoring removed records) until `close` withdraws it.  Waits for
        the first attempt; a failure is logged and retried in the
        background: the publisher still serves subscribers that know it."""
        from .announce import Announcer, KeptAnnouncement

        if not self.opts.publish:
            return
        announcer = Announcer.from_config(
            config, name=self.stream.split("/")[0], endpoint=self.opts.publish, replay=self.replay_endpoint,
            fingerprint=self.signer.fingerprint if self.signer else None,
        )
        if announcer is not None:
            self._announcement = KeptAnnouncement(announcer)
            self._announcement.start()

    def close(self) -> None:
        if self._announcement is not None:
            self._announcement.close()  # withdraws the records
            self._announcement = None
        if self._replay:
            self._replay.close()
        if self._sock is not None:
            self._sock.close()
        self.outbox.close()
        close_signer = getattr(self.signer, "close", None)
        if close_signer is not None:
            close_signer()  # its helper process, if it started one

    # ------------------------------------------------------------------------

    def publish_events(self, events: Sequence[Event], *, validated: bool = False) -> list[dict[str, Any]]:
        """Store and send events in one outbox transaction; returns envelopes.
        An event whose key was already published is not published again.
        `validated`: the caller (the relay) has checked the bodies already."""
        stored = self.store(events, validated=validated)
        self.send(stored)
        return [envelope for envelope, _, _ in stored]

    def store(self, events: Sequence[Event], *, validated: bool = False,
              bodies: Sequence[bytes] | None = None) -> list[tuple[dict[str, Any], bytes, bool]]:
        """Number, sign and commit events to the outbox: from here on they
        are durable (the relay acknowledges at this point).  Returns
        (envelope, wire bytes, is new) per event, for `send`.  `bodies`:
        the canonical bytes of each body, when the caller (the relay) has
        made and checked them already."""
        batch = self.prepare(events, validated=validated, bodies=bodies)
        return self.outbox.append_batch([e.key for e in events], batch.build)

    def prepare(self, events: Sequence[Event], *, validated: bool = False,
                bodies: Sequence[bytes] | None = None) -> _Batch:
        """Check every event (topic, size and depth, then the schema) and
        encode each body once; nothing is numbered or signed yet."""
        environment = self.opts.environment
        topics = [full_topic(environment, e.topic) for e in events]
        if bodies is None:
            bodies = [self._body(e) for e in events]
        if not validated:
            for e in events:
                message_type(e.topic).validate(e.body)  # SchemaError: an adapter bug
        return _Batch(self, events, topics, bodies, time.time())

    def send(self, stored: Sequence[tuple[dict[str, Any], bytes, bool]]) -> None:
        sock = self._sock
        sent: dict[str, int] = {}
        duplicates = 0
        self.last_new = [new for _, _, new in stored]
        debug = log.isEnabledFor(logging.DEBUG)
        for envelope, data, new in stored:
            if not new:
                duplicates += 1
                if debug:
                    log.debug("not published again: %s (its key was published before)", envelope["msg_id"])
                continue
            topic = envelope["topic"]
            if sock is not None:
                sock.send(self._frame_topic(topic), zmq.SNDMORE)
                sock.send(data)
            sent[topic] = sent.get(topic, 0) + 1
            if debug:
                log.debug("published %s #%s (%s)", topic, envelope.get("seq_id"), envelope["msg_id"])
        # Counted once per batch and topic, not once per message.
        for topic, n in sent.items():
            metrics.inc("debpulse_emitted_total", n, help="messages signed and published", topic=topic)
        if duplicates:
            metrics.inc("debpulse_duplicates_suppressed_total", duplicates,
                        help="events whose key was already published")
        self._maybe_prune()

    def _body(self, event: Event) -> bytes:
        try:
            return env.body_bytes(event.body)
        except env.MalformedFrame as exc:
            # Subscribers could not take it: refuse before anything is signed.
            if exc.reason in ("oversized", "too-deep"):
                raise TooLarge(f"{event.topic}: {exc}") from None
            raise SchemaError(f"{event.topic}: {exc}") from None

    def _frame_topic(self, topic: str) -> bytes:
        frame = self._topic_frames.get(topic)
        if frame is None:
            frame = self._topic_frames[topic] = topic.encode("utf-8")
        return frame

    def _maybe_prune(self) -> None:
        now = time.monotonic()
        if now - self._last_prune < 60:
            return
        self._last_prune = now
        removed = self.outbox.prune(max_age=self.opts.retention_days * 86400,
                                    max_count=self.opts.retention_messages)
        if removed:
            log.info("pruned %d envelopes from the outbox", removed)


class _Batch:
    """Checked events with their canonical bodies, built into envelopes
    once the outbox has numbered them.

    The canonical envelope is written from pre-encoded pieces, in the
    canonical key order (crypto, i, msg, msg_id, publisher, replay, seq_id,
    signature, timestamp, topic, username): the body's bytes are most of
    it, and the fixed strings are encoded once per publisher, not once per
    message.  The tests hold these bytes equal to `envelope.canonical`."""

    def __init__(self, publisher: Publisher, events: Sequence[Event], topics: list[str], bodies: Sequence[bytes],
                 now: float) -> None:
        self.publisher = publisher
        self.events = events
        self.topics = topics
        self.bodies = bodies
        self.now = now

    def build(self, numbered: Sequence[tuple[int, int]]) -> list[tuple[dict[str, Any], bytes]]:
        """(envelope, canonical bytes) for each (index in the batch, seq_id)."""
        pub = self.publisher
        opts = pub.opts
        fixed = pub._fixed
        timestamp = int(self.now)
        tail_of: dict[str, bytes] = {}
        envelopes: list[dict[str, Any]] = []
        heads: list[bytes] = []
        tails: list[bytes] = []
        for index, seq in numbered:
            event = self.events[index]
            topic = self.topics[index]
            msg_id = env.new_msg_id(event.key, self.now)
            i = next(_counter)
            tail = tail_of.get(topic)
            if tail is None:
                tail = tail_of[topic] = b',"timestamp":%d,"topic":%s,"username":%s}' % (
                    timestamp, env.canonical(topic), fixed.username)
            heads.append(b'{"i":%d,"msg":%s,"msg_id":"%s","publisher":%s%s,"seq_id":%d' % (
                i, self.bodies[index], msg_id.encode("ascii"), fixed.publisher, fixed.replay, seq))
            tails.append(tail)
            envelope = {"topic": topic, "msg": dict(event.body), "timestamp": timestamp, "msg_id": msg_id, "i": i,
                        "username": opts.username, "seq_id": seq, "publisher": pub.stream}
            if pub._replay_advertised:
                envelope["replay"] = pub._replay_advertised
            envelopes.append(envelope)
        if pub.signer is None:  # scope "none": unsigned, as fedmsg's sign_messages=False
            return [(e, h + t) for e, h, t in zip(envelopes, heads, tails, strict=True)]
        scope = opts.scope
        if scope == env.SCOPE_FEDMSG:
            data = [self.bodies[index] for index, _ in numbered]
        else:
            data = [h + t for h, t in zip(heads, tails, strict=True)]
        signatures = sign_many(pub.signer, data)
        crypto = env.CRYPTO_FOR_SCOPE[scope]
        opening = b'{"crypto":"%s",' % crypto.encode("ascii")
        out = []
        for e, h, t, signature in zip(envelopes, heads, tails, signatures, strict=True):
            b64 = base64.b64encode(signature)
            e["crypto"] = crypto
            e["signature"] = b64.decode("ascii")
            out.append((e, b"".join((opening, h[1:], b',"signature":"', b64, b'"', t))))
        return out
