"""A subscriber gets every message published after it started, once, in
order; fields outside the signature cannot stop delivery or fake a loss;
subscribe() is at least once; the spool keeps each producer's order."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq
from testbus import Bus

from debpulse.emitters import envelope as env
from debpulse.emitters.signing import SequoiaKeyring, SequoiaSigner
from debpulse.emitters.spool import Spool
from debpulse.emitters.subscriber import Gap, Received, Subscriber
from debpulse.emitters.verify import Verifier

from .hostile import AttackerSocket, Lines, signed_frames
from .test_hostile import MODULE_LOGGER, logger, logs, start_tail, stop


def logger_lines(bus: Bus, *lines: str) -> None:
    r = subprocess.run([sys.executable, "-m", MODULE_LOGGER, "--timeout", "10"], input="".join(f"{x}\n" for x in lines),
                       env={**os.environ, **bus.env}, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "spooled" not in r.stderr, r.stderr


def until_heard(bus: Bus, out: Lines, first: int) -> list[str]:
    """Send "i <n>" from `first` on, one at a time, until the tail prints one."""
    n = first
    deadline = time.monotonic() + 60
    while not out.lines:
        assert time.monotonic() < deadline, "the tail never joined"
        logger(bus, f"i {n}")
        n += 1
        end = time.monotonic() + 1.0
        while not out.lines and time.monotonic() < end:
            time.sleep(0.02)
    time.sleep(0.5)  # let the repaired lines that follow the first one come out
    return logs(out.lines)


def consecutive(got: list[str]) -> bool:
    return got == [f"i {n}" for n in range(1, len(got) + 1)]


@pytest.mark.parametrize("resume", [False, True], ids=["tail", "first run of --resume"])
def test_tail_started_before_its_relay_misses_nothing(tmp_path: Path, gpg_key, resume: bool):
    """The slow joiner: a tail waiting for its relay, three messages sent as
    soon as the relay's socket appears, the tail's SUB socket still
    reconnecting.  The first message it does hear names the stream and its
    replay endpoint, and everything since the tail's start is fetched first."""
    bus = Bus(tmp_path / "bus", gpg_key)
    proc, out = start_tail(bus, "--endpoint", bus.endpoint, *(["--resume", "early"] if resume else []))
    try:
        bus.start()
        logger_lines(bus, "i 1", "i 2", "i 3")
        got = until_heard(bus, out, 4)
        assert got[:3] == ["i 1", "i 2", "i 3"] and consecutive(got), got
        assert not any("gap" in x for x in got)
    finally:
        stop(proc)
        bus.close()


def test_announced_publisher_is_asked_at_once(tmp_path: Path, gpg_key, bus: Bus):
    """A publisher known with its replay endpoint (an endpoints file, or DNS)
    is asked for what it sent since the start even if nothing more comes."""
    endpoints = tmp_path / "endpoints"
    endpoints.write_text(f"{bus.endpoint} replay={bus.replay}\n")
    sub = Subscriber([], verifier=Verifier(SequoiaKeyring.from_files([gpg_key.public_file])),
                     discovery=_file_discovery(endpoints), catchup_interval=0.5, since=time.time() - 1)
    try:
        logger_lines(bus, "only", "these")
        got = _receive(sub, 2)
        assert [m.body["log"] for m in got] == ["only", "these"]
        assert all(m.replayed for m in got)
    finally:
        sub.close()


def _file_discovery(path: Path):  # type: ignore[no-untyped-def]
    from debpulse.emitters.discovery import Discovery

    return Discovery(endpoints=[], srv_domains=[], endpoints_file=path)


def _receive(sub: Subscriber, n: int, timeout: float = 30) -> list[Received]:
    got: list[Received] = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        item = sub.receive(timeout=0.2)
        if isinstance(item, Received):
            got.append(item)
        assert not isinstance(item, Gap), item
    return got


def test_since_fetches_what_was_published_before(bus: Bus):
    logger_lines(bus, "before 1", "before 2")
    proc, out = start_tail(bus, "--endpoint", bus.endpoint, "--since", "10m")
    try:
        logger(bus, "after")
        out.wait(lambda lines: "after" in logs(lines))
        assert logs(out.lines) == ["before 1", "before 2", "after"]
    finally:
        stop(proc)


def capture(bus: Bus, message: str) -> list[bytes]:
    """A genuine frame set off the wire, as an attacker on the network sees it."""
    sock = zmq.Context.instance().socket(zmq.SUB)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.connect(bus.endpoint)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            logger(bus, message)
            if sock.poll(1000):
                return sock.recv_multipart()
        raise AssertionError("no frame captured")
    finally:
        sock.close(0)


@pytest.mark.parametrize("scope", ["fedmsg", "envelope"])
def test_unsigned_fields_cannot_stop_delivery_or_fake_a_loss(bus: Bus, gpg_key, scope: str):
    """A genuine message sent again with seq_id + 1,000,000 (and a new msg_id)
    once made the subscriber report a million lost messages and drop every
    later genuine one: under the fedmsg scope those fields are unsigned."""
    if scope == "fedmsg":
        bus.stop(signal.SIGTERM)
        bus.start("--fedmsg-scope")
    attacker = AttackerSocket()
    keyring = SequoiaKeyring.from_files([gpg_key.public_file])
    sub = Subscriber([bus.endpoint, attacker.endpoint], verifier=Verifier(keyring, scopes=("envelope", "fedmsg")),
                     catchup_interval=0.5)
    sub.follow(bus.replay)
    try:
        frames = capture(bus, "genuine 1")
        doc = json.loads(frames[1])
        doc["seq_id"] += 1_000_000
        doc["msg_id"] = env.new_msg_id()
        forged = [frames[0], json.dumps(doc).encode()]
        signer = SequoiaSigner.from_file(gpg_key.secret_file)
        heard: list = []

        def seen() -> bool:
            item = sub.receive(timeout=0.05)
            while item is not None:
                heard.append(item)
                item = sub.receive(timeout=0.05)
            return any(isinstance(i, Received) and i.body.get("log", "").startswith("probe") for i in heard)
        attacker.send_until([forged], lambda n: signed_frames(signer, f'{{"log":"probe {n}"}}'), seen)
        for n in (2, 3):
            logger(bus, f"genuine {n}")
        deadline = time.monotonic() + 30
        while sum(isinstance(i, Received) and i.body["log"] in ("genuine 2", "genuine 3") for i in heard) < 2:
            assert time.monotonic() < deadline, heard
            seen()
        assert not [i for i in heard if isinstance(i, Gap)]
        genuine = [i.body["log"] for i in heard if isinstance(i, Received) and i.body["log"].startswith("genuine")]
        assert genuine.count("genuine 1") == 1 and genuine[-2:] == ["genuine 2", "genuine 3"], genuine
        assert sub.counts.get("duplicate-msg-id" if scope == "fedmsg" else "bad-signature", 0) >= 1, sub.counts
    finally:
        sub.close()
        attacker.close()


CONSUMER = """\
import sys, time
from debpulse.emitters.api import subscribe
from debpulse.emitters.config import Config
from debpulse.emitters import systemd

endpoint, keyring, hang_at = sys.argv[1:4]
messages = subscribe(endpoints=[endpoint], keyring=keyring, resume="importer", config=Config())
systemd.notify("READY=1")
for m in messages:
    print("handling", m.body["log"], flush=True)
    if m.body["log"] == hang_at:
        time.sleep(3600)          # killed here, in the middle of handling it
    print("done", m.body["log"], flush=True)
"""


def test_subscribe_is_at_least_once(bus: Bus, tmp_path: Path):
    from testbus import Notify

    script = tmp_path / "consumer.py"
    script.write_text(CONSUMER)

    def start(hang_at: str) -> tuple[subprocess.Popen, Lines]:
        notify = Notify(tmp_path)
        proc = subprocess.Popen([sys.executable, str(script), bus.endpoint, str(bus.key.public_file), hang_at],
                                env={**os.environ, **bus.env, "NOTIFY_SOCKET": str(notify.path)},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        notify.wait_for("READY=1", proc, timeout=60)
        notify.close()
        notify.path.unlink()
        return proc, Lines(proc)

    proc, out = start("3")
    logger_lines(bus, "1", "2", "3", "4", "5")
    out.wait(lambda lines: "handling 3" in lines)
    proc.kill()
    proc.wait(10)
    assert out.lines == ["handling 1", "done 1", "handling 2", "done 2", "handling 3"]
    proc, out = start("never")
    try:
        out.wait(lambda lines: "done 5" in lines)
        assert out.lines == ["handling 3", "done 3", "handling 4", "done 4", "handling 5", "done 5"]
    finally:
        proc.kill()
        proc.wait(10)


def test_spooled_events_are_published_before_newer_ones(bus: Bus):
    """A producer whose event went to the spool (the relay did not answer in
    time) and whose next went straight through: the relay publishes them in
    the producer's order, not the spool's next drain after the newer one."""
    from debpulse.emitters.event import Event
    from debpulse.emitters.options import BusOptions
    from debpulse.emitters.relay_client import RelayClient

    sub = bus.subscriber()
    spool = Spool(bus.state / "spool")
    client = RelayClient(BusOptions(name="test", relay=bus.relay_socket, spool=spool.directory, relay_timeout=10))
    expected = []
    for n in range(5):
        spool.put({"topic": "logger.log", "body": {"log": f"spooled {n}"}, "key": f"spooled-{n}",
                   "origin": "test", "spooled_at": time.time()})
        assert client.emit_many([Event("logger.log", {"log": f"direct {n}"}, origin="test")]) == "relay"
        expected += [f"spooled {n}", f"direct {n}"]
    client.close()
    got = sub.wait(10)
    assert [m.body["log"] for m in got] == expected
