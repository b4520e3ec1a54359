"""The command lines as a new user meets them, with the real relay and real
processes: -v and -vv each add something, debpulse-logger publishes a line
as soon as it is read, --keyring repeats, --timestamp-window checks old
captures, --accept-fedmsg-scope without a policy warns, and the common
options go on either side of a subcommand."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq
from testbus import Bus, free_port

LOGGER = [sys.executable, "-m", "debpulse.emitters.commands.logger"]
TAIL = [sys.executable, "-m", "debpulse.emitters.commands.tail"]


# -- verbosity -------------------------------------------------------------------

SHOW = """
import logging, sys
from debpulse.emitters import cli
cli.setup_logging(int(sys.argv[1]))
for name in ("debpulse.x", "pika.adapters"):
    for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR):
        logging.getLogger(name).log(level, "%s %s", name, logging.getLevelName(level))
"""


@pytest.mark.parametrize(("verbose", "shown"), [
    (0, {"debpulse.x WARNING", "debpulse.x ERROR"}),
    (1, {"debpulse.x INFO", "debpulse.x WARNING", "debpulse.x ERROR"}),
    (2, {"debpulse.x DEBUG", "debpulse.x INFO", "debpulse.x WARNING", "debpulse.x ERROR"}),
    (3, {f"{n} {level}" for n in ("debpulse.x", "pika.adapters") for level in ("DEBUG", "INFO", "WARNING", "ERROR")}),
])
def test_each_v_adds_a_level_and_libraries_speak_only_at_the_third(verbose: int, shown: set[str]) -> None:
    out = subprocess.run([sys.executable, "-c", SHOW, str(verbose)], capture_output=True, text=True, timeout=30)
    assert {line.rsplit(": ", 1)[1] for line in out.stderr.splitlines()} == shown


def test_the_relay_says_more_with_each_v(gpg_key, tmp_path: Path) -> None:
    logs = {}
    for flags in ("", "-v", "-vv"):
        bus = Bus(tmp_path / f"bus{flags}", gpg_key)
        bus.start(*([flags] if flags else []))
        try:
            r = subprocess.run([*LOGGER, "--message", "hello"], env={**os.environ, **bus.env},
                               capture_output=True, text=True, timeout=30)
            assert r.returncode == 0 and r.stderr == ""  # the logger itself: quiet when all is well
        finally:
            bus.close()
        logs[flags] = bus.log.read_text()
    assert "publishing on" not in logs[""] and "INFO" not in logs[""]
    assert "publishing on" in logs["-v"] and "DEBUG" not in logs["-v"]
    assert "DEBUG: published org.debian.dev.logger.log #1" in logs["-vv"]


# -- debpulse-logger ----------------------------------------------------------------

def test_logger_publishes_each_line_as_soon_as_it_is_read(bus) -> None:
    sub = bus.subscriber("org.debian.dev.logger")
    proc = subprocess.Popen([*LOGGER], stdin=subprocess.PIPE, env={**os.environ, **bus.env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    try:
        # `tail -f LOG | debpulse-logger`: the pipe stays open between lines.
        proc.stdin.write(b"first line\n")
        proc.stdin.flush()
        [first] = sub.wait(1, timeout=20)
        assert first.body == {"log": "first line"} and proc.poll() is None
        proc.stdin.write(b"second\nthird\r\nfourth\n")
        proc.stdin.flush()
        assert [m.body["log"] for m in sub.wait(3, timeout=20)] == ["second", "third", "fourth"]
        proc.stdin.write(b"no newline at the end")
    finally:
        proc.stdin.close()
    assert proc.wait(30) == 0, proc.stderr.read()  # type: ignore[union-attr]
    assert [m.body["log"] for m in sub.wait(1)] == ["no newline at the end"]


def test_logger_hands_a_file_over_in_chunks(bus, tmp_path: Path) -> None:
    sub = bus.subscriber("org.debian.dev.logger")
    lines = tmp_path / "lines"
    lines.write_text("".join(f"line {n}\n" for n in range(1200)))
    with lines.open("rb") as stdin:
        r = subprocess.run([*LOGGER], stdin=stdin, env={**os.environ, **bus.env}, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    got = sub.wait(1200, timeout=30)
    assert [m.body["log"] for m in got] == [f"line {n}" for n in range(1200)]


# -- subscriber options ----------------------------------------------------------------

class Tail:
    """debpulse-tail as a real process: JSON lines on stdout, its log in a file."""

    def __init__(self, tmp_path: Path, env: dict[str, str], *args: str) -> None:
        self.log = tmp_path / f"tail-{time.monotonic_ns()}.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen([*TAIL, "--json", *args], env=env, stdout=subprocess.PIPE, stderr=log)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.proc.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]

    def until_line(self, send, timeout: float = 20.0) -> dict | None:
        """Call send() every half second until a line comes (a SUB socket
        sees only what is sent after it has joined)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            send()
            if self.sel.select(0.5):
                line = self.proc.stdout.readline()  # type: ignore[union-attr]
                if line:
                    return json.loads(line)
        return None

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        return self.log.read_text()


def test_keyring_repeats(bus, rsa_key, tmp_path: Path) -> None:
    env = {**os.environ, **bus.env}

    def log() -> None:
        subprocess.run([*LOGGER, "--message", "signed"], env=env, check=True, capture_output=True, timeout=30)

    both = Tail(tmp_path, env, "--endpoint", bus.endpoint, "--keyring", str(bus.key.public_file),
                "--keyring", str(rsa_key.public_file))  # the signer's first: not replaced by the second
    try:
        got = both.until_line(log)
    finally:
        both.stop()
    assert got is not None and got["verification"]["ok"] is True
    assert got["verification"]["signer"] == bus.key.fingerprint
    other = Tail(tmp_path, env, "--endpoint", bus.endpoint, "--keyring", str(rsa_key.public_file), "--show-rejected")
    try:
        got = other.until_line(log)
    finally:
        other.stop()
    assert got is not None and got["verification"]["reason"] == "unknown-key"


@pytest.fixture
def captured_fedmsg(shared_fixtures: Path):
    """A raw PUB socket that sends a real fedmsg 1.1.7 capture (signed over
    msg only, days old by now) each time it is called."""
    d = shared_fixtures / "fedmsg"
    frames = [(d / f"gpg-signed-direct-1.frame{n}.bin").read_bytes() for n in (0, 1)]
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    pub = zmq.Context.instance().socket(zmq.PUB)
    pub.bind(endpoint)
    yield endpoint, d / "test-pubkeys.asc", lambda: pub.send_multipart(frames)
    pub.close(0)


def test_timestamp_window_flag_lets_old_captures_through(captured_fedmsg, tmp_path: Path) -> None:
    endpoint, keys, send = captured_fedmsg
    env = {**os.environ, "DEBPULSE_STATE_DIR": str(tmp_path / "state")}
    common = ["--endpoint", endpoint, "--keyring", str(keys), "--accept-fedmsg-scope"]
    strict = Tail(tmp_path, env, *common, "--show-rejected")
    try:
        got = strict.until_line(send)
    finally:
        log = strict.stop()
    assert got is not None and got["verification"]["reason"] == "timestamp-outside-window"
    # Without a signer policy, accepting the fedmsg scope is said once, at start.
    assert log.count("no signer policy") == 1, log
    off = Tail(tmp_path, env, *common, "--timestamp-window", "0")
    try:
        got = off.until_line(send)
    finally:
        off.stop()
    assert got is not None and got["verification"]["ok"] is True and got["verification"]["scope"] == "fedmsg"
    assert got["envelope"]["msg"] == {"log": "Hello, signed by gpg"}


def test_fedmsg_scope_with_a_policy_says_nothing(captured_fedmsg, tmp_path: Path) -> None:
    endpoint, keys, send = captured_fedmsg
    policy = tmp_path / "policy.toml"
    policy.write_text('[[signer]]\nname = "fedmsg test key"\n'
                      'fingerprint = "45248F2FD2A2DB545A7A4875DB6FD215362C18D4"\ntopics = ["org.debian.#"]\n')
    tail = Tail(tmp_path, {**os.environ, "DEBPULSE_STATE_DIR": str(tmp_path / "state")}, "--endpoint", endpoint,
                "--keyring", str(keys), "--accept-fedmsg-scope", "--policy", str(policy), "--timestamp-window", "0")
    try:
        got = tail.until_line(send)
    finally:
        log = tail.stop()
    assert got is not None and got["verification"]["ok"] is True, got
    assert "no signer policy" not in log


# -- options on either side of a subcommand ------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["debpulse.emitters.commands.dns", "{where}", "zone", "--domain", "example.org", "--target", "relay.example.org"],
    ["debpulse.adapters.wannabuild.cli", "{where}", "install-trigger"],
    ["debpulse.adapters.scm.cli", "{where}", "uninstall", "/nonexistent/repo.git"],
], ids=["dns", "wanna-build", "git"])
@pytest.mark.parametrize("where", ["before", "after"])
def test_common_options_before_or_after_the_subcommand(argv: list[str], where: str, tmp_path: Path) -> None:
    config = tmp_path / "missing.toml"  # a --config that fails shows the option was taken
    module, _, command, *rest = argv
    options = ["--config", str(config), "-v"]
    line = [module, *options, command, *rest] if where == "before" else [module, command, *rest, *options]
    r = subprocess.run([sys.executable, "-m", *line], capture_output=True, text=True, timeout=30)
    assert "unrecognized arguments" not in r.stderr, r.stderr
    if not module.endswith("scm.cli"):  # uninstall reads no configuration
        assert r.returncode == 2 and r.stderr.strip().endswith(f"{config}: no such configuration file"), r.stderr
