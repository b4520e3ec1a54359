"""The direct publisher: checks, numbers, signs, stores, then sends.

Order matters: the envelope is in the outbox (committed) before it is
sent, so a message a subscriber could have seen can always be replayed,
and a publisher killed at any point loses nothing it acknowledged.
"""

from __future__ import annotations

import itertools
import logging
import socket
import time
from collections.abc import Sequence
from typing import Any

from . import envelope as env
from . import metrics, transport
from .config import Config
from .errors import SchemaError, TooLarge
from .event import Event
from .messages import message_type
from .options import BusOptions
from .outbox import Outbox
from .replay import ReplayServer
from .signing import Signer, open_signer
from .topics import full_topic

log = logging.getLogger(__name__)
_counter = itertools.count(1)  # fedmsg's `i`: per process


class Publisher:
    def __init__(self, opts: BusOptions, *, signer: Signer | None = None, bind: bool = True) -> None:
        self.opts = opts
        if signer is None and opts.scope != "none":
            if not opts.signing_key:
                from .errors import ConfigError

                raise ConfigError("publishing needs a signing key (--signing-key or [bus] signing_key)")
            signer = open_signer(opts.backend, opts.signing_key, opts.gnupg_home)
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
        # Of the events of the last send (publish_events), which were new
        # (False: their key was published before, nothing was sent).
        self.last_new: list[bool] = []
        self._announcement: Any = None  # announce.KeptAnnouncement

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

    # ------------------------------------------------------------------------

    def publish_events(self, events: Sequence[Event], *, validated: bool = False) -> list[dict[str, Any]]:
        """Store and send events in one outbox transaction; returns envelopes.
        An event whose key was already published is not published again.
        `validated`: the caller (the relay) has checked the bodies already."""
        stored = self.store(events, validated=validated)
        self.send(stored)
        return [envelope for envelope, _, _ in stored]

    def store(self, events: Sequence[Event], *, validated: bool = False) -> list[tuple[dict[str, Any], bytes, bool]]:
        """Number, sign and commit events to the outbox: from here on they
        are durable (the relay acknowledges at this point).  Returns
        (envelope, wire bytes, is new) per event, for `send`."""
        # Size and depth first (the builders check them), then the schema.
        items = [(e.key, self._builder(e)) for e in events]
        if not validated:
            for e in events:
                message_type(e.topic).validate(e.body)  # SchemaError: an adapter bug
        return self.outbox.append_many(items)

    def send(self, stored: Sequence[tuple[dict[str, Any], bytes, bool]]) -> None:
        self.last_new = [new for _, _, new in stored]
        debug = log.isEnabledFor(logging.DEBUG)
        for envelope, data, new in stored:
            if new:
                self._send(envelope, data)
                metrics.inc("debpulse_emitted_total", help="messages signed and published", topic=envelope["topic"])
                if debug:
                    log.debug("published %s #%s (%s)", envelope["topic"], envelope.get("seq_id"), envelope["msg_id"])
            else:
                metrics.inc("debpulse_duplicates_suppressed_total", help="events whose key was already published")
                if debug:
                    log.debug("not published again: %s (its key was published before)", envelope["msg_id"])
        self._maybe_prune()

    def _builder(self, event: Event):  # type: ignore[no-untyped-def]
        topic = full_topic(self.opts.environment, event.topic)
        now = time.time()
        msg_id = env.new_msg_id(event.key, now)
        try:
            msg_json = env.body_text(event.body)
        except env.MalformedFrame as exc:
            # Subscribers could not take it: refuse before anything is signed.
            if exc.reason in ("oversized", "too-deep"):
                raise TooLarge(f"{event.topic}: {exc}") from None
            raise SchemaError(f"{event.topic}: {exc}") from None

        def build(seq: int) -> tuple[dict[str, Any], bytes]:
            extra: dict[str, Any] = {"seq_id": seq, "publisher": self.stream}
            if self._replay_advertised:
                extra["replay"] = self._replay_advertised
            envelope = env.build(topic=topic, msg=event.body, msg_id=msg_id, i=next(_counter),
                                 username=self.opts.username, timestamp=now, extra=extra)
            if self.signer is not None:  # scope "none": unsigned, as fedmsg's sign_messages=False
                signature = self.signer.sign(env.signed_data(envelope, self.opts.scope, msg_json))
                env.attach_signature(envelope, signature, self.opts.scope)
            return envelope, env.encode(envelope, msg_json)

        return build

    def _send(self, envelope: dict[str, Any], data: bytes | None = None) -> None:
        if self._sock is not None:
            self._sock.send_multipart([envelope["topic"].encode(), data or env.canonical(envelope)])

    def _maybe_prune(self) -> None:
        now = time.monotonic()
        if now - self._last_prune < 60:
            return
        self._last_prune = now
        removed = self.outbox.prune(max_age=self.opts.retention_days * 86400,
                                    max_count=self.opts.retention_messages)
        if removed:
            log.info("pruned %d envelopes from the outbox", removed)
