"""A real IRC server for the tests (ngircd from Debian, in the foreground,
on a free loopback port), a real IRC client that sits in a channel and
records what is said, and a TCP relay the test can cut to break the bot's
connection without touching the server."""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from testbus import free_port

CONF = """\
[Global]
Name = irc.debpulse.test
Info = debpulse test server
Listen = 127.0.0.1
Ports = {port}
MotdPhrase = "debpulse test server"
[Limits]
# The bot's own token buckets are under test, not ngircd's penalty delays.
MaxPenaltyTime = 0
PingTimeout = 300
[Options]
DNS = no
Ident = no
PAM = no
"""


class Ngircd:
    def __init__(self, base: Path) -> None:
        if shutil.which("ngircd") is None:
            raise RuntimeError("ngircd is not installed (deploy/packages.txt)")
        base.mkdir(parents=True, exist_ok=True)
        self.base = base
        self.port = free_port()
        self.conf = base / "ngircd.conf"
        self.conf.write_text(CONF.format(port=self.port))
        self.log = base / "ngircd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Ngircd:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(["ngircd", "--nodaemon", "--config", str(self.conf)], stdout=log,
                                         stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # its own word that it listens
            if self.proc.poll() is not None:
                raise RuntimeError(f"ngircd exited: {self.log.read_text()[-2000:]}")
            if re.search(r'Server "irc.debpulse.test" .*ready', self.log.read_text()) and \
                    f"listening on [127.0.0.1]:{self.port}" in self.log.read_text():
                return self
            time.sleep(0.02)
        raise RuntimeError("ngircd did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)
        self.proc = None


class IrcClient:
    """A plain IRC client: registers, joins, answers PINGs, and keeps every
    PRIVMSG and NOTICE it sees as (command, target, sender, text)."""

    def __init__(self, port: int, nick: str) -> None:
        self.nick = nick
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.heard: list[tuple[str, str, str, str]] = []
        self.raw: list[str] = []
        self.joined: set[str] = set()
        self.registered = threading.Event()
        self._lock = threading.Lock()
        self._closed = False
        self._send(f"NICK {nick}")
        self._send(f"USER {nick} 0 * :test reader")
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        if not self.registered.wait(20):
            raise RuntimeError(f"{nick} not registered: {self.raw[-5:]}")

    def _send(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\r\n")

    def _read(self) -> None:
        buf = b""
        self.sock.settimeout(None)
        while not self._closed:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            buf += data
            *lines, buf = buf.split(b"\r\n")
            for raw in lines:
                text = raw.decode("utf-8", "replace")
                with self._lock:
                    self.raw.append(text)
                prefix = ""
                if text.startswith(":"):
                    prefix, _, text = text[1:].partition(" ")
                command, _, rest = text.partition(" ")
                if command == "PING":
                    self._send(f"PONG {rest}")
                elif command == "001":
                    self.registered.set()
                elif command == "JOIN" and prefix.split("!")[0] == self.nick:
                    self.joined.add(rest.lstrip(":").lower())
                elif command in ("PRIVMSG", "NOTICE"):
                    target, _, msg = rest.partition(" ")
                    with self._lock:
                        self.heard.append((command, target, prefix.split("!")[0], msg[1:] if msg[:1] == ":" else msg))

    def join(self, channel: str) -> None:
        self._send(f"JOIN {channel}")
        deadline = time.monotonic() + 20
        while channel.lower() not in self.joined:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.nick} did not join {channel}")
            time.sleep(0.01)

    def said(self, target: str | None = None, sender: str | None = None) -> list[str]:
        """The texts heard, in order, to `target` and from `sender`."""
        with self._lock:
            return [t for _, tg, s, t in self.heard
                    if (target is None or tg.lower() == target.lower()) and (sender is None or s == sender)]

    def commands(self, target: str) -> list[str]:
        with self._lock:
            return [c for c, tg, _, _ in self.heard if tg.lower() == target.lower()]

    def names(self, channel: str) -> str:
        before = len(self.raw)
        self._send(f"NAMES {channel}")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with self._lock:
                for line in self.raw[before:]:
                    if " 353 " in line:
                        return line.rsplit(":", 1)[-1]
            time.sleep(0.01)
        return ""

    def close(self) -> None:
        self._closed = True
        try:
            self._send("QUIT :done")
        except OSError:
            pass
        self.sock.close()


class Cut:
    """A TCP relay from a local port to the server's; `cut()` closes every
    relayed connection and refuses new ones until `mend()`."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.port = free_port()
        self.listener = socket.create_server(("127.0.0.1", self.port))
        self.listener.settimeout(0.1)
        self.open = threading.Event()
        self.open.set()
        self.accepted = 0
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self.open.is_set():
                client.close()
                continue
            server = socket.create_connection(("127.0.0.1", self.target))
            with self._lock:
                self._pairs.append((client, server))
                self.accepted += 1
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        while True:
            try:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
            except OSError:
                break
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        self.open.clear()
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for a, b in pairs:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass

    def mend(self) -> None:
        self.open.set()

    def close(self) -> None:
        self._stop = True
        self.cut()
        self.listener.close()
