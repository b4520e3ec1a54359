"""The bot's local socket: other programs on the host (debpulse-notify)
hand it private lines to say.  A Unix socket, permission-controlled like
the relay's (mode 0660, group debpulse), one JSON object per line each
way:

    -> {"to": "alice", "text": "hello 2.10-3 accepted", "network": "oftc", "notice": false}
    <- {"ok": true}                      once the server confirmed the line
    <- {"ok": false, "error": "no such nick"}

A client that goes away before its answer takes back the lines not yet
said, so that its retry does not say them twice.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .protocol import clean_text, valid_nick

log = logging.getLogger("debpulse.irc")

MAX_REQUEST = 8192
MAX_TEXT = 2000


def default_control_socket() -> Path:
    """In the state directory: the systemd unit may write there (the runtime
    directory /run/debpulse is the relay's)."""
    from debpulse.emitters import paths

    return paths.state_dir() / "irc" / "control.sock"


class ControlError(Exception):
    """The bot refused the line or could not be reached."""


@dataclass(frozen=True)
class Request:
    to: str
    text: str
    network: str | None
    notice: bool


def parse_request(data: bytes) -> Request:
    """One request line; ValueError says what is wrong with it."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("not a JSON object") from None
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    unknown = set(obj) - {"to", "text", "network", "notice"}
    if unknown:
        raise ValueError(f"unknown key {sorted(unknown)[0]!r}")
    to, text, network, notice = obj.get("to"), obj.get("text"), obj.get("network"), obj.get("notice", False)
    if not isinstance(to, str) or not valid_nick(to):
        raise ValueError("'to' must be a nick (private lines only)")
    if not isinstance(text, str) or not clean_text(text):
        raise ValueError("'text' must be a non-empty string")
    if network is not None and not isinstance(network, str):
        raise ValueError("'network' must be a string")
    if not isinstance(notice, bool):
        raise ValueError("'notice' must be true or false")
    return Request(to, clean_text(text)[:MAX_TEXT], network, notice)


@dataclass
class Client:
    sock: socket.socket
    rbuf: bytes = b""
    wbuf: bytearray = field(default_factory=bytearray)
    open: bool = True

    def fileno(self) -> int:
        return self.sock.fileno()

    def answer(self, ok: bool, error: str = "") -> None:
        if self.open:
            self.wbuf += (json.dumps({"ok": True} if ok else {"ok": False, "error": error}) + "\n").encode()
            self.flush()

    def flush(self) -> None:
        if not self.open or not self.wbuf:
            return
        try:
            n = self.sock.send(self.wbuf)
            del self.wbuf[:n]
        except BlockingIOError:
            pass
        except OSError:
            self.open = False


class ControlServer:
    def __init__(self, path: Path, mode: int, on_request: Callable[[Client, Request], None],
                 on_gone: Callable[[Client], None]) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() or path.is_symlink():
            if not stat.S_ISSOCK(path.lstat().st_mode):
                raise OSError(f"{path} exists and is not a socket")
            path.unlink()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o777 & ~mode)  # never a moment with wider permissions
        try:
            self.sock.bind(str(path))
        finally:
            os.umask(old)
        os.chmod(path, mode)
        self.sock.listen(16)
        self.sock.setblocking(False)
        self.clients: list[Client] = []
        self.on_request, self.on_gone = on_request, on_gone

    def fileno(self) -> int:
        return self.sock.fileno()

    def accept(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except BlockingIOError:
            return
        conn.setblocking(False)
        self.clients.append(Client(conn))

    def read(self, client: Client) -> None:
        try:
            data = client.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._gone(client)
            return
        client.rbuf += data
        *complete, client.rbuf = client.rbuf.split(b"\n")
        if len(client.rbuf) > MAX_REQUEST:
            client.answer(False, "request too long")
            self._gone(client)
            return
        for raw in complete:
            if not raw.strip():
                continue
            try:
                request = parse_request(raw)
            except ValueError as exc:
                client.answer(False, str(exc))
                continue
            self.on_request(client, request)

    def _gone(self, client: Client) -> None:
        client.open = False
        try:
            client.sock.close()
        except OSError:
            pass
        if client in self.clients:
            self.clients.remove(client)
        self.on_gone(client)

    def close(self) -> None:
        for c in list(self.clients):
            self._gone(c)
        self.sock.close()
        try:
            self.path.unlink()
        except OSError:
            pass


def say_privately(path: Path | str, to: str, text: str, *, network: str | None = None, notice: bool = False,
                  timeout: float = 30.0) -> None:
    """Ask the running bot to say `text` to `to`; returns once the IRC
    server confirmed it, raises ControlError otherwise."""
    request: dict[str, Any] = {"to": to, "text": text, "notice": notice}
    if network:
        request["network"] = network
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(path))
            s.sendall((json.dumps(request) + "\n").encode())
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    raise ControlError("the bot closed the connection without an answer")
                buf += chunk
    except OSError as exc:
        raise ControlError(f"debpulse-irc at {path}: {exc.strerror or exc}") from None
    try:
        answer = json.loads(buf)
    except ValueError:
        raise ControlError("the bot's answer is not JSON") from None
    if not answer.get("ok"):
        raise ControlError(str(answer.get("error", "refused")))
