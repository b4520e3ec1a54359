"""From the bus to an AMQP broker, in fedora-messaging's shape.

Two parts:

- `to_amqp` (pure): a verified `Received` becomes the routing key, body and
  properties a fedora-messaging consumer expects (routing key = topic, body
  = the message body as JSON, the `fedora_messaging_*`, `sent-at` and
  `priority` headers), plus the signed envelope so that a consumer can
  check the OpenPGP signature itself (`envelope_from_amqp`).
- `AmqpPublisher`: pika's asynchronous connection in its own thread, with
  publisher confirms.  A broker that goes away is reconnected with backoff
  and whatever it had not confirmed is sent again, so delivery to the
  broker is at least once; the caller advances its checkpoint only past
  confirmed messages.
"""

from __future__ import annotations

import datetime
import json
import logging
import re
import ssl
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from debpulse.emitters import envelope as env
from debpulse.emitters import metrics
from debpulse.emitters.backoff import Backoff
from debpulse.emitters.subscriber import Received

log = logging.getLogger(__name__)

# fedora-messaging's base schema: every consumer has it registered, so it
# validates the body (a JSON object) without a debpulse schema package.
SCHEMA_NAME = "base.message"
SEVERITY_INFO = 20  # fedora_messaging.message.INFO
ENVELOPE_HEADER = "debpulse_envelope"
NACK_PAUSE = 1.0  # seconds before sending again what the broker refused
# AMQP header values are short strings; names in a header key are kept to
# what a binding or a filter can match.
_HEADER_ITEM = re.compile(r"^[^\s]{1,200}$")


@dataclass(frozen=True)
class AmqpMessage:
    """What is published for one bus message (pika-independent)."""

    routing_key: str
    body: bytes
    headers: dict[str, Any]
    message_id: str
    timestamp: int
    priority: int = 0
    content_type: str = "application/json"
    content_encoding: str = "utf-8"
    delivery_mode: int = 2  # persistent: a durable queue keeps it across a broker restart


def to_amqp(item: Received, *, priority: int = 0) -> AmqpMessage:
    """The AMQP form of a verified bus message; ValueError for one that AMQP
    cannot carry (a routing key is at most 255 bytes)."""
    envelope = item.envelope
    if len(item.topic.encode()) > 255:
        raise ValueError(f"topic of {len(item.topic.encode())} bytes: AMQP routing keys end at 255")
    headers: dict[str, Any] = {
        "fedora_messaging_schema": SCHEMA_NAME,
        # When the event happened, not when it was bridged: a catch-up after
        # an outage keeps the original times.
        "sent-at": datetime.datetime.fromtimestamp(int(envelope["timestamp"]), datetime.UTC).isoformat(),
        "fedora_messaging_severity": SEVERITY_INFO,
        "priority": priority,
        # Everything but the body, which is the AMQP body: together they are
        # the envelope as signed (a header frame has a size limit, a body not).
        ENVELOPE_HEADER: json.dumps({k: v for k, v in envelope.items() if k != "msg"},
                                    sort_keys=True, separators=(",", ":")),
    }
    message = item.message
    for prefix, names in (("user", _safe(message.usernames)), ("rpm", _safe(message.packages))):
        # fedora-messaging's filter headers; "rpm" is its name for "package".
        for name in names:
            if isinstance(name, str) and _HEADER_ITEM.match(name):
                headers[f"fedora_messaging_{prefix}_{name}"] = True
    return AmqpMessage(
        routing_key=item.topic,
        body=env.canonical(item.body),
        headers=headers,
        message_id=item.msg_id,  # consumers de-duplicate at-least-once deliveries by it
        timestamp=int(envelope["timestamp"]),
        priority=priority,
    )


def _safe(method: Any) -> list[Any]:
    try:
        return list(method())
    except Exception:  # a producer's helper must not stop the bridge
        return []


def envelope_from_amqp(headers: Mapping[str, Any], body: bytes) -> dict[str, Any]:
    """The signed envelope back from a bridged message, for a consumer that
    verifies the signature itself (`debpulse.emitters.verify.Verifier`)."""
    raw = headers.get(ENVELOPE_HEADER)
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    if not isinstance(raw, str):
        raise env.MalformedFrame("missing-keys", f"no {ENVELOPE_HEADER} header")
    try:
        envelope = json.loads(raw)
        envelope["msg"] = json.loads(body)
    except (ValueError, TypeError):
        raise env.MalformedFrame("not-json") from None
    return env.check(envelope)


# -- publishing with confirms -------------------------------------------------


@dataclass
class Ticket:
    """One message handed to the publisher; `confirmed` once the broker said so."""

    message: AmqpMessage
    confirmed: bool = False
    attempts: int = 0


def failure_reason(error: BaseException) -> str:
    """One line for why a connection failed.  pika wraps the cause (an
    OSError, a refused login) in workflow exceptions whose own text is
    empty: unwrap them down to it."""
    seen: set[int] = set()
    while id(error) not in seen:
        seen.add(id(error))
        inner = getattr(error, "exception", None)  # AMQPConnectorPhaseErrorBase
        if inner is None and getattr(error, "exceptions", None):  # AMQPConnectionWorkflowFailed
            inner = error.exceptions[-1]  # type: ignore[attr-defined]
        if inner is None and error.args and isinstance(error.args[0], BaseException):  # AMQPConnectionError
            inner = error.args[0]
        if not isinstance(inner, BaseException):
            break
        error = inner
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    text = " ".join(str(error).split())
    return text or type(error).__name__


def connection_parameters(
    urls: list[str],
    *,
    username: str | None = None,
    password: str | None = None,
    ca: str | None = None,
    cert: str | None = None,
    key: str | None = None,
    server_hostname: str | None = None,
    heartbeat: int | None = None,
) -> list[Any]:
    """pika parameters for each URL (several: the nodes of a cluster, tried in turn)."""
    import pika

    out = []
    for url in urls:
        params = pika.URLParameters(url)
        if username is not None:
            params.credentials = pika.PlainCredentials(username, password or "")
        if ca or cert or url.startswith("amqps:"):
            context = ssl.create_default_context(cafile=ca)
            if cert:
                context.load_cert_chain(cert, key)
            params.ssl_options = pika.SSLOptions(context, server_hostname or params.host)
        if heartbeat is not None:
            params.heartbeat = heartbeat
        params.connection_attempts = 1
        params.blocked_connection_timeout = 60
        out.append(params)
    return out


class AmqpPublisher:
    """Publish to `exchange` with confirms, from a thread of its own.

    `publish` queues a message and returns its Ticket at once; `wait`
    blocks until a ticket is confirmed.  Messages are sent in the order they
    were queued, again after every reconnection until confirmed.
    """

    def __init__(self, parameters: list[Any], exchange: str = "amq.topic", *,
                 backoff: Backoff | None = None, declare_exchange: bool | None = None) -> None:
        if not parameters:
            raise ValueError("no broker to connect to")
        self.parameters = parameters
        self.exchange = exchange
        # amq.* exchanges exist on every broker and may not be declared.
        self.declare_exchange = not exchange.startswith("amq.") if declare_exchange is None else declare_exchange
        self.backoff = backoff or Backoff(jitter=0.2)  # nodes of a cluster are not hit in step
        self.connected = threading.Event()
        self.connections = 0
        self._cond = threading.Condition()
        self._unsent: deque[Ticket] = deque()       # in order, not yet on the current channel
        self._outstanding: dict[int, Ticket] = {}    # delivery tag -> ticket, on the current channel
        self._tag = 0
        self._send_scheduled = False
        self._connection: Any = None
        self._channel: Any = None
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="amqp-publisher", daemon=True)
        self._thread.start()

    # -- the caller's side -----------------------------------------------------

    def publish(self, message: AmqpMessage, *, flush: bool = True) -> Ticket:
        """Queue `message`; with flush=False it waits for the next `flush`
        (a burst then costs one wake-up of the I/O thread, not one each)."""
        ticket = Ticket(message)
        with self._cond:
            self._unsent.append(ticket)
        if flush:
            self.flush()
        return ticket

    def flush(self) -> None:
        with self._cond:
            connection = self._connection
            wake = connection is not None and bool(self._unsent) and not self._send_scheduled
            if wake:
                self._send_scheduled = True
        if wake:
            try:
                connection.ioloop.add_callback_threadsafe(self._send)
            except Exception:  # the loop is closing; the reconnection sends it
                with self._cond:
                    self._send_scheduled = False

    def wait(self, ticket: Ticket, timeout: float | None = None) -> bool:
        """True once `ticket` is confirmed; False after `timeout` seconds."""
        with self._cond:
            return self._cond.wait_for(lambda: ticket.confirmed, timeout)

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._unsent) + len(self._outstanding)

    def close(self, timeout: float = 5.0) -> None:
        self._stopping = True
        connection = self._connection
        if connection is not None:
            try:
                connection.ioloop.add_callback_threadsafe(self._shutdown)
            except Exception:
                pass
        self._thread.join(timeout)

    # -- the I/O thread --------------------------------------------------------

    def _run(self) -> None:
        import pika

        turn = 0
        while not self._stopping:
            params = self.parameters[turn % len(self.parameters)]
            turn += 1
            try:
                connection = pika.SelectConnection(
                    params, on_open_callback=self._on_open, on_open_error_callback=self._on_open_error,
                    on_close_callback=self._on_closed)
            except Exception as exc:
                log.warning("cannot connect to %s:%s: %s", params.host, params.port, exc)
            else:
                with self._cond:
                    self._connection = connection
                connection.ioloop.start()  # until _on_closed or _on_open_error stops it
                with self._cond:
                    self._connection = None
                    self._channel = None
            if self._stopping:
                break
            delay = self.backoff.delay()
            log.info("reconnecting to the broker in %.1f s (%d messages waiting)", delay, self.pending)
            end = time.monotonic() + delay
            while not self._stopping and time.monotonic() < end:
                time.sleep(0.05)

    def _on_open(self, connection: Any) -> None:
        connection.channel(on_open_callback=self._on_channel)

    def _on_open_error(self, connection: Any, error: Exception) -> None:
        log.warning("broker %s:%s unreachable: %s", connection.params.host, connection.params.port,
                    failure_reason(error))
        metrics.inc("debpulse_bridge_connect_failures_total", help="failed connections to the AMQP broker")
        connection.ioloop.stop()

    def _on_channel(self, channel: Any) -> None:
        channel.add_on_close_callback(self._on_channel_closed)
        if self.declare_exchange:
            channel.exchange_declare(self.exchange, exchange_type="topic", durable=True,
                                     callback=lambda _frame: self._enable_confirms(channel))
        else:
            self._enable_confirms(channel)

    def _enable_confirms(self, channel: Any) -> None:
        channel.confirm_delivery(ack_nack_callback=self._on_confirm, callback=lambda _frame: self._ready(channel))

    def _ready(self, channel: Any) -> None:
        with self._cond:
            self._channel = channel
            self._tag = 0
        params = channel.connection.params
        log.info("connected to %s:%s, publishing to %s", params.host, params.port, self.exchange)
        if self.connections:
            metrics.inc("debpulse_bridge_reconnections_total", help="reconnections to the AMQP broker")
        self.connections += 1
        self.backoff.reset()
        self.connected.set()
        self._send()

    def _send(self) -> None:
        import pika

        with self._cond:
            self._send_scheduled = False
        channel = self._channel
        if channel is None or not channel.is_open:
            return
        while True:
            with self._cond:
                if not self._unsent:
                    return
                ticket = self._unsent.popleft()
                self._tag += 1
                self._outstanding[self._tag] = ticket
            m = ticket.message
            ticket.attempts += 1
            channel.basic_publish(
                self.exchange, m.routing_key, m.body,
                pika.BasicProperties(
                    content_type=m.content_type, content_encoding=m.content_encoding,
                    delivery_mode=m.delivery_mode, headers=m.headers, message_id=m.message_id,
                    timestamp=m.timestamp, priority=m.priority,
                ),
            )

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        tag, multiple = method.delivery_tag, method.multiple
        acked = type(method).__name__ == "Ack"
        with self._cond:
            tags = [t for t in self._outstanding if t <= tag] if multiple else [tag]
            tickets = [self._outstanding.pop(t) for t in sorted(tags) if t in self._outstanding]
            if acked:
                for t in tickets:
                    t.confirmed = True
                self._cond.notify_all()
            else:
                # A queue refused them (reject-publish overflow, an internal
                # error): send again, after a pause rather than in a hot loop.
                log.warning("broker refused %d message(s); sending them again in %g s", len(tickets), NACK_PAUSE)
                self._unsent.extendleft(reversed(tickets))
        if acked:
            metrics.inc("debpulse_bridge_confirmed_total", len(tickets), help="messages confirmed by the broker")
        else:
            metrics.inc("debpulse_bridge_nacked_total", len(tickets), help="messages refused by the broker")
            connection = self._connection
            if connection is not None:
                connection.ioloop.call_later(NACK_PAUSE, self._send)

    def _on_channel_closed(self, channel: Any, reason: Exception) -> None:
        if not self._stopping:
            log.warning("channel closed: %s", reason)
        # Without a channel nothing can be confirmed: start over on a new connection.
        connection = channel.connection
        if connection.is_open:
            connection.close()

    def _on_closed(self, connection: Any, reason: Exception) -> None:
        self.connected.clear()
        with self._cond:
            # What the broker did not confirm goes out again, first, in order.
            waiting = [self._outstanding[t] for t in sorted(self._outstanding)]
            self._outstanding.clear()
            self._unsent.extendleft(reversed(waiting))
            self._channel = None
        if not self._stopping:
            log.warning("connection to the broker lost: %s (%d messages to send again)", failure_reason(reason),
                        len(waiting))
        connection.ioloop.stop()

    def _shutdown(self) -> None:
        connection = self._connection
        if connection is None:
            return
        if connection.is_open:
            connection.close()
        else:  # still connecting (pika has no "opening" state to ask): abandon the attempt
            connection.ioloop.stop()
