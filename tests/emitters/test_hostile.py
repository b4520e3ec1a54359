"""No frame, submission or message takes a component down: each hostile
input against the real process (relay, tail, trigger, subscribe()), and a
valid message after it that must still arrive, verified."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import zmq
from testbus import Notify, free_port

from debpulse.emitters import envelope as env
from debpulse.emitters.outbox import Outbox
from debpulse.emitters.signing import SequoiaKeyring, SequoiaSigner
from debpulse.emitters.subscriber import Gap, Received, Subscriber
from debpulse.emitters.verify import Verifier

from .hostile import AttackerSocket, Lines, good_frames, hostile_frames, nested_text, signed_frames

MODULE_TAIL = "debpulse.emitters.commands.tail"
MODULE_LOGGER = "debpulse.emitters.commands.logger"


def logger(bus, message: str) -> None:
    r = subprocess.run([sys.executable, "-m", MODULE_LOGGER, "--message", message, "--timeout", "10"],
                       env={**os.environ, **bus.env}, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "spooled" not in r.stderr, r.stderr


def start_tail(bus, *args: str) -> tuple[subprocess.Popen, Lines]:
    """debpulse-tail --json, once it says it is subscribed (READY=1); its
    stderr goes to a file (`stop` returns it)."""
    work = Path(tempfile.mkdtemp(prefix="tail-", dir="/tmp"))
    notify = Notify(work)
    err = open(work / "stderr", "w+")  # noqa: SIM115 (closed by stop)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", MODULE_TAIL, "--keyring", str(bus.key.public_file), "--json", *args],
            env={**os.environ, **bus.env, "NOTIFY_SOCKET": str(notify.path)},
            stdout=subprocess.PIPE, stderr=err, text=True)
        proc.err = err  # type: ignore[attr-defined]
        proc.work = work  # type: ignore[attr-defined]
        notify.wait_for("READY=1", proc, timeout=60)
    finally:
        notify.close()
    return proc, Lines(proc)


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> str:
    """Stop the tail (or let it end by itself: sig 0) and return its stderr."""
    if sig and proc.poll() is None:
        proc.send_signal(sig)
    proc.wait(60)
    err = proc.err  # type: ignore[attr-defined]
    err.seek(0)
    text = err.read()
    err.close()
    shutil.rmtree(proc.work, ignore_errors=True)  # type: ignore[attr-defined]
    return text


def logs(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        doc = json.loads(line)
        out.append(doc["envelope"]["msg"]["log"] if "envelope" in doc else f"gap {doc['gap']['first']}")
    return out


@pytest.fixture
def signer(gpg_key) -> SequoiaSigner:
    return SequoiaSigner.from_file(gpg_key.secret_file)


@pytest.fixture
def attacker():
    a = AttackerSocket()
    yield a
    a.close()


def test_tail_survives_every_hostile_frame(bus, signer, attacker):
    proc, out = start_tail(bus, "--endpoint", bus.endpoint, "--endpoint", attacker.endpoint)
    try:
        hostile = hostile_frames(signer)
        attacker.send_until(list(hostile.values()), lambda n: good_frames(signer, f"probe {n}"),
                            lambda: any("probe" in line for line in out.lines))
        logger(bus, "after the attack")
        out.wait(lambda lines: "after the attack" in logs(lines))
        assert proc.poll() is None
        assert all(x.startswith("probe") or x == "after the attack" for x in logs(out.lines))
    finally:
        err = stop(proc)
    assert proc.returncode == 0, err
    for reason in ("too-deep", "not-json", "bad-timestamp", "oversized", "bad-types"):
        assert reason in err, (reason, err[-3000:])
    assert "Traceback" not in err


def test_tail_show_rejected_survives_bad_times_and_signatures(bus, signer, attacker):
    proc, out = start_tail(bus, "--endpoint", bus.endpoint, "--endpoint", attacker.endpoint, "--show-rejected")
    try:
        forged = good_frames(signer, "forged")
        forged[1] = forged[1].replace(b'"forged"', b'"f0rged"')  # the signature no longer matches
        attacker.send_until([*hostile_frames(signer).values(), forged], lambda n: good_frames(signer, f"probe {n}"),
                            lambda: any("probe" in line for line in out.lines))
        logger(bus, "after the attack")
        out.wait(lambda lines: "after the attack" in logs(lines))
        docs = [json.loads(line) for line in out.lines]
        assert any(d["verification"]["reason"] == "bad-signature" for d in docs)
        assert proc.poll() is None
    finally:
        err = stop(proc)
    assert proc.returncode == 0 and "Traceback" not in err, err


def relay_answer(bus, *parts: bytes) -> dict:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(bus.relay_socket)
    try:
        sock.send_multipart(list(parts))
        assert sock.poll(20000), "the relay did not answer"
        return json.loads(sock.recv())
    finally:
        sock.close(0)


def submission(body_text: str, topic: str = "logger.log") -> bytes:
    return ('{"topic":"' + topic + '","body":' + body_text + ',"key":"k","origin":"test"}').encode()


@pytest.mark.parametrize(("part", "says"), [
    (b"[" * 100_000 + b"]" * 100_000, "deep"),
    (submission(nested_text(1000)), "deep"),
    (submission(nested_text(65)), "deep"),
    (submission('{"log":"' + "x" * env.MAX_FRAME_BYTES + '"}'), "bytes"),
    (submission('{"log":"' + "x" * (env.MAX_BODY_BYTES - 5) + '"}'), "bytes"),
    (submission('{"log":NaN}'), "NaN"),
    (submission('{"log":"x"}', topic="Not A Topic"), "topic"),
    (submission('{"no-log":1}'), "log"),
    (b'"just a string"', "needs a topic"),
    (b"\xff\xfe", "utf"),
])
def test_relay_refuses_what_subscribers_could_not_take(bus, part, says):
    sub = bus.subscriber()
    answer = relay_answer(bus, part)
    assert answer["ok"] is False and says.lower() in answer["error"].lower(), answer
    assert len(answer["error"]) < 300 and "\n" not in answer["error"]
    # The relay is still there, and published nothing for it.
    assert relay_answer(bus, submission('{"log":"valid"}'))["ok"] is True
    [m] = sub.wait(1)
    assert m.body == {"log": "valid"} and m.envelope["seq_id"] == 1
    assert bus.proc is not None and bus.proc.poll() is None


def test_poison_already_in_an_outbox_is_reported_not_fatal(bus, signer):
    """An older relay stored a body nested 1,000 deep: every subscriber that
    repaired its stream died, and --resume died again on each restart."""
    proc, out = start_tail(bus, "--endpoint", bus.endpoint, "--resume", "poisoned")
    logger(bus, "one")
    out.wait(lambda lines: logs(lines) == ["one"])
    stop(proc)
    stream = json.loads(out.lines[0])["envelope"]["publisher"]
    bus.stop(signal.SIGTERM)
    outbox = Outbox(bus.state / "relay" / "outbox.sqlite")

    def poison(seq: int) -> tuple[dict, bytes]:
        frames = signed_frames(signer, nested_text(1000), seq_id=seq, publisher=stream, replay=bus.replay)
        return {"msg_id": f"2026-poison-{seq}", "topic": "org.debian.dev.logger.log", "timestamp": 1}, frames[1]

    outbox.append_many([("poison", poison)])
    outbox.close()
    bus.start()
    logger(bus, "two")
    for _ in range(2):  # the first restart meets the poison; the second must not repeat anything
        proc, out = start_tail(bus, "--endpoint", bus.endpoint, "--resume", "poisoned", "--timeout", "5")
        err = stop(proc, 0)
        out.finish()
        assert proc.returncode in (0, 1) and "Traceback" not in err, err
        if _ == 0:
            assert logs(out.lines) == ["gap 2", "two"], out.lines
            gap = json.loads(out.lines[0])["gap"]
            assert gap["permanent"] and (gap["first"], gap["last"]) == (2, 2)
        else:
            assert out.lines == []


def test_hostile_replay_answers_are_a_gap_not_a_crash(gpg_key, signer, attacker):
    """A signed envelope names a replay endpoint that answers garbage."""
    evil = zmq.Context.instance().socket(zmq.REP)
    evil.setsockopt(zmq.LINGER, 0)
    replay_endpoint = f"tcp://127.0.0.1:{free_port()}"
    evil.bind(replay_endpoint)
    sub = Subscriber([attacker.endpoint], verifier=Verifier(SequoiaKeyring.from_files([gpg_key.public_file])),
                     catchup_interval=3600, replay_timeout=1.0)
    answers = [[b"[" * 50_000 + b"]" * 50_000], [b'{"status":NaN}'], [b'{"status":[1]}'],
               [b'{"topic":"x","msg":{},"timestamp":1e999,"msg_id":"y"}'], [b"\xff"]]

    def serve() -> None:
        n = 0
        while not stop_serving.is_set():
            if evil.poll(100):
                evil.recv()
                evil.send_multipart(answers[n % len(answers)])
                n += 1

    stop_serving = threading.Event()
    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        got: list = []

        def probe(n: int) -> list[bytes]:
            # Sequence numbers jump by ten: a gap each time, asked of the evil endpoint.
            return signed_frames(signer, env.canonical({"log": f"probe {n}"}).decode(), seq_id=10 * n,
                                 publisher="mallory@x/1", replay=replay_endpoint)

        def seen() -> bool:
            item = sub.receive(timeout=0.05)
            while item is not None:
                got.append(item)
                item = sub.receive(timeout=0.05)
            return sum(isinstance(i, Received) for i in got) >= 3
        attacker.send_until([], probe, seen, timeout=60)
        assert any(isinstance(i, Gap) for i in got)
        assert all(i.body["log"].startswith("probe") for i in got if isinstance(i, Received))
    finally:
        stop_serving.set()
        server.join(5)
        sub.close()
        evil.close(0)


def test_trigger_runs_only_for_valid_messages(bus, signer, attacker, tmp_path: Path):
    out = tmp_path / "ran.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "debpulse.consumers.trigger.cli", "--endpoint", bus.endpoint,
         "--endpoint", attacker.endpoint, "--keyring", str(bus.key.public_file), "--topic", "logger.log",
         "--", "/bin/sh", "-c", f"cat >> {out}"],
        env={**os.environ, **bus.env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def ran() -> list[str]:
        return [json.loads(line)["msg"]["log"] for line in out.read_text().splitlines()] if out.exists() else []
    try:
        attacker.send_until(list(hostile_frames(signer).values()), lambda n: good_frames(signer, f"probe {n}"),
                            lambda: any(x.startswith("probe") for x in ran()))
        logger(bus, "after the attack")
        deadline = time.monotonic() + 30
        while "after the attack" not in ran() and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read()  # type: ignore[union-attr]
            time.sleep(0.05)
        assert "after the attack" in ran()
        assert all(x.startswith("probe") or x == "after the attack" for x in ran())
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert "Traceback" not in err, err


def test_subscribe_api_survives_hostile_frames(bus, signer, attacker):
    from debpulse.emitters.api import subscribe
    from debpulse.emitters.config import Config

    got: list = []
    with subscribe(endpoints=[bus.endpoint, attacker.endpoint], keyring=str(bus.key.public_file),
                   config=Config()) as messages:
        def seen() -> bool:
            item = messages.receive(timeout=0.05)
            while item is not None:
                got.append(item)
                item = messages.receive(timeout=0.05)
            return any(isinstance(i, Received) and i.body["log"].startswith("probe") for i in got)

        attacker.send_until(list(hostile_frames(signer).values()), lambda n: good_frames(signer, f"probe {n}"), seen)
        logger(bus, "after the attack")
        deadline = time.monotonic() + 30
        while not any(isinstance(i, Received) and i.body["log"] == "after the attack" for i in got):
            assert time.monotonic() < deadline
            seen()
