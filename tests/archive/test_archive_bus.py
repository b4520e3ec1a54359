"""debpulse-archive end to end: the real relay, the archive as a process,
a real PostgreSQL, and debpulse-web served by uvicorn, queried over HTTP."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from urllib.parse import quote

import psycopg
from bridge.samples import dak_events, debbugs_events, git_events, publish

from debpulse.emitters.event import Event
from debpulse.emitters.signing import SequoiaKeyring
from debpulse.emitters.verify import Verifier

STATE_UPDATE = {"architecture": "arm64", "package": "xfsprogs", "version": "6.1.0-1", "suite": "sid",
                "old_state": "Needs-Build", "new_state": "Building", "action": "--take",
                "user": "buildd_arm64-conova-01", "real_user": "buildd", "time": "2024-05-01T10:00:00Z"}


def stored(dsn: str, where: str = "true") -> list[str]:
    with psycopg.connect(dsn) as c:
        return [r[0] for r in c.execute(f"SELECT m.body->>'log' FROM messages m WHERE {where}")]  # noqa: S608


def join(bus, dsn: str, archive, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    """Until the archive's SUB socket has joined the relay (what comes
    before is not offered to it): probes until one is stored."""
    deadline = time.monotonic() + timeout
    n = 0
    while time.monotonic() < deadline:
        assert archive.proc.poll() is None, archive.output()[-3000:]
        publish(bus, [Event("logger.log", {"log": f"probe {n}"})], name="probe")
        n += 1
        until = time.monotonic() + 0.5
        while time.monotonic() < until:
            if any(v.startswith("probe") for v in stored(dsn) if v):
                return
            time.sleep(0.05)
    raise AssertionError("the archive never joined: " + archive.output()[-3000:])


def wait_for(predicate, timeout: float = 30, what: str = "") -> float:  # type: ignore[no-untyped-def]
    t0 = time.monotonic()
    while not predicate():
        assert time.monotonic() - t0 < timeout, f"not within {timeout} s: {what}"
        time.sleep(0.02)
    return time.monotonic() - t0


def test_every_adapter_s_messages_are_stored_and_found(bus, archive_dsn, start_archive, start_web,
                                                       shared_fixtures, tmp_path, record_property):
    archive = start_archive("--resume", "samples")
    web = start_web()
    join(bus, archive_dsn, archive)
    events = (dak_events(shared_fixtures) + debbugs_events(shared_fixtures) + git_events(shared_fixtures, tmp_path)
              + [Event("wannabuild.package.state.update", STATE_UPDATE)])
    t0 = time.monotonic()
    publish(bus, events, name="samples")
    latency = wait_for(lambda: web.json("/raw?category=wannabuild")["total"] == 1, what="the wanna-build message")
    record_property("published_to_queryable_s", round(time.monotonic() - t0, 3))
    print(f"published -> queryable over HTTP: {latency:.3f} s")
    everything = web.json("/raw?not_category=logger&rows_per_page=100")
    assert everything["total"] == len(events)
    assert {m["topic"].split(".", 3)[3] for m in everything["raw_messages"]} == {e.topic for e in events}

    # package= and user= find every event about them, whoever published it.
    xfs = web.json("/raw?package=xfsprogs&rows_per_page=100")
    assert Counter(m["category"] for m in xfs["raw_messages"]) == {"dak": 1, "debbugs": 1, "wannabuild": 1}
    assert [m["topic"] for m in web.json("/raw?user=nathans")["raw_messages"]] == [
        "org.debian.dev.dak.package.accept"]
    assert web.json("/raw?user=nathans@debian.org")["total"] == 1  # a Debian address is its login
    assert web.json("/raw?user=buildd_arm64-conova-01")["raw_messages"][0]["agent_name"] == "buildd_arm64-conova-01"
    git = web.json("/raw?package=hello&agent=jane&rows_per_page=100")
    assert git["total"] == sum(e.topic.startswith("git.") for e in events) > 0
    assert web.json("/raw?package=hello&not_agent=jane")["total"] == 0

    # The verification result is kept, and the envelope verifies again.
    one = xfs["raw_messages"][0]
    assert one["verification"] == {"signer": bus.key.fingerprint, "scope": "envelope"}
    full = web.json(f"/id?id={quote(one['msg_id'])}")
    verifier = Verifier(SequoiaKeyring.from_files([bus.key.public_file]), window=0)
    assert verifier.check(full["envelope"], replayed=True).signer == bus.key.fingerprint
    v2 = web.json(f"/v2/id?id={quote(one['msg_id'])}")
    assert set(v2) == {"body", "headers", "id", "priority", "queue", "topic"} and v2["body"] == one["msg"]

    topics = {t["topic"]: t["count"] for t in web.json("/topics")["topics"]}
    assert topics["org.debian.dev.dak.package.accept"] == 1
    assert web.json("/messagecount")["messagecount"] == len(events) + sum(
        c for t, c in topics.items() if t.endswith("logger.log"))
    assert archive.stop() == 0


def _produce(bus, first: int, last: int, sent: list[int]) -> None:  # type: ignore[no-untyped-def]
    for n in range(first, last, 10):
        publish(bus, [Event("logger.log", {"log": f"m{i}"}) for i in range(n, n + 10)], name="stream")
        sent[0] = n + 10
        time.sleep(0.01)


def test_sigkill_and_restart_store_nothing_twice_and_miss_nothing(bus, archive_dsn, start_archive):
    archive = start_archive("--resume", "crash")
    join(bus, archive_dsn, archive)
    sent = [0]
    producer = threading.Thread(target=_produce, args=(bus, 0, 600, sent))
    producer.start()
    try:
        wait_for(lambda: sent[0] >= 200, what="the first 200 messages sent")
        archive.stop(signal.SIGKILL)  # mid-stream, mid-batch perhaps
        killed_at = sent[0]
        wait_for(lambda: sent[0] >= killed_at + 100, what="100 more while the archive is down")
        archive.start()
    finally:
        producer.join(60)
    _produce(bus, 600, 700, sent)
    wanted = {f"m{i}" for i in range(700)}
    wait_for(lambda: wanted <= set(stored(archive_dsn)), 60, "every message stored")
    logs = [v for v in stored(archive_dsn) if v and v.startswith("m")]
    assert len(logs) == len(set(logs)) == 700, archive.output()[-3000:]  # once each
    assert archive.stop() == 0


def test_postgres_restarted_under_the_archive_loses_nothing(bus, pg_server, archive_dsn, start_archive):
    archive = start_archive("--resume", "pg-restart")
    join(bus, archive_dsn, archive)
    sent = [0]
    producer = threading.Thread(target=_produce, args=(bus, 0, 600, sent))
    producer.start()
    try:
        wait_for(lambda: sent[0] >= 150, what="150 messages sent")
        pg_server.stop(signal.SIGKILL)  # a crash: recovery at the next start
        wait_for(lambda: sent[0] >= 300, what="more sent while the database is down")
        pg_server.start()
    finally:
        producer.join(60)
    wanted = {f"m{i}" for i in range(600)}
    wait_for(lambda: wanted <= set(stored(archive_dsn)), 60, "every message stored")
    logs = [v for v in stored(archive_dsn) if v and v.startswith("m")]
    assert len(logs) == len(set(logs)) == 600
    assert "database unavailable" in archive.output()
    assert archive.proc.poll() is None and archive.stop() == 0


def test_backfill_stores_what_the_publisher_still_holds(bus, archive_dsn, start_archive, tmp_path):
    import subprocess
    import sys

    publish(bus, [Event("logger.log", {"log": f"old{i}"}) for i in range(250)], name="before")
    argv = [sys.executable, "-m", "debpulse.consumers.archive.cli", "backfill", "--dsn", archive_dsn,
            "--replay", bus.replay, "--keyring", str(bus.key.public_file)]
    env = {**__import__("os").environ, **bus.env}
    first = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "250 stored, 0 already there" in first.stdout
    again = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert "0 stored, 250 already there" in again.stdout, again.stderr
    assert sorted(stored(archive_dsn)) == sorted(f"old{i}" for i in range(250))


def test_reads_from_a_streaming_replica(bus, pg_server, archive_dsn, start_archive, start_web):
    replica = pg_server.replica()
    try:
        archive = start_archive("--resume", "replica")
        join(bus, archive_dsn, archive)
        web = start_web(dsn=archive_dsn.replace(f"port={pg_server.port}", f"port={replica.port}"))
        publish(bus, [Event("logger.log", {"log": "through the replica"})])
        wait_for(lambda: web.json("/raw?contains=through%20the%20replica&category=logger")["total"] == 1,
                 what="the message on the replica")
        with psycopg.connect(archive_dsn.replace(f"port={pg_server.port}", f"port={replica.port}")) as c:
            assert c.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
    finally:
        replica.destroy()
