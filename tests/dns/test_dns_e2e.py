"""The whole path: relays announce themselves in a real knot at start and
withdraw at stop; a subscriber that knows only the domain (--srv) finds
them, picks up a new one and drops a withdrawn one without a restart."""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from testbus import start_ready

DOMAIN = "e2e.test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def announce_config(path: Path, knot, *, weight: int = 0) -> Path:
    path.write_text(
        "[dns.announce]\n"
        f'domain = "{DOMAIN}"\n'
        f'server = "{knot.server}"\n'
        f'tsig_key_file = "{knot.key_file}"\n'
        'target = "127.0.0.1"\n'
        f"weight = {weight}\n"
    )
    return path


def subscriber_config(path: Path, knot) -> Path:
    # Only the name server is configured: the publishers come from --srv.
    path.write_text(f'[dns]\nnameservers = ["{knot.server}"]\n\n[subscribe]\nrefresh = 1\n')
    return path


def lookup(knot) -> list[str]:
    out = subprocess.run([sys.executable, "-m", "debpulse.emitters.commands.dns", "lookup", DOMAIN,
                          "--nameserver", knot.server], capture_output=True, text=True, timeout=30)
    return sorted(line.split()[0] for line in out.stdout.splitlines())


class Tail:
    """debpulse-tail --srv DOMAIN --json as a real process, read line by line;
    its log (stderr) goes to a file, read while it runs."""

    def __init__(self, config: Path, keyring: Path, env: dict[str, str]) -> None:
        self.log = config.with_name("tail.log")
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "debpulse.emitters.commands.tail", "--srv", DOMAIN, "--json",
                 "--config", str(config), "--keyring", str(keyring), "-v"],
                stdout=subprocess.PIPE, stderr=log, env=env, text=True,
            )
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.proc.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]

    def wait_log(self, text: str, timeout: float = 15) -> bool:
        deadline = time.monotonic() + timeout
        while text not in self.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        return text in self.log.read_text()

    def messages(self, n: int, timeout: float) -> list[dict]:
        got: list[dict] = []
        deadline = time.monotonic() + timeout
        while len(got) < n and (left := deadline - time.monotonic()) > 0:
            if self.sel.select(left):
                line = self.proc.stdout.readline()  # type: ignore[union-attr]
                if not line:
                    break
                got.append(json.loads(line))
        return got

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.log.read_text()


def log_until_received(env: dict[str, str], tail: Tail, text: str, timeout: float = 15) -> dict | None:
    """Publish `text` through the relay every half second until the tail
    shows it: a SUB socket only sees what is sent after it has joined."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        subprocess.run([sys.executable, "-m", "debpulse.emitters.commands.logger", "--message", text],
                       env=env, check=True, capture_output=True, timeout=30)
        for m in tail.messages(1, 0.5):
            if m.get("envelope", {}).get("msg") == {"log": text}:
                return m
    return None


@pytest.fixture
def clean_zone(knot):
    yield
    import dns.query
    import dns.update

    u = dns.update.UpdateMessage(DOMAIN, keyring=knot.key)
    u.delete("_fedmsg._tcp", "SRV")
    u.delete("_fedmsg._tcp", "TXT")
    dns.query.tcp(u, "127.0.0.1", port=knot.port, timeout=3)


def second_relay(base: Path, key, config: Path) -> tuple[subprocess.Popen, dict[str, str], str]:
    """Another relay on its own ports, state and local socket, announcing
    itself; returned once it says READY=1, which it sends after announcing."""
    env = {**os.environ, "DEBPULSE_STATE_DIR": str(base / "state"), "DEBPULSE_RUNTIME_DIR": str(base / "run")}
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    proc = start_ready(
        [sys.executable, "-m", "debpulse.emitters.commands.relay", "--publish", endpoint,
         "--replay", f"tcp://127.0.0.1:{free_port()}", "--signing-key", str(key.secret_file), "--config", str(config)],
        env, base / "relay.log",
    )
    return proc, env, endpoint


def test_subscriber_with_only_srv_follows_announced_relays(knot, bus, tmp_path: Path, clean_zone):
    # The bus fixture's relay, restarted with an announcing configuration.
    bus.stop()
    bus.start("--config", str(announce_config(tmp_path / "relay1.toml", knot)))
    assert lookup(knot) == [bus.endpoint]
    txt = knot.records(DOMAIN, "TXT")
    assert len(txt) == 1 and f"fpr={bus.key.fingerprint}" in txt[0] and "replay=tcp://127.0.0.1:" in txt[0]

    env = {**os.environ, **bus.env}
    tail = Tail(subscriber_config(tmp_path / "sub.toml", knot), bus.key.public_file, env)
    second = None
    try:
        got = log_until_received(env, tail, "from the first relay")
        assert got is not None, tail.stop()
        assert got["verification"]["ok"] is True

        # A second relay announces itself while the subscriber runs: picked
        # up within the refresh interval (1 s), no restart.
        (tmp_path / "two").mkdir()
        proc, env2, endpoint2 = second_relay(tmp_path / "two", bus.key,
                                             announce_config(tmp_path / "relay2.toml", knot, weight=5))
        second = proc
        assert lookup(knot) == sorted([bus.endpoint, endpoint2])
        got = log_until_received(env2, tail, "from the second relay")
        assert got is not None, tail.stop()

        # The second one stops cleanly: it withdraws itself and is dropped.
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        second = None
        assert lookup(knot) == [bus.endpoint]
        assert tail.wait_log(f"dropping {endpoint2}"), tail.log.read_text()  # within a refresh (1 s)
        got = log_until_received(env, tail, "still here", timeout=10)
        assert got is not None
    finally:
        if second is not None:
            second.kill()
            second.wait()
        stderr = tail.stop()
    assert f"connecting to {bus.endpoint}" in stderr
    assert f"dropping {endpoint2}" in stderr, stderr

    # A clean stop of the first relay withdraws it too.
    bus.stop(signal.SIGTERM)
    assert lookup(knot) == []
