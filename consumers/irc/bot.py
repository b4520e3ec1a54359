"""The bot's loop (I/O): messages from the Subscriber into the channels'
queues, lines out to the networks as the token buckets allow, the local
socket for private lines, and the configuration re-read when it changes.

One thread: the Subscriber is polled with a short timeout, then every
socket with select, so that no IRC connection waits on the bus for long.
"""

from __future__ import annotations

import logging
import select
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from debpulse.consumers.common.acks import AckQueue
from debpulse.consumers.common.facts import facts_of
from debpulse.emitters import metrics
from debpulse.emitters.subscriber import Gap, Received, Subscriber

from .client import Connection, Said
from .control import Client, ControlServer, Request
from .flood import ChannelQueue, Outgoing, TokenBucket
from .protocol import irc_lower
from .settings import ChannelSettings, IrcSettings, NetworkSettings

log = logging.getLogger("debpulse.irc")

TICK = 0.05  # longest the bus is polled before the sockets are looked at


@dataclass
class Private:
    client: Client
    request: Request


@dataclass
class Channel:
    settings: ChannelSettings
    queue: ChannelQueue


class Network:
    def __init__(self, settings: NetworkSettings) -> None:
        self.settings = settings
        self.conn = Connection(settings, on_disconnect=self._lost)
        self.channels: dict[str, Channel] = {}
        self.private: list[Private] = []
        self._turn = 0

    def _lost(self, lost: list[Said]) -> None:
        now = time.monotonic()
        for said in reversed(lost):
            channel = self.channels.get(irc_lower(said.target))
            if channel is not None:
                channel.queue.put_back(said.out, now)
            elif said.failed is not None:
                said.failed("the connection to the IRC server broke; try again")

    def configure(self, channels: list[ChannelSettings]) -> list[Callable[[], None]]:
        """Apply a (new) channel list; returns the callbacks of the messages
        that waited in removed channels (they are done: nobody wants them)."""
        now = time.monotonic()
        wanted = {c.folded: c for c in channels}
        dropped: list[Callable[[], None]] = []
        for folded in [f for f in self.channels if f not in wanted]:
            log.info("%s: leaving %s (removed from the configuration)", self.settings.name,
                     self.channels[folded].settings.name)
            dropped += self.channels.pop(folded).queue.drain()
            self.conn.leave(folded)
        for folded, c in wanted.items():
            if folded in self.channels:
                old = self.channels[folded]
                old.queue.policy = c.policy
                if (old.settings.rate, old.settings.burst) != (c.rate, c.burst):
                    old.queue.bucket = TokenBucket(c.rate, c.burst, now)
                old.settings = c
            else:
                self.channels[folded] = Channel(c, ChannelQueue(c.policy, TokenBucket(c.rate, c.burst, now)))
            self.conn.want(c.name, c.key)
        return dropped

    def step(self, now: float) -> int:
        """Say what the buckets allow: private lines first, then the
        channels in turn.  Returns the number of lines said."""
        conn = self.conn
        if not conn.up:
            return 0
        said = 0
        while self.private and conn.bucket.ready(now):
            p = self.private.pop(0)
            conn.bucket.take(now)
            client = p.client
            conn.say(p.request.to, Outgoing(p.request.text, [lambda c=client: c.answer(True)]),
                     notice=p.request.notice, failed=lambda error, c=client: c.answer(False, error))
            said += 1
        channels = list(self.channels.values())
        idle = 0
        while channels and idle < len(channels) and conn.bucket.ready(now):
            channel = channels[self._turn % len(channels)]
            self._turn += 1
            if not conn.in_channel(channel.settings.name):
                idle += 1
                continue
            out = channel.queue.take(now)
            if out is None:
                idle += 1
                continue
            idle = 0
            conn.bucket.take(now)
            conn.say(channel.settings.name, out, notice=channel.settings.notice)
            said += 1
            metrics.inc("debpulse_irc_lines_total", help="lines said in channels")
            if out.squashed > 1:
                metrics.inc("debpulse_irc_squashed_total", out.squashed, help="messages squashed into a line")
                log.info("%s %s: %d messages in one line", self.settings.name, channel.settings.name, out.squashed)
        conn.confirm_point()
        return said

    def next_time(self, now: float) -> float:
        if not self.conn.up:
            return self.conn.next_attempt if self.conn.sock is None else now + 1.0
        times = [t for c in self.channels.values() if (t := c.queue.next_time(now)) is not None]
        if self.private:
            times.append(now)
        if not times:
            return now + 1.0
        return max(min(times), now + self.conn.bucket.wait(now))


class Bot:
    def __init__(self, sub: Subscriber, settings: IrcSettings, control_path: Path | None = None,
                 reload: Callable[[], IrcSettings | None] | None = None) -> None:
        self.sub = sub
        self.acks = AckQueue(sub)
        self.networks: dict[str, Network] = {}
        self.settings = settings
        self.reload = reload
        self.stopping = False
        self.reload_requested = False
        self.received = 0
        self.control = ControlServer(control_path, settings.control_mode, self._on_private, self._on_gone) \
            if control_path else None
        self.apply(settings)

    # -- configuration --------------------------------------------------------------

    def apply(self, settings: IrcSettings) -> None:
        self.settings = settings
        for name in [n for n in self.networks if n not in settings.networks]:
            net = self.networks.pop(name)
            for done in net.configure([]):
                done()
            net.conn.quit("removed from the configuration")
            for p in net.private:
                p.client.answer(False, f"network {name} was removed")
        for name, ns in settings.networks.items():
            net = self.networks.get(name)
            if net is not None and net.settings != ns:  # host, nick, rates changed: a new connection
                net.conn.drop("configuration changed", time.monotonic())  # hands back what was unconfirmed
                net.conn = Connection(ns, channels=net.conn.channels, names=net.conn.names,
                                      on_disconnect=net._lost)
                net.settings = ns
            elif net is None:
                net = self.networks[name] = Network(ns)
            for done in net.configure([c for c in settings.channels if c.network == name]):
                done()

    # -- messages ---------------------------------------------------------------------

    def on_item(self, item: Received | Gap, now: float) -> None:
        self.received += 1
        if isinstance(item, Gap):
            if item.permanent:
                log.error("messages %d..%d of %s are lost and were never said: %s", item.first, item.last,
                          item.publisher, item.reason)
            self.acks.add(item)
            return
        if not item.verdict.ok:
            self.acks.add(item)
            return
        try:
            f = facts_of(item.envelope)
            targets = [(net, ch) for net in self.networks.values() for ch in net.channels.values()
                       if ch.settings.wants(f)]
        except Exception as exc:  # a producer's odd body never stops the bot
            log.error("%s (%s): not said, its body could not be read: %r", item.msg_id, item.topic, exc)
            self.acks.add(item)
            return
        ticket = self.acks.add(item, len(targets))
        for _, ch in targets:
            ch.queue.add(f, lambda t=ticket: self.acks.done(t), now)

    def _on_private(self, client: Client, request: Request) -> None:
        name = request.network or (next(iter(self.networks)) if len(self.networks) == 1 else None)
        if name is None or name not in self.networks:
            client.answer(False, f"say which network: {', '.join(self.networks) or 'none configured'}")
            return
        self.networks[name].private.append(Private(client, request))

    def _on_gone(self, client: Client) -> None:
        for net in self.networks.values():
            net.private = [p for p in net.private if p.client is not client]

    # -- the loop -----------------------------------------------------------------------

    def step(self) -> None:
        now = time.monotonic()
        soonest = min((n.next_time(now) for n in self.networks.values()), default=now + 1.0)
        item = self.sub.receive(timeout=max(0.001, min(TICK, soonest - now)))
        if item is not None:
            self.on_item(item, time.monotonic())
            for _ in range(1000):  # take a burst in one go
                more = self.sub.receive(timeout=0.001)
                if more is None:
                    break
                self.on_item(more, time.monotonic())
        self._sockets(0)
        now = time.monotonic()
        for net in self.networks.values():
            conn = net.conn
            if conn.sock is None and now >= conn.next_attempt:
                conn.connect(now)
            conn.tick(now)
            net.step(now)
            conn.flush()
        if self.reload_requested and self.reload is not None:
            self.reload_requested = False
            new = self.reload()
            if new is not None:
                self.apply(new)

    def _sockets(self, timeout: float) -> None:
        conns = [n.conn for n in self.networks.values() if n.conn.sock is not None]
        readers: list = [*conns]
        if self.control is not None:
            readers += [self.control, *self.control.clients]
        writers = [c for c in conns if c.wants_write()]
        if self.control is not None:
            writers += [c for c in self.control.clients if c.wbuf]
        try:
            readable, writable, _ = select.select(readers, writers, [], timeout)
        except (OSError, ValueError):
            return
        now = time.monotonic()
        for r in readable:
            if isinstance(r, Connection):
                r.read(now)
            elif r is self.control:
                self.control.accept()
            elif self.control is not None and isinstance(r, Client):
                self.control.read(r)
        for w in writable:
            w.flush()

    def run(self) -> None:
        while not self.stopping:
            self.step()

    def close(self, timeout: float = 5.0) -> None:
        """Wait a moment for the server to confirm what was said (so it is
        acknowledged and not said again), then quit.  What still waits in
        the queues was never said: the next start says it."""
        deadline = time.monotonic() + timeout
        for net in self.networks.values():
            net.conn.confirm_point()
        while time.monotonic() < deadline and any(n.conn.up and n.conn.unconfirmed()
                                                  for n in self.networks.values()):
            for net in self.networks.values():
                net.conn.flush()
            self._sockets(0.05)
        waiting = sum(len(c.queue) for n in self.networks.values() for c in n.channels.values())
        if waiting:
            log.info("stopping with %d message(s) not yet said: they are said after the next start", waiting)
        for net in self.networks.values():
            net.conn.quit("stopping")
        if self.control is not None:
            self.control.close()
        self.sub.close()
