"""A debpulse service as a real process, ready once it says READY=1 on its
NOTIFY_SOCKET (as systemd starts it), stopped by PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path


def wait_for(check: Callable[[], object], timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.02)


class Service:
    def __init__(self, base: Path, name: str, module: str, argv: Sequence[str], env: dict[str, str]) -> None:
        self.base, self.name, self.module, self.argv, self.env = base, name, module, list(argv), env
        self.log = base / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.notify_path = base / f"{name}.notify"

    def start(self, timeout: float = 30.0) -> Service:
        if self.notify_path.exists():
            self.notify_path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(self.notify_path))
        try:
            with open(self.log, "ab") as log:
                self.proc = subprocess.Popen([sys.executable, "-m", self.module, *self.argv],
                                             env={**os.environ, **self.env, "NOTIFY_SOCKET": str(self.notify_path)},
                                             stdout=log, stderr=log)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError(f"{self.name} exited with {self.proc.returncode}: {self.tail()}")
                sock.settimeout(0.1)
                try:
                    if "READY=1" in sock.recv(4096).decode().split("\n"):
                        return self
                except TimeoutError:
                    pass
            raise AssertionError(f"{self.name} not ready within {timeout} s: {self.tail()}")
        finally:
            sock.close()

    def tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""

    def send(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self.proc = None
        return code


class BusService(Service):
    """A consumer on the test relay with a checkpoint named after it."""

    def __init__(self, bus, base: Path, name: str, module: str, argv: Sequence[str]) -> None:  # type: ignore[no-untyped-def]
        self.bus = bus
        super().__init__(base, name, module, [*argv, "--endpoint", bus.endpoint, "--keyring",
                                              str(bus.key.public_file), "--resume", name, "-v"], bus.env)

    @property
    def checkpoint(self) -> Path:
        return self.bus.state / "checkpoints" / f"{self.name}.json"

    def acked(self) -> int:
        import json

        if not self.checkpoint.exists():
            return 0
        return max((s["last"] for s in json.loads(self.checkpoint.read_text())["streams"].values()), default=0)

    def wait_joined_bus(self, publish: Callable[..., None]) -> None:
        """Probes on a topic nobody follows until the checkpoint knows the
        relay's stream: from then on the consumer misses nothing."""
        def joined() -> bool:
            assert self.proc and self.proc.poll() is None, self.tail()
            if self.acked():
                return True
            publish("logger.log", {"log": "probe"})
            return False
        wait_for(joined, what=f"{self.name} to join the bus")

    def wait_acked_all(self, timeout: float = 30.0) -> None:
        """Until the checkpoint holds the relay's newest message: everything
        owed was delivered (or stored to be)."""
        from debpulse.emitters import replay

        [answer] = replay.request(self.bus.replay, {"status": True}, 5.0)
        last = answer["status"]["last_seq"]
        wait_for(lambda: self.acked() >= last, timeout, what=f"message {last} acknowledged")
