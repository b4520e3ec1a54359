"""Every subscriber command names its resolver and trust anchor on the
command line, as `debpulse-dns lookup` does: a relay announced in a
DNSSEC-signed zone of a real knot is found by debpulse-tail, -trigger and
-bridge from --srv, --nameserver and --trust-anchor alone, and a wrong
anchor finds nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dns.query
import dns.update
import pytest
from testbus import Bus, free_port

ZONE = "signed.test"


@pytest.fixture
def announced_bus(knot, gpg_key, tmp_path: Path) -> Iterator[Bus]:
    """A real relay announcing itself in the signed zone (ready once announced)."""
    config = tmp_path / "relay.toml"
    config.write_text(f'[dns.announce]\ndomain = "{ZONE}"\nserver = "{knot.server}"\n'
                      f'tsig_key_file = "{knot.key_file}"\ntarget = "127.0.0.1"\n')
    bus = Bus(tmp_path / "bus", gpg_key)
    bus.start("--config", str(config))
    try:
        assert knot.records(ZONE, "SRV") == [f"0 0 {bus.port} 127.0.0.1."]
        yield bus
    finally:
        bus.close()
        u = dns.update.UpdateMessage(ZONE, keyring=knot.key)
        u.delete("_fedmsg._tcp", "SRV")
        u.delete("_fedmsg._tcp", "TXT")
        dns.query.tcp(u, "127.0.0.1", port=knot.port, timeout=3)


def run_until(argv: list[str], env: dict[str, str], log: Path, text: str, timeout: float = 30.0) -> str:
    """Run a long-running subscriber until `text` shows in its log, then stop it (SIGTERM)."""
    with log.open("wb") as fh:
        proc = subprocess.Popen(argv, env=env, stdout=fh, stderr=fh)
    try:
        deadline = time.monotonic() + timeout
        while text not in log.read_text() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return log.read_text()


COMMANDS = {
    "tail": ["debpulse.emitters.commands.tail"],
    "trigger": ["debpulse.consumers.trigger.cli", "--topic", "logger", "--resume", "flags"],
    "bridge": ["debpulse.consumers.bridge.cli", "--url", f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_subscriber_finds_the_relay_with_resolver_and_anchor_flags(command, knot, announced_bus, tmp_path: Path):
    module, *extra = COMMANDS[command]
    anchor = knot.anchor(ZONE)
    argv = [sys.executable, "-m", module, *extra, "--srv", ZONE, "--nameserver", knot.server,
            "--trust-anchor", str(anchor), "--keyring", str(announced_bus.key.public_file), "-v"]
    if command == "trigger":
        argv += ["--", "/bin/true"]
    env = {**os.environ, **announced_bus.env}
    log = run_until(argv, env, tmp_path / f"{command}.log", f"connecting to {announced_bus.endpoint}")
    assert f"connecting to {announced_bus.endpoint}" in log, log
    assert "Traceback" not in log


def test_a_wrong_trust_anchor_on_the_command_line_finds_nothing(knot, announced_bus, tmp_path: Path):
    wrong = tmp_path / "wrong.ds"
    wrong.write_text(f"{ZONE}. DS 12345 13 2 " + "00" * 32 + "\n")
    proc = subprocess.run(
        [sys.executable, "-m", "debpulse.emitters.commands.tail", "--srv", ZONE, "--nameserver", knot.server,
         "--trust-anchor", str(wrong), "--keyring", str(announced_bus.key.public_file), "--timeout", "1"],
        env={**os.environ, **announced_bus.env}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "matches the trust anchor" in proc.stderr  # said without -v: a warning
    assert "connecting to" not in proc.stderr
