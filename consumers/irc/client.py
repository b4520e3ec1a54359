"""One IRC connection (I/O): registration, PING/PONG, JOIN, 433 nick in use,
reconnect with backoff, and confirmation of what was said.

A line written to a socket may die with the connection.  So after each
batch the bot sends `PING :dp<n>`; the server answers in order, and its
PONG confirms every line written before.  Only then are the messages
those lines stand for acknowledged; lines still unconfirmed when the
connection breaks are said again after the reconnect.
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from debpulse.emitters.backoff import Backoff

from .flood import Outgoing, TokenBucket
from .protocol import Line, ProtocolError, encode, fit, irc_lower, parse, room_for_text
from .settings import NetworkSettings

log = logging.getLogger("debpulse.irc")

MAX_BUFFER = 1 << 20  # a server line longer than this is not IRC: drop the connection


@dataclass
class Said:
    """A line written and not yet confirmed."""

    target: str
    out: Outgoing
    failed: Callable[[str], None] | None = None   # private lines: the nick was not there
    error: str | None = None


@dataclass
class Connection:
    settings: NetworkSettings
    channels: dict[str, str | None] = field(default_factory=dict)   # folded name -> key; the ones to be in
    names: dict[str, str] = field(default_factory=dict)             # folded -> as configured
    sock: socket.socket | None = None
    registered: bool = False
    nick: str = ""
    joined: set[str] = field(default_factory=set)
    next_attempt: float = 0.0
    next_join: float = 0.0
    on_disconnect: Callable[[list[Said]], None] | None = None

    def __post_init__(self) -> None:
        self.backoff = Backoff(first=1.0, most=self.settings.reconnect_max, jitter=0.2)
        self.bucket = TokenBucket(self.settings.rate, self.settings.burst, time.monotonic())
        self._rbuf = b""
        self._wbuf = bytearray()
        self._said: list[Said] = []
        self._pings: deque[tuple[str, list[Said]]] = deque()
        self._ping_n = 0
        self._last_rx = 0.0
        self._keepalive_sent = False

    # -- state ------------------------------------------------------------------

    @property
    def up(self) -> bool:
        return self.sock is not None and self.registered

    def fileno(self) -> int:
        return self.sock.fileno() if self.sock else -1

    def wants_write(self) -> bool:
        return bool(self._wbuf)

    def unconfirmed(self) -> int:
        return len(self._said) + sum(len(s) for _, s in self._pings)

    # -- connecting -----------------------------------------------------------------

    def connect(self, now: float) -> None:
        s = self.settings
        try:
            sock = socket.create_connection((s.host, s.port), timeout=10)
            if s.tls:
                context = ssl.create_default_context(cafile=s.ca)
                sock = context.wrap_socket(sock, server_hostname=s.host)
            sock.setblocking(False)
        except (OSError, ssl.SSLError) as exc:
            delay = self.backoff.delay()
            self.next_attempt = now + delay
            log.warning("%s: cannot connect to %s:%d (%s); next try in %.0f s", s.name, s.host, s.port, exc, delay)
            return
        self.sock, self.registered, self.nick, self.joined = sock, False, s.nick, set()
        self._rbuf, self._wbuf, self._last_rx, self._keepalive_sent = b"", bytearray(), now, False
        log.info("%s: connected to %s:%d", s.name, s.host, s.port)
        if s.password:
            self._send("PASS", s.password)
        self._send("NICK", self.nick)
        self._send("USER", s.nick[:10], "0", "*", s.realname)

    def drop(self, reason: str, now: float) -> None:
        """Close, and hand back what was said but not confirmed."""
        if self.sock is None:
            return
        try:
            self.sock.close()
        except OSError:
            pass
        self.sock, self.registered, self.joined = None, False, set()
        delay = self.backoff.delay()
        self.next_attempt = now + delay
        lost = self._said + [s for _, batch in self._pings for s in batch]
        self._said, self._pings = [], deque()
        log.warning("%s: connection lost (%s): %d line(s) to say again; reconnecting in %.1f s",
                    self.settings.name, reason, len(lost), delay)
        if self.on_disconnect is not None:
            self.on_disconnect(lost)

    def quit(self, message: str = "stopping") -> None:
        if self.sock is not None:
            try:
                self._send("QUIT", message)
                self.flush()
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    # -- channels ---------------------------------------------------------------------

    def want(self, name: str, key: str | None) -> None:
        folded = irc_lower(name)
        self.channels[folded], self.names[folded] = key, name
        if self.up and folded not in self.joined:
            self._join(folded)

    def leave(self, name: str) -> None:
        folded = irc_lower(name)
        self.channels.pop(folded, None)
        self.names.pop(folded, None)
        if self.up and folded in self.joined:
            self._send("PART", name, "removed from the configuration")
            self.joined.discard(folded)

    def _join(self, folded: str) -> None:
        key = self.channels.get(folded)
        name = self.names.get(folded, folded)
        self._send("JOIN", name, key) if key else self._send("JOIN", name)

    def in_channel(self, name: str) -> bool:
        return irc_lower(name) in self.joined

    # -- saying -----------------------------------------------------------------------

    def say(self, target: str, out: Outgoing, *, notice: bool = False,
            failed: Callable[[str], None] | None = None) -> None:
        command = "NOTICE" if notice else "PRIVMSG"
        self._send(command, target, fit(out.text, room_for_text(command, target)))
        self._said.append(Said(target, out, failed))

    def confirm_point(self) -> None:
        """Ask the server to confirm everything said since the last point."""
        if self._said and self.up:
            self._ping_n += 1
            token = f"dp{self._ping_n}"
            self._pings.append((token, self._said))
            self._said = []
            self._send("PING", token)

    # -- I/O --------------------------------------------------------------------------

    def _send(self, command: str, *params: str) -> None:
        self._wbuf += encode(command, *params)

    def flush(self) -> None:
        if self.sock is None or not self._wbuf:
            return
        try:
            n = self.sock.send(self._wbuf)
            del self._wbuf[:n]
        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            pass
        except OSError as exc:
            self.drop(f"write: {exc}", time.monotonic())

    def read(self, now: float) -> None:
        if self.sock is None:
            return
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except OSError as exc:
            self.drop(f"read: {exc}", now)
            return
        if not data:
            self.drop("closed by the server", now)
            return
        self._last_rx, self._keepalive_sent = now, False
        self._rbuf += data
        *complete, self._rbuf = self._rbuf.split(b"\n")
        if len(self._rbuf) > MAX_BUFFER:
            self.drop("a line without end from the server", now)
            return
        for raw in complete:
            raw = raw.rstrip(b"\r")
            if not raw:
                continue
            try:
                line = parse(raw)
            except ProtocolError as exc:
                log.warning("%s: ignored a malformed line from the server: %s", self.settings.name, exc)
                continue
            self._on_line(line, now)
            if self.sock is None:
                return

    def tick(self, now: float) -> None:
        """Keep-alive: a PING after a quiet spell, a drop after two."""
        if not self.sock:
            return
        quiet = now - self._last_rx
        if quiet > 2 * self.settings.ping_interval:
            self.drop(f"no answer from the server for {quiet:.0f} s", now)
        elif quiet > self.settings.ping_interval and not self._keepalive_sent:
            self._send("PING", "keepalive")
            self._keepalive_sent = True
        elif self.up and now >= self.next_join:
            missing = [c for c in self.channels if c not in self.joined]
            for folded in missing:
                self._join(folded)
            self.next_join = now + 60.0

    # -- what the server says ------------------------------------------------------------

    def _on_line(self, line: Line, now: float) -> None:
        cmd, p = line.command, line.params
        name = self.settings.name
        if cmd == "PING":
            self._send("PONG", *(p[-1:] or ["debpulse"]))
        elif cmd == "PONG" and p:
            self._confirmed(p[-1])
        elif cmd == "001":
            self.registered = True
            self.nick = p[0] if p else self.nick
            self.backoff.reset()
            log.info("%s: registered as %s", name, self.nick)
            for folded in self.channels:
                self._join(folded)
            self.next_join = now + 60.0
        elif cmd in ("433", "432", "436") and not self.registered:
            # Nick in use (or refused): try another until registered.
            self.nick = (self.nick + "_")[-30:] if cmd == "433" else f"dp{int(now * 1000) % 100000}"
            log.warning("%s: nick taken or refused (%s), trying %s", name, cmd, self.nick)
            self._send("NICK", self.nick)
        elif cmd == "JOIN" and p and line.nick == self.nick:
            folded = irc_lower(p[0])
            self.joined.add(folded)
            log.info("%s: joined %s", name, p[0])
            if folded not in self.channels:  # removed meanwhile
                self._send("PART", p[0], "removed from the configuration")
        elif cmd == "KICK" and len(p) >= 2 and p[1] == self.nick:
            self.joined.discard(irc_lower(p[0]))
            self.next_join = now + 30.0
            log.warning("%s: kicked from %s: %s", name, p[0], p[2] if len(p) > 2 else "")
        elif cmd == "NICK" and p and line.nick == self.nick:
            self.nick = p[0]
        elif cmd in ("401", "404") and len(p) >= 2:
            # No such nick / cannot send to channel: the line said just before failed.
            self._failed(p[1], p[-1])
        elif cmd in ("471", "473", "474", "475", "403", "405") and len(p) >= 2:
            log.warning("%s: cannot join %s: %s", name, p[1], p[-1])
        elif cmd == "ERROR":
            self.drop(f"server error: {p[-1] if p else ''}", now)

    def _confirmed(self, token: str) -> None:
        if not any(t == token for t, _ in self._pings):
            return
        while self._pings:
            t, batch = self._pings.popleft()
            for said in batch:
                if said.error is not None and said.failed is not None:
                    said.failed(said.error)
                else:
                    if said.error is not None:
                        log.warning("%s: %s did not take a line: %s", self.settings.name, said.target, said.error)
                    for done in said.out.done:
                        done()
            if t == token:
                return

    def _failed(self, target: str, reason: str) -> None:
        folded = irc_lower(target)
        for said in [*(s for _, b in self._pings for s in b), *self._said]:
            if irc_lower(said.target) == folded and said.error is None:
                said.error = reason
                return
