"""The relay as a real process, the logger and tail as real commands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from debpulse.emitters.spool import Spool


def run(bus, *args, stdin=None, timeout=20):
    return subprocess.run([sys.executable, "-m", *args], input=stdin, capture_output=True, text=True,
                          env={**os.environ, **bus.env}, timeout=timeout)


def logger(bus, *args, stdin=None):
    return run(bus, "debpulse.emitters.commands.logger", *args, stdin=stdin)


def test_logger_to_subscriber_verified(bus):
    sub = bus.subscriber()
    r = logger(bus, "--message", "hello from the shell")
    assert r.returncode == 0, r.stderr
    [m] = sub.wait(1)
    assert m.topic == "org.debian.dev.logger.log"
    assert m.body == {"log": "hello from the shell"}
    assert (m.verdict.ok, m.verdict.scope, m.verdict.signer) == (True, "envelope", bus.key.fingerprint)
    assert m.envelope["seq_id"] == 1 and m.envelope["username"]


def test_logger_lines_and_json_input(bus):
    sub = bus.subscriber()
    assert logger(bus, stdin="one\ntwo\nthree\n").returncode == 0
    r = logger(bus, "--json-input", "--modname", "dak", "--topic", "package.note",
               stdin='{"source": "hello"}\n\n{"source": "gawk"}\n')
    assert r.returncode == 0, r.stderr
    got = sub.wait(5)
    assert [m.body for m in got] == [{"log": "one"}, {"log": "two"}, {"log": "three"},
                                     {"source": "hello"}, {"source": "gawk"}]
    assert [m.envelope["seq_id"] for m in got] == [1, 2, 3, 4, 5]


def test_tail_prints_summaries_and_json(bus):
    tail = subprocess.Popen(
        [sys.executable, "-m", "debpulse.emitters.commands.tail", "--endpoint", bus.endpoint,
         "--keyring", str(bus.key.public_file), "--count", "2", "--timeout", "15"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **bus.env})
    jtail = subprocess.Popen(
        [sys.executable, "-m", "debpulse.emitters.commands.tail", "--endpoint", bus.endpoint,
         "--keyring", str(bus.key.public_file), "--count", "2", "--json", "--timeout", "15"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **bus.env})
    time.sleep(1.5)  # let both SUB sockets join; messages before that are not for a plain tail
    assert logger(bus, "--message", "first").returncode == 0
    assert logger(bus, "--message", "second").returncode == 0
    out, err = tail.communicate(timeout=20)
    assert tail.returncode == 0, err
    lines = out.splitlines()
    assert len(lines) == 2 and "logger.log: first" in lines[0] and "[ok envelope" in lines[0]
    jout, _ = jtail.communicate(timeout=20)
    docs = [json.loads(line) for line in jout.splitlines()]
    assert [d["envelope"]["msg"]["log"] for d in docs] == ["first", "second"]
    assert all(d["verification"] == {"ok": True, "reason": "ok", "scope": "envelope",
                                     "signer": bus.key.fingerprint} for d in docs)


def test_relay_absent_logger_spools_and_exits_zero_at_once(bus):
    bus.stop()
    t0 = time.monotonic()
    r = logger(bus, "--message", "while the relay was down")
    elapsed = time.monotonic() - t0
    assert r.returncode == 0
    assert "spooled" in r.stderr
    assert elapsed < 5  # interpreter start-up included; the wait itself is bounded by 1 s
    assert len(Spool(bus.state / "spool")) == 1
    bus.start()
    sub = bus.subscriber()
    sub.sub.follow(bus.replay, after=0)
    [m] = sub.wait(1)
    assert m.body == {"log": "while the relay was down"}
    deadline = time.monotonic() + 5  # removed right after it is stored and sent
    while len(Spool(bus.state / "spool")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(Spool(bus.state / "spool")) == 0


def test_hung_relay_does_not_hang_the_logger(bus):
    sub = bus.subscriber()
    os.kill(bus.proc.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        r = logger(bus, "--message", "relay frozen", "--timeout", "0.5")
        assert r.returncode == 0 and time.monotonic() - t0 < 5
        assert "spooled" in r.stderr
    finally:
        os.kill(bus.proc.pid, signal.SIGCONT)
    got = sub.wait(1)
    assert [m.body for m in got] == [{"log": "relay frozen"}]
    assert not sub.wait(1, timeout=3)  # and only once


def test_relay_refuses_a_body_that_does_not_match_its_type(bus):
    r = logger(bus, "--json-input", stdin='{"not_log": 1}\n')
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "log" in r.stderr and "Traceback" not in r.stderr


def test_bad_usage_and_configuration_exit_2_in_one_line(bus, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[bus]\nenvironment = "prod"\n')
    for args in (["--config", str(bad), "--message", "x"], ["--modname", "Bad Name", "--message", "x"],
                 ["--config", str(tmp_path / "missing.toml"), "--message", "x"], ["--no-such-flag"]):
        r = logger(bus, *args)
        assert r.returncode == 2, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    r = run(bus, "debpulse.emitters.commands.tail", "--count", "0")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1


def test_python_api_publish_and_subscribe(bus, monkeypatch):
    for k, v in bus.env.items():
        monkeypatch.setenv(k, v)
    from debpulse.emitters.api import publish

    sub = bus.subscriber()
    assert publish("package.note", {"source": "hello"}, modname="dak") == "relay"
    [m] = sub.wait(1)
    assert m.topic == "org.debian.dev.dak.package.note" and m.body == {"source": "hello"}


def test_python_api_subscribe_yields_verified_messages(bus, monkeypatch):
    import threading

    for k, v in bus.env.items():
        monkeypatch.setenv(k, v)
    from debpulse.emitters.api import publish, subscribe

    got = []

    def consume():
        for message in subscribe(["org.debian.dev.dak."], endpoints=[bus.endpoint],
                                 keyring=str(bus.key.public_file)):
            got.append(message)
            return

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    for n in range(50):  # until the new SUB socket has joined
        publish("package.note", {"n": n}, modname="dak")
        publish("log", {"log": "not subscribed"}, modname="logger")
        t.join(0.2)
        if got:
            break
    assert got and got[0].verdict.ok and got[0].topic == "org.debian.dev.dak.package.note"
    assert got[0].summary
