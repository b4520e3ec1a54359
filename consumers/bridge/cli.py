"""debpulse-bridge: verified bus messages to an AMQP topic exchange, in
fedora-messaging's shape, acknowledged upstream only once the broker has
confirmed them."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from debpulse.emitters import cli, metrics, systemd
from debpulse.emitters.backoff import Backoff
from debpulse.emitters.config import Config, Derived, Key, Section, Table, Values
from debpulse.emitters.consumer import open_subscriber
from debpulse.emitters.errors import ConfigError
from debpulse.emitters.subscriber import Gap, Received, Subscriber
from debpulse.emitters.topics import relative_topic

from .amqp import AmqpPublisher, Ticket, connection_parameters, to_amqp

log = logging.getLogger("debpulse-bridge")

DEFAULT_URL = "amqp://guest:guest@localhost:5672/%2F"
TLS = Table("bridge.tls", {
    "ca": Key(str, Derived("the system's CA certificates"), "CA certificates the broker's certificate is "
              "checked against"),
    "cert": Key(str, None, "a client certificate, for brokers that authenticate by certificate"),
    "key": Key(str, None, "the client certificate's key (with `cert`)"),
    "server_hostname": Key(str, Derived("the URL's host"), "the name the broker's certificate must carry"),
}, "TLS towards the broker (`amqps://` URLs), also written inline: `tls = { ca = \"...\" }`.",
   read_by=("debpulse-bridge",))
BRIDGE = Table("bridge", {
    "url": Key((str, list), DEFAULT_URL, "the AMQP broker; a list: the nodes of a cluster, tried in turn",
               items=str),
    "exchange": Key(str, "amq.topic", "the topic exchange messages are published to"),
    "username": Key(str, Derived("the URL's"), "the user to log in as"),
    "password": Key(str, Derived("the URL's"), "the password (`password_file` keeps it out of this file)"),
    "password_file": Key(str, None, "a file holding the password (wins over `password`)"),
    "tls": Key(dict, {}, "TLS towards the broker", table=TLS),
    "topics": Key(list, [], "only topics starting with these (`org.debian...`, or relative: `dak`, `git.receive`); "
                  "none: every topic", items=str),
    "resume": Key(str, "bridge", "checkpoint name: a restart continues where it stopped"),
    "window": Key(int, 1000, "messages awaiting the broker's confirmation at most"),
    "priority": Key(int, 0, "the AMQP priority of every message"),
    "heartbeat": Key(int, Derived("the broker's"), "AMQP heartbeat in seconds"),
    "metrics_port": Key(int, None, "serve Prometheus metrics on `127.0.0.1:PORT`"),
    "reconnect_max": Key((int, float), 30, "the longest wait in seconds between attempts to reach the broker"),
}, "Where debpulse-bridge publishes: the RabbitMQ broker of fedora-messaging consumers.",
   read_by=("debpulse-bridge",))

EPILOG = """\
examples:
  debpulse-bridge --url amqps://debpulse@rabbitmq.debian.org/%2F --ca /etc/ssl/certs/ca-certificates.crt
  debpulse-bridge --config /etc/debpulse/debpulse.toml --topic dak --topic git.receive

/etc/debpulse/debpulse.toml:
  [bridge]
  url = ["amqps://rmq1.example.org/%2F", "amqps://rmq2.example.org/%2F"]  # cluster nodes, tried in turn
  exchange = "amq.topic"
  username = "debpulse"
  password_file = "/etc/debpulse/amqp-password"
  topics = ["dak", "debbugs", "git"]
  resume = "bridge"                  # checkpoint name: a restart continues where it stopped
  tls = { ca = "/etc/ssl/certs/ca-certificates.crt", cert = "/etc/debpulse/amqp.crt", key = "/etc/debpulse/amqp.key" }
"""


def _options(args: argparse.Namespace, config: Config) -> tuple[AmqpPublisher, Values]:
    section = BRIDGE.read(config)
    value = section["url"]
    urls = args.url or ([value] if isinstance(value, str) else value) or [DEFAULT_URL]
    for url in urls:
        if not url.startswith(("amqp://", "amqps://")):
            where = "--url" if args.url else f"{section.where}: [bridge] url"
            raise ConfigError(f"{where} {url!r} is not an amqp:// or amqps:// URL")
    tls = TLS.wrap(Section(TLS.name, section["tls"], section.where))
    password = section["password"]
    password_file = section["password_file"]
    if password_file:
        try:
            password = Path(password_file).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{section.where}: [bridge] password_file {password_file}: {exc.strerror}") from None
    files = {name: getattr(args, name) or tls[name] for name in ("ca", "cert", "key")}
    for name, path in files.items():
        if path and not Path(path).is_file():
            raise ConfigError(f"{section.where}: [bridge] tls {name} {path}: no such file")
    if files["key"] and not files["cert"]:
        raise ConfigError(f"{section.where}: [bridge] tls key given without cert")
    try:
        params = connection_parameters(
            urls, username=section["username"], password=password,
            ca=files["ca"], cert=files["cert"], key=files["key"],
            server_hostname=tls["server_hostname"], heartbeat=section["heartbeat"],
        )
    except ImportError:
        raise ConfigError("pika is not installed (pip install 'debpulse[bridge]')") from None
    except (ValueError, OSError) as exc:
        raise ConfigError(f"{section.where}: [bridge]: {exc}") from None
    exchange = args.exchange or section["exchange"]
    most = float(section["reconnect_max"])
    if most <= 0:
        raise ConfigError(f"{section.where}: [bridge] reconnect_max must be positive")
    return AmqpPublisher(params, exchange, backoff=Backoff(first=min(0.5, most), most=most, jitter=0.2)), section


@cli.entry
def main(argv: Sequence[str] | None = None) -> int:
    p = cli.parser("debpulse-bridge", "Publish verified bus messages to an AMQP broker, as fedora-messaging does.",
                   EPILOG)
    cli.add_common(p, subscribe=True)
    p.add_argument("--url", action="append", default=[], metavar="URL",
                   help=f"AMQP broker (repeatable: cluster nodes; default {DEFAULT_URL.replace('%', '%%')})")
    p.add_argument("--exchange", metavar="NAME", help="topic exchange (default amq.topic)")
    p.add_argument("--topic", action="append", default=[], metavar="PREFIX",
                   help="only topics starting with PREFIX (default: every topic)")
    p.add_argument("--resume", metavar="NAME", help="checkpoint name (default 'bridge')")
    p.add_argument("--window", type=int, metavar="N", help="messages awaiting confirmation at most (default 1000)")
    p.add_argument("--ca", metavar="FILE", help="CA certificates for amqps")
    p.add_argument("--cert", metavar="FILE", help="client certificate for amqps")
    p.add_argument("--key", metavar="FILE", help="client key for amqps")
    p.add_argument("--metrics-port", type=int, metavar="PORT", help="serve Prometheus metrics on 127.0.0.1:PORT")
    args = p.parse_args(argv)
    cli.setup_logging(args.verbose)
    config = cli.config_from(args)
    publisher, section = _options(args, config)
    # The publisher's thread is already trying to connect: a mistake found
    # from here on closes it before the one-line error.
    try:
        window = args.window or section["window"]
        if window < 1:
            raise ConfigError("--window must be at least 1")
        priority = section["priority"]
        topics = args.topic or section["topics"]
        resume = args.resume or section["resume"]
        metrics_port = section.pick(args.metrics_port, "metrics_port")
        full = [t for t in topics if t.startswith("org.")]
        # Full prefixes filter on the socket; service-relative ones in Bridge.wanted.
        sub = open_subscriber(args, config, topics=full if full and len(full) == len(topics) else None,
                              resume=resume, auto_ack=False)
    except BaseException:
        publisher.close()
        raise
    if metrics_port is not None:
        metrics.serve(metrics_port)
    bridge = Bridge(sub, publisher, topics=topics, window=window, priority=priority)
    systemd.notify("READY=1")
    log.info("bridging %s to %s (checkpoint %r)", ", ".join(sub.endpoints), publisher.exchange, resume)
    try:
        bridge.run()
    except KeyboardInterrupt:
        pass
    finally:
        systemd.notify("STOPPING=1")
        bridge.close()
    return 0


class Bridge:
    """The loop: receive, publish, and acknowledge upstream in order once confirmed."""

    def __init__(self, sub: Subscriber, publisher: AmqpPublisher, *, topics: Sequence[str] = (),
                 window: int = 1000, priority: int = 0) -> None:
        self.sub = sub
        self.publisher = publisher
        self.full = [t for t in topics if t.startswith("org.")]
        self.relative = [t for t in topics if not t.startswith("org.")]
        self.window = window
        self.priority = priority
        self.bridged = 0
        # Items in the order received; acknowledged from the front, so the
        # checkpoint never passes a message the broker has not confirmed.
        self._inflight: deque[tuple[Received | Gap, Ticket | None]] = deque()

    def wanted(self, item: Received) -> bool:
        if not self.full and not self.relative:
            return True
        return any(item.topic.startswith(t) for t in self.full) or any(
            relative_topic(item.topic).startswith(t) for t in self.relative)

    def step(self, timeout: float = 1.0) -> None:
        """Take in what the window allows, then acknowledge what is confirmed."""
        while len(self._inflight) < self.window:
            item = self.sub.receive(timeout=0.002 if self._inflight else timeout)
            if item is None:
                break
            if isinstance(item, Gap):
                if item.permanent:
                    log.error("messages %d..%d of %s are lost and will not be bridged: %s",
                              item.first, item.last, item.publisher, item.reason)
                    metrics.inc("debpulse_bridge_lost_total", item.last - item.first + 1,
                                help="bus messages lost before the bridge (permanent gaps)")
                self._inflight.append((item, None))
            elif self.wanted(item):
                try:
                    message = to_amqp(item, priority=self.priority)
                except Exception as exc:  # a verified but unbridgeable message is told, never fatal
                    log.error("%s (%s) cannot be bridged: %s", item.msg_id, item.topic[:200], exc)
                    metrics.inc("debpulse_bridge_unbridgeable_total", help="verified messages AMQP cannot carry")
                    self._inflight.append((item, None))
                    continue
                # A steady stream goes out in bursts, not only when the window is full.
                self._inflight.append((item, self.publisher.publish(message, flush=len(self._inflight) % 64 == 0)))
            else:
                self._inflight.append((item, None))
        self.publisher.flush()
        if self._inflight and self._inflight[0][1] is not None:
            self.publisher.wait(self._inflight[0][1], timeout=0.05)
        self._ack_confirmed()

    def _ack_confirmed(self) -> None:
        # The checkpoint keeps the highest acknowledged number per stream and
        # is written on every ack: acknowledging the highest of a confirmed
        # run per stream is the same, one write instead of many.
        highest: dict[str, tuple[int, Received | Gap]] = {}
        while self._inflight:
            item, ticket = self._inflight[0]
            if ticket is not None and not ticket.confirmed:
                break
            self._inflight.popleft()
            if ticket is not None:
                self.bridged += 1
                metrics.inc("debpulse_bridge_messages_total", help="bus messages confirmed by the broker")
            # A gap still being repaired moves nothing; a late repair is below what is acknowledged.
            mark = item.seq_id if isinstance(item, Received) else item.last if item.permanent else None
            if item.publisher and mark and mark >= highest.get(item.publisher, (0, item))[0]:
                highest[item.publisher] = (mark, item)
        for _, item in highest.values():
            self.sub.ack(item)

    def run(self) -> None:
        while True:
            self.step()

    def close(self, timeout: float = 5.0) -> None:
        """Give the broker a moment to confirm what is out, then save the checkpoint."""
        deadline = time.monotonic() + timeout
        self._ack_confirmed()
        while self._inflight and self.publisher.connected.is_set() and time.monotonic() < deadline:
            ticket = self._inflight[0][1]
            if ticket is not None:
                self.publisher.wait(ticket, timeout=max(0.0, deadline - time.monotonic()))
            self._ack_confirmed()
        if self._inflight:
            log.info("stopping with %d message(s) unconfirmed: they are bridged again on the next start",
                     len(self._inflight))
        self.sub.close()
        self.publisher.close()


if __name__ == "__main__":
    sys.exit(main())
