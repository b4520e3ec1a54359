"""Fixtures of the IRC tests: a real ngircd, real readers in the channels,
debpulse-irc as a real process on the real test relay."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ircd import IrcClient, Ngircd
from services import BusService

Publish = Callable[..., None]


@pytest.fixture
def ircd(tmp_path: Path) -> Iterator[Ngircd]:
    try:
        server = Ngircd(tmp_path / "ircd").start()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    yield server
    server.stop()


@pytest.fixture
def reader(ircd: Ngircd) -> Iterator[Callable[..., IrcClient]]:
    clients: list[IrcClient] = []

    def make(nick: str = "reader", *channels: str) -> IrcClient:
        c = IrcClient(ircd.port, nick)
        for ch in channels:
            c.join(ch)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


@pytest.fixture
def publish(bus, monkeypatch) -> Publish:
    """Publish bodies under a service-relative topic through the relay, in-process."""
    from debpulse.emitters.config import Config
    from debpulse.emitters.event import Event
    from debpulse.emitters.options import BusOptions
    from debpulse.emitters.relay_client import RelayClient

    for k, v in bus.env.items():
        monkeypatch.setenv(k, v)
    opts = BusOptions.from_args(argparse.Namespace(), Config(), name="test")
    opts.relay_timeout = 10
    client = RelayClient(opts)

    def send(topic: str, *bodies: dict) -> None:
        for i in range(0, len(bodies), 200):
            events = [Event(topic, dict(b), origin="test") for b in bodies[i:i + 200]]
            assert client.emit_many(events) == "relay"

    return send


def bot_config(path: Path, port: int, channels: str, extra: str = "") -> Path:
    path.write_text(f"""\
[irc]
nick = "dpbot"
{extra}
[irc.networks.test]
host = "127.0.0.1"
port = {port}
rate = 50
burst = 20
ping_interval = 30
reconnect_max = 1

{channels}
""")
    return path


class Bot(BusService):
    def __init__(self, bus, base: Path, config: Path, name: str = "irc") -> None:  # type: ignore[no-untyped-def]
        self.config = config
        self.control = base / "run" / "irc.sock"
        super().__init__(bus, base, name, "debpulse.consumers.irc.cli",
                         ["--config", str(config), "--control-socket", str(self.control)])


@pytest.fixture
def irc_bot(bus, tmp_path: Path) -> Iterator[Callable[..., Bot]]:
    started: list[Bot] = []

    def make(config: Path, name: str = "irc") -> Bot:
        b = Bot(bus, tmp_path, config, name)
        started.append(b)
        return b

    yield make
    for b in started:
        if b.proc is not None:
            b.stop()
