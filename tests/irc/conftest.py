"""Fixtures of the IRC tests: a real ngircd, real readers in the channels,
debpulse-irc as a real process on the real test relay."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ircd import IrcClient, Ngircd
from services import Service, wait_for

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


class Bot(Service):
    def __init__(self, bus, base: Path, config: Path, name: str = "irc") -> None:
        self.bus, self.config = bus, config
        self.control = base / "run" / "irc.sock"
        super().__init__(base, name, "debpulse.consumers.irc.cli",
                         ["--config", str(config), "--endpoint", bus.endpoint, "--keyring", str(bus.key.public_file),
                          "--resume", name, "--control-socket", str(self.control), "-v"], bus.env)

    @property
    def checkpoint(self) -> Path:
        return self.bus.state / "checkpoints" / f"{self.name}.json"

    def acked(self) -> int:
        if not self.checkpoint.exists():
            return 0
        return max((s["last"] for s in json.loads(self.checkpoint.read_text())["streams"].values()), default=0)

    def wait_acked_all(self, timeout: float = 30.0) -> None:
        """Until the checkpoint holds the relay's newest message: every
        line the bot owed was said and confirmed (or squashed into one)."""
        from debpulse.emitters import replay

        [answer] = replay.request(self.bus.replay, {"status": True}, 5.0)
        last = answer["status"]["last_seq"]
        wait_for(lambda: self.acked() >= last, timeout, what=f"message {last} acknowledged")

    def wait_joined_bus(self, publish: Publish) -> None:
        """Probes on a topic no channel wants until the checkpoint knows the
        relay's stream: from then on the bot misses nothing."""
        def joined() -> bool:
            assert self.proc and self.proc.poll() is None, self.tail()
            if self.acked():
                return True
            publish("logger.log", {"log": "probe"})
            return False
        wait_for(joined, what="the bot to join the bus")


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
