"""debpulse-trigger as a real process on the real test relay."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

RECORDER = str(Path(__file__).with_name("recorder.py"))
Publish = Callable[..., None]


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
    opts.relay_timeout = 10  # a loaded machine; a spooled message would wait for the next relay start
    client = RelayClient(opts)

    def send(topic: str, *bodies: dict) -> None:
        assert client.emit_many([Event(topic, dict(b), origin="test") for b in bodies]) == "relay"

    return send


def records(out: Path) -> list[dict]:
    """What the recorder command was given, run by run, in order of completion."""
    return [json.loads(p.read_text()) for p in sorted(out.glob("*.json"), key=lambda p: int(p.name.split("-")[0]))]


def wait_for(check: Callable[[], bool], timeout: float = 15.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.05)


class TriggerProcess:
    def __init__(self, bus, base: Path, name: str, command: list[str], *options: str) -> None:
        self.bus, self.name, self.command, self.options = bus, name, command, options
        self.log = base / f"trigger-{name}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def checkpoint(self) -> Path:
        return self.bus.state / "checkpoints" / f"{self.name}.json"

    @property
    def dead_letters(self) -> list[Path]:
        d = self.bus.state / "trigger" / self.name / "dead-letter"
        return sorted(p for p in d.iterdir() if not p.name.startswith(".")) if d.is_dir() else []

    def start(self) -> TriggerProcess:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "debpulse.consumers.trigger.cli", "-v", "--endpoint", self.bus.endpoint,
                 "--keyring", str(self.bus.key.public_file), "--resume", self.name, *self.options,
                 "--", *self.command],
                env={**os.environ, **self.bus.env}, stdout=log, stderr=log)
        return self

    def wait_joined(self, publish: Publish) -> None:
        """A fresh subscriber misses what is published before its SUB socket
        joins: send probes on a topic it does not match until its checkpoint
        knows the relay's stream.  From then on it misses nothing."""
        def joined() -> bool:
            assert self.proc and self.proc.poll() is None, self.log.read_text()
            if self.checkpoint.exists() and json.loads(self.checkpoint.read_text())["streams"]:
                return True
            publish("logger.log", {"log": "probe"})
            return False
        wait_for(joined, what=f"{self.name} to join")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self.proc = None
        return code


@pytest.fixture
def trigger(bus, tmp_path: Path) -> Iterator[Callable[..., TriggerProcess]]:
    started: list[TriggerProcess] = []

    def make(name: str, command: list[str], *options: str) -> TriggerProcess:
        t = TriggerProcess(bus, tmp_path, name, command, *options)
        started.append(t)
        return t.start()

    yield make
    for t in started:
        if t.proc is not None:
            t.stop(signal.SIGKILL)
