"""ZeroMQ sockets with deliberate settings.  Only the bus uses these."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import zmq

from .errors import ConfigError

MAX_WIRE_BYTES = 4 << 20
_context: zmq.Context | None = None


def context() -> zmq.Context:
    global _context
    if _context is None or _context.closed:
        _context = zmq.Context.instance()
    return _context


def bind_pub(endpoint: str, hwm: int) -> zmq.Socket:
    sock = context().socket(zmq.PUB)
    # A bounded queue per subscriber: past it, PUB drops for that slow
    # subscriber, which then repairs the gap from the replay endpoint.
    sock.setsockopt(zmq.SNDHWM, hwm)
    sock.setsockopt(zmq.LINGER, 1000)
    bind(sock, endpoint)
    return sock


def bind(sock: zmq.Socket, endpoint: str) -> None:
    if endpoint.startswith("ipc://"):
        path = endpoint[len("ipc://"):]
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    try:
        sock.bind(endpoint)
    except zmq.ZMQError as exc:
        sock.close(0)
        raise ConfigError(f"cannot bind {endpoint}: {exc.strerror}") from None


def connect_sub(endpoints: list[str], topics: list[str], hwm: int) -> zmq.Socket:
    sock = context().socket(zmq.SUB)
    sock.setsockopt(zmq.RCVHWM, hwm)
    sock.setsockopt(zmq.LINGER, 0)
    # Reconnect by ourselves, quickly at first, backing off to 5 s.
    sock.setsockopt(zmq.RECONNECT_IVL, 100)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, 5000)
    # libzmq drops a frame larger than this and cuts the connection; it sits
    # well above the bus's own bound (envelope.MAX_FRAME_BYTES), which our
    # publishers never exceed and subscribers count as "oversized".
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_WIRE_BYTES)
    for t in topics or [""]:
        sock.setsockopt(zmq.SUBSCRIBE, t.encode())
    for e in endpoints:
        sock.connect(e)
    return sock


def replay_endpoint_for(publish: str) -> str:
    """The replay endpoint beside a PUB endpoint: the next TCP port
    (9940 -> 9941, as fedmsg's relay), or `<path>.replay` for ipc."""
    if publish.startswith("ipc://"):
        return publish + ".replay"
    parts = urlsplit(publish)
    if parts.scheme != "tcp" or parts.port is None:
        raise ConfigError(f"cannot derive a replay endpoint from {publish!r}; set [bus] replay")
    return f"tcp://{parts.hostname}:{parts.port + 1}"


def advertised(endpoint: str) -> str:
    """What others should connect to for an endpoint we bind (tcp://*:N)."""
    parts = urlsplit(endpoint)
    if parts.scheme == "tcp" and parts.hostname in ("*", "0.0.0.0", "::"):
        return f"tcp://{socket.getfqdn()}:{parts.port}"
    return endpoint
