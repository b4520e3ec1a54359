"""A real RabbitMQ for the bridge tests (one per session: it takes seconds
to start), the fedora-messaging virtual environment, and the bridge as a
real process."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from testbus import start_ready

from .rabbit import Broker, server_script

ROOT = Path(__file__).resolve().parents[2]
FEDORA_MESSAGING = ROOT / ".venv-fedora-messaging" / "bin" / "fedora-messaging"


@pytest.fixture(scope="session")
def rabbitmq() -> Iterator[Broker]:
    pika = pytest.importorskip("pika", reason="pika is not installed (pip install -e '.[bridge]')")
    del pika
    if server_script() is None:
        pytest.skip("rabbitmq-server is not installed (apt-get install rabbitmq-server)")
    if os.geteuid() != 0:
        pytest.skip("starting a private RabbitMQ as the rabbitmq user needs root")
    broker = Broker()
    try:
        broker.start()
        yield broker
    finally:
        broker.close()


@pytest.fixture(scope="session")
def fedora_messaging() -> Path:
    if not os.access(FEDORA_MESSAGING, os.X_OK):
        pytest.skip(f"fedora-messaging not installed in {FEDORA_MESSAGING.parent.parent} (run deploy/setup install)")
    return FEDORA_MESSAGING


class BridgeProcess:
    """debpulse-bridge as a real process, pointed at the test relay and
    broker; started once it says READY=1 (subscribed, publisher running)."""

    def __init__(self, bus, broker: Broker, log: Path, *extra: str) -> None:  # type: ignore[no-untyped-def]
        self.log = log
        self.proc = start_ready(
            [sys.executable, "-m", "debpulse.consumers.bridge.cli", "-v", "--endpoint", bus.endpoint,
             "--keyring", str(bus.key.public_file), "--url", broker.url, *extra],
            {**os.environ, **bus.env}, log,
        )

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(20)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def start_bridge(tmp_path: Path, bus, rabbitmq: Broker) -> Iterator:  # type: ignore[no-untyped-def]
    started: list[BridgeProcess] = []

    def start(*extra: str) -> BridgeProcess:
        b = BridgeProcess(bus, rabbitmq, tmp_path / f"bridge-{len(started)}.log", *extra)
        started.append(b)
        return b

    yield start
    for b in started:
        b.stop(signal.SIGKILL)
