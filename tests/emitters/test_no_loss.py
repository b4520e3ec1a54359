"""Nothing lost, nothing repeated: real processes, real kills."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from debpulse.emitters.config import Config
from debpulse.emitters.event import Event
from debpulse.emitters.options import BusOptions
from debpulse.emitters.outbox import Outbox, OutboxError
from debpulse.emitters.publisher import Publisher
from debpulse.emitters.relay_client import RelayClient
from debpulse.emitters.signing import SequoiaKeyring
from debpulse.emitters.subscriber import Gap, Received, Subscriber
from debpulse.emitters.verify import Verifier


def client(bus) -> RelayClient:
    config = Config({"bus": {"state_dir": str(bus.state)}})
    opts = BusOptions.from_args(argparse.Namespace(relay=bus.relay_socket), config, name="test")
    assert opts.spool_dir == bus.state / "spool"
    return RelayClient(opts)


def drain(sub, n, timeout=60.0):
    """Received items until n have come, with any Gap notices."""
    got, gaps = [], []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        item = sub.receive(timeout=0.5)
        if isinstance(item, Received):
            got.append(item)
        elif isinstance(item, Gap):
            gaps.append(item)
    return got, gaps


def test_relay_killed_in_a_burst_of_10000(bus):
    sub = bus.subscriber().sub
    c = client(bus)
    expected = [f"m{n:05d}" for n in range(10_000)]
    routes = []

    def burst():
        for i in range(0, len(expected), 100):
            routes.append(c.emit_many([Event("logger.log", {"log": x}) for x in expected[i:i + 100]]))

    t = threading.Thread(target=burst)
    t.start()
    got, _ = drain(sub, 2_000)
    bus.stop(signal.SIGKILL)           # in the middle of the burst
    t.join(60)
    assert "spool" in routes           # the rest went to the spool, at once
    bus.start()                        # drains the spool, same outbox, same stream
    more, gaps = drain(sub, 10_000 - len(got))
    got += more
    bodies = [m.body["log"] for m in got]
    assert bodies == expected          # all, in order, each once
    seqs = [m.seq_id for m in got]
    assert seqs == list(range(1, 10_001))
    assert not gaps
    assert all(m.verdict.ok for m in got)


def tail_proc(bus, out, name):
    return subprocess.Popen(
        [sys.executable, "-m", "debpulse.emitters.commands.tail", "--endpoint", bus.endpoint, "--keyring",
         str(bus.key.public_file), "--json", "--resume", name],
        stdout=open(out, "a"), stderr=subprocess.DEVNULL, env={**os.environ, **bus.env})


def test_tail_killed_and_resumed_misses_and_repeats_nothing(bus, tmp_path):
    out = tmp_path / "tail.jsonl"
    c = client(bus)
    c.emit(Event("logger.log", {"log": "before the first start"}))  # a resume name starts at what exists
    tail = tail_proc(bus, out, "resume-test")
    time.sleep(1.5)
    expected = [f"r{n:03d}" for n in range(300)]
    for i, x in enumerate(expected):
        c.emit(Event("logger.log", {"log": x}))
        if i == 120:
            tail.send_signal(signal.SIGTERM)
            tail.wait(10)
        if i == 200:
            tail = tail_proc(bus, out, "resume-test")
        time.sleep(0.005)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        lines = out.read_text().splitlines()
        if len(lines) >= 300:
            break
        time.sleep(0.2)
    tail.send_signal(signal.SIGTERM)
    tail.wait(10)
    logs = [json.loads(line)["envelope"]["msg"]["log"] for line in out.read_text().splitlines()]
    logs = [x for x in logs if x != "before the first start"]
    assert logs == expected


def test_subscriber_slower_than_the_high_water_mark_is_repaired(gpg_key, tmp_path):
    from testbus import Bus

    b = Bus(tmp_path / "bus", gpg_key)
    cfg = tmp_path / "hwm.toml"
    cfg.write_text("[bus]\nhigh_water_mark = 20\n")
    b.start("--config", str(cfg))
    try:
        verifier = Verifier(SequoiaKeyring.from_files([gpg_key.public_file]))
        sub = Subscriber([b.endpoint], verifier=verifier, hwm=20, catchup_interval=0.5)
        sub.follow(b.replay)
        time.sleep(0.5)
        c = client(b)
        expected = [f"s{n:04d}" for n in range(3000)]
        for i in range(0, 3000, 500):
            c.emit_many([Event("logger.log", {"log": x}) for x in expected[i:i + 500]])
        # The subscriber has not read anything: its queue held 20, the rest was dropped.
        got, gaps = drain(sub, 3000)
        assert [m.body["log"] for m in got] == expected
        assert any(m.replayed for m in got) and not gaps
        sub.close()
    finally:
        b.close()


def test_replay_endpoint_down_then_back(gpg_key, tmp_path):
    from testbus import Bus, connect_and_wait

    from debpulse.emitters import transport

    b = Bus(tmp_path / "bus", gpg_key)
    replay_sock = tmp_path / "bus" / "replay.sock"
    b.replay = f"ipc://{replay_sock}"
    b.start()
    try:
        verifier = Verifier(SequoiaKeyring.from_files([gpg_key.public_file]))
        sub = Subscriber([b.endpoint], verifier=verifier, catchup_interval=0.5)
        sub.follow(b.replay)
        c = client(b)
        c.emit(Event("logger.log", {"log": "a"}))
        assert [m.body["log"] for m in drain(sub, 1)[0]] == ["a"]
        # A network cut for this subscriber: its socket goes, with whatever
        # was on the way (a disconnect would take effect only some time later).
        sub._sock.close(0)
        c.emit_many([Event("logger.log", {"log": f"cut{n}"}) for n in range(5)])
        os.rename(replay_sock, str(replay_sock) + ".off")      # the replay endpoint goes away
        sub._sock = transport.connect_sub([], sub.topics, 1000)  # the network is back
        connect_and_wait(sub._sock, b.endpoint)
        # The relay may still send before its socket has taken the new
        # subscription (a busy machine): "after" again until one arrives.
        items = []
        deadline = time.monotonic() + 30
        sent = 0
        while time.monotonic() < deadline and not any(isinstance(i, Received) and i.body["log"] == "after"
                                                      for i in items):
            c.emit(Event("logger.log", {"log": "after"}))
            sent += 1
            item = sub.receive(timeout=0.5)
            while item is not None:
                items.append(item)
                item = sub.receive(timeout=0.05)
        # New messages still arrive, and the consumer is told what is missing:
        # the cut ones the relay had sent before the socket came back (on a
        # busy machine it may send some of them only after: those arrive
        # live), and any "after" sent before it had joined again.
        received = [i for i in items if isinstance(i, Received)]
        gaps = [i for i in items if isinstance(i, Gap)]
        assert any(r.body["log"] == "after" for r in received)
        assert not any(g.permanent for g in gaps)                # the replay endpoint is only away
        missing = {n for g in gaps for n in range(g.first, g.last + 1)}
        live = {r.seq_id for r in received}
        assert not missing & live
        assert missing | live == set(range(2, max(live) + 1))   # each either came or is reported
        os.rename(str(replay_sock) + ".off", replay_sock)      # back
        every = set(range(2, 2 + 5 + sent))                     # five cuts, then each "after"
        later = []
        deadline = time.monotonic() + 30
        while {m.seq_id for m in received + later} != every and time.monotonic() < deadline:
            item = sub.receive(timeout=0.5)
            if isinstance(item, Received):
                later.append(item)
        delivered = sorted(received + later, key=lambda m: m.seq_id)
        assert [m.seq_id for m in delivered] == sorted(every)   # each once, none lost
        assert [m.body["log"] for m in delivered] == [f"cut{n}" for n in range(5)] + ["after"] * sent
        assert all(m.replayed for m in delivered if m.seq_id in missing)
        assert sub.receive(timeout=1.5) is None                 # each once
        sub.close()
    finally:
        b.close()


def test_pruned_range_is_reported_as_lost(gpg_key, tmp_path):
    args = argparse.Namespace(publish=f"ipc://{tmp_path}/pub.sock", signing_key=str(gpg_key.secret_file),
                              state_dir=str(tmp_path))
    pub = Publisher(BusOptions.from_args(args, Config(), name="pruning"))
    try:
        verifier = Verifier(SequoiaKeyring.from_files([gpg_key.public_file]))
        sub = Subscriber([], verifier=verifier, catchup_interval=0.5)
        sub.follow(pub.replay_endpoint, after=0)
        pub.publish_events([Event("logger.log", {"log": str(n)}) for n in range(1, 101)])
        assert pub.outbox.prune(max_count=10) == 90
        items = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len([i for i in items if isinstance(i, Received)]) < 10:
            item = sub.receive(timeout=0.5)
            if item is not None:
                items.append(item)
        assert isinstance(items[0], Gap) and (items[0].first, items[0].last, items[0].permanent) == (1, 90, True)
        assert [i.body["log"] for i in items[1:]] == [str(n) for n in range(91, 101)]
        sub.close()
    finally:
        pub.close()


def test_corrupted_or_missing_outbox_is_a_clear_error(bus):
    bus.stop(signal.SIGTERM)
    outbox = bus.state / "relay" / "outbox.sqlite"
    assert Outbox(outbox).last_seq() == 0
    for f in bus.state.glob("relay/outbox.sqlite-*"):
        f.unlink()
    outbox.write_bytes(b"this is not a database" * 100)
    with pytest.raises(OutboxError, match="corrupted outbox"):
        Outbox(outbox)
    r = subprocess.run([sys.executable, "-m", "debpulse.emitters.commands.relay", "--publish", bus.endpoint,
                        "--signing-key", str(bus.key.secret_file)], env={**os.environ, **bus.env},
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 2 and "corrupted outbox" in r.stderr and "Traceback" not in r.stderr
    outbox.unlink()  # missing, while the stream marker says it existed
    r = subprocess.run([sys.executable, "-m", "debpulse.emitters.commands.relay", "--publish", bus.endpoint,
                        "--signing-key", str(bus.key.secret_file)], env={**os.environ, **bus.env},
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 2 and "outbox missing" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_outbox_is_gap_free_and_idempotent(tmp_path):
    ob = Outbox(tmp_path / "o.sqlite")
    def mk(n):
        def build(seq):
            e = {"msg_id": f"id-{n}", "topic": "t", "timestamp": 1.0, "seq_id": seq}
            return e, json.dumps(e).encode()
        return build
    out = ob.append_many([("k1", mk(1)), ("k2", mk(2)), ("k1", mk(3))])
    assert [(e["seq_id"], new) for e, _, new in out] == [(1, True), (2, True), (1, False)]
    assert ob.last_seq() == 2
    assert [e["seq_id"] for e in ob.query({"seq_id_range": [1, None]})] == [1, 2]
    assert [e["seq_id"] for e in ob.query({"msg_ids": ["id-2"]})] == [2]
    assert [e["seq_id"] for e in ob.query({"time": [0, 2]})] == [1, 2]
    with pytest.raises(ValueError):
        ob.query({"nonsense": 1})
    assert sqlite3.connect(tmp_path / "o.sqlite").execute("PRAGMA journal_mode").fetchone()[0] == "wal"
