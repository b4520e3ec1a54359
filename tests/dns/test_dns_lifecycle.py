"""Announcements over a publisher's whole life, against a real knot: a relay
stopped while its first update is on the wire withdraws it all the same; a
direct publisher whose DNS server is down at start announces itself once it
is back; a DNS-only subscriber with nothing announced connects to nothing."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from testbus import free_port

from debpulse.emitters.config import Config
from debpulse.emitters.consumer import LOCAL_RELAY, open_subscriber
from debpulse.emitters.emitter import open_emitter
from debpulse.emitters.event import Event

DOMAIN = "update.test"  # emptied after each test by the conftest's `clean`


def wait_until(check, what: str, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert proc is None or proc.poll() is None, f"exited with {proc.returncode} while waiting for {what}"
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.05)


def signal_taken(pid: int, signum: int) -> bool:
    """The kernel has handed `signum` to the process (no longer pending)."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    bit = 1 << (signum - 1)
    return not (int(fields["SigPnd"], 16) & bit or int(fields["ShdPnd"], 16) & bit)


def test_relay_stopped_while_its_announcement_is_in_flight_leaves_no_record(knot, clean, gpg_key, tcp_proxy,
                                                                         tmp_path: Path):
    config = tmp_path / "relay.toml"
    config.write_text(f'[dns.announce]\ndomain = "{DOMAIN}"\nserver = "{tcp_proxy.server}"\n'
                      f'tsig_key_file = "{knot.key_file}"\ntarget = "127.0.0.1"\n')
    tcp_proxy.hold_next_update()
    env = {**os.environ, "DEBPULSE_STATE_DIR": str(tmp_path / "state"), "DEBPULSE_RUNTIME_DIR": str(tmp_path / "run")}
    with (tmp_path / "relay.log").open("wb") as log:
        relay = subprocess.Popen(
            [sys.executable, "-m", "debpulse.emitters.commands.relay", "-v", "--publish",
             f"tcp://127.0.0.1:{free_port()}", "--replay", f"tcp://127.0.0.1:{free_port()}",
             "--signing-key", str(gpg_key.secret_file), "--config", str(config)],
            env=env, stdout=log, stderr=log)
    try:
        wait_until(tcp_proxy.update_seen.is_set, "update at the DNS server", proc=relay)
        relay.send_signal(signal.SIGTERM)  # systemd stops it while the update is on the wire
        wait_until(lambda: signal_taken(relay.pid, signal.SIGTERM), "SIGTERM taken")
        tcp_proxy.release()  # the update reaches knot after all
        assert relay.wait(30) == 0, (tmp_path / "relay.log").read_text()
    finally:
        if relay.poll() is None:
            relay.kill()
            relay.wait()
    log = (tmp_path / "relay.log").read_text()
    assert knot.records(DOMAIN, "SRV") == [] and knot.records(DOMAIN, "TXT") == [], log
    assert tcp_proxy.updates == 2, log  # the announcement, then its withdrawal
    assert "withdrew" in log


def test_a_direct_publisher_announces_itself_once_its_dns_server_is_back(knot, clean, gpg_key, tcp_proxy,
                                                                        tmp_path: Path, caplog):
    """As debpulse-wanna-build with [bus] publish and [dns.announce] does."""
    caplog.set_level(logging.INFO, logger="debpulse")
    port = free_port()
    config = Config({
        "bus": {"publish": f"tcp://127.0.0.1:{port}", "replay": f"tcp://127.0.0.1:{free_port()}",
                "signing_key": str(gpg_key.secret_file), "state_dir": str(tmp_path)},
        "dns": {"announce": {"domain": DOMAIN, "server": tcp_proxy.server, "tsig_key_file": str(knot.key_file),
                             "target": "buildd-db.example.org"}},
    })
    tcp_proxy.down = True  # the name server drops every connection at start
    emitter = open_emitter(argparse.Namespace(), config, name="wannabuild")
    try:
        assert "could not announce tcp://buildd-db.example.org:" in caplog.text
        assert "retrying in" in caplog.text and "every 5 minutes" not in caplog.text
        emitter.emit(Event("logger.log", {"log": "publishing meanwhile"}))
        tcp_proxy.down = False
        wait_until(lambda: knot.records(DOMAIN, "SRV") == [f"0 0 {port} buildd-db.example.org."],
                   "the SRV record after the server came back")
        # Said once the update is answered, which may be a moment after knot has the record.
        wait_until(lambda: f"announced tcp://buildd-db.example.org:{port} in DNS after all" in caplog.text,
                   "the line saying it is announced")
    finally:
        emitter.close()
    assert knot.records(DOMAIN, "SRV") == []  # withdrawn at close


def test_a_subscriber_with_only_an_empty_srv_domain_connects_to_nothing(knot, tmp_path: Path, caplog):
    caplog.set_level(logging.INFO, logger="debpulse")
    config = Config({"dns": {"nameservers": [knot.server]}, "subscribe": {"refresh": 0.2}})
    args = argparse.Namespace(srv=["lookup.test"], endpoint=[], keyring=[], state_dir=tmp_path)
    sub = open_subscriber(args, config)
    try:
        for _ in range(3):  # a few refreshes: still nothing, and said once
            sub.receive(timeout=0.3)
        assert sub.endpoints == []
        assert LOCAL_RELAY not in caplog.text
        assert caplog.text.count("no publishers found in _fedmsg._tcp.lookup.test") == 1
    finally:
        sub.close()
    # Nothing configured at all: the local relay, for a first try.
    caplog.clear()
    sub = open_subscriber(argparse.Namespace(srv=[], endpoint=[], keyring=[], state_dir=tmp_path), Config())
    try:
        assert sub.endpoints == [LOCAL_RELAY]
        assert "no publishers configured: connecting to the local relay" in caplog.text
    finally:
        sub.close()


@pytest.fixture
def tail_env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "DEBPULSE_STATE_DIR": str(tmp_path / "state"), "DEBPULSE_RUNTIME_DIR": str(tmp_path / "run")}


def test_tail_srv_with_nothing_announced_says_so_and_connects_to_nothing(knot, tmp_path: Path, tail_env):
    proc = subprocess.run(
        [sys.executable, "-m", "debpulse.emitters.commands.tail", "--srv", "lookup.test", "--nameserver",
         knot.server, "--timeout", "1", "-v"],
        env=tail_env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr  # nothing received
    assert "connecting to" not in proc.stderr and "127.0.0.1:9940" not in proc.stderr
    assert proc.stderr.count("no publishers found in _fedmsg._tcp.lookup.test: not connected to any") == 1
