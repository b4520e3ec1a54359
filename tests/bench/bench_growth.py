"""How the cost grows: throughput and latency against the body size, the
number of subscribers, and the size of the outbox.

    python tests/bench/bench_growth.py [--only bodies,subscribers,outbox] [--stored 1000000]

- body size (1 KB, 64 KB, 512 KB): a signed publisher (envelope scope, outbox
  on) and one verifying subscriber, each in its own process: throughput
  with the publisher going flat out in batches of 100, latency (publish
  call -> verified at the subscriber) with one event every 20 ms;
- subscribers (1, 10, 50) on one real relay (tests/loadbus.py): throughput
  with a producer handing over batches of 100 as fast as the relay takes
  them, until the last subscriber has the last message; latency with one
  event every 20 ms;
- outbox (empty, 1M envelopes stored): the publisher alone (check, sign,
  store, send), events with idempotency keys as the relay's clients send,
  and the replay answer for the newest 100.

Latency is measured with the wall clock of this one machine, publisher and
subscribers alike.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
os.environ.pop("RUST_BACKTRACE", None)

from bench_bus import machine  # noqa: E402
from testbus import Bus, drop_gpg_key, free_port, make_gpg_key  # noqa: E402


def q(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def open_publisher(endpoint: str, key_file: str, state: str, scope: str = "envelope"):  # type: ignore[no-untyped-def]
    from debpulse.emitters.config import Config
    from debpulse.emitters.options import BusOptions
    from debpulse.emitters.publisher import Publisher

    args = argparse.Namespace(publish=endpoint, signing_key=key_file, state_dir=state)
    opts = BusOptions.from_args(args, Config(), name="growth", own_key=True)
    opts.scope, opts.high_water_mark, opts.replay = scope, 0, f"tcp://127.0.0.1:{free_port()}"
    return Publisher(opts)


# -- body size -------------------------------------------------------------------------


def sized_publisher(endpoint: str, n: int, go, size: int, key_file: str, state: str,  # type: ignore[no-untyped-def]
                    interval: float) -> None:
    from debpulse.emitters.event import Event

    pub = open_publisher(endpoint, key_file, state)
    filler = "x" * size
    go.wait()
    if interval:
        for _ in range(n):
            pub.publish_events([Event("logger.log", {"log": filler, "sent_ns": time.time_ns()})])
            time.sleep(interval)
    else:
        for i in range(0, n, 100):
            pub.publish_events([Event("logger.log", {"log": filler}) for _ in range(min(100, n - i))])
    time.sleep(3)
    pub.close()


def sized_run(size: int, n: int, interval: float, key, tmp: Path) -> tuple[float, list[float]]:  # type: ignore[no-untyped-def]
    """(messages per second, latencies in ms) of one publisher -> subscriber run."""
    from debpulse.emitters.signing import SequoiaKeyring
    from debpulse.emitters.subscriber import Received, Subscriber
    from debpulse.emitters.verify import Verifier

    ctx = mp.get_context("spawn")
    go = ctx.Event()
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    state = str(tmp / f"size-{size}-{interval}")
    proc = ctx.Process(target=sized_publisher, args=(endpoint, n, go, size, str(key.secret_file), state, interval))
    proc.start()
    sub = Subscriber([endpoint], verifier=Verifier(SequoiaKeyring.from_files([key.public_file])), hwm=0,
                     catchup_interval=3600)
    time.sleep(1.5)  # a benchmark, not a test: the publisher binds, the subscriber joins
    latencies: list[float] = []
    try:
        t0 = time.perf_counter()
        go.set()
        got = 0
        while got < n:
            item = sub.receive(timeout=60)
            if item is None:
                raise SystemExit(f"only {got} of {n} arrived")
            if isinstance(item, Received):
                got += 1
                sent = item.body.get("sent_ns")
                if isinstance(sent, int):
                    latencies.append((time.time_ns() - sent) / 1e6)
        rate = n / (time.perf_counter() - t0)
    finally:
        sub.close()
        proc.terminate()
        proc.join(10)
    return rate, latencies


def bodies(key, tmp: Path) -> None:  # type: ignore[no-untyped-def]
    print("\nbody size: signed (envelope scope), outbox on, one verifying subscriber", flush=True)
    print(f"{'body':>7}  {'msg/s':>8}  {'MB/s':>6}  {'latency median ms':>17}  {'p99 ms':>7}", flush=True)
    for size, n in ((1 << 10, 4000), (64 << 10, 1000), (512 << 10, 200)):
        rate, _ = sized_run(size, n, 0.0, key, tmp)
        _, lat = sized_run(size, 150, 0.02, key, tmp)
        print(f"{size >> 10:>5}KB  {rate:>8.0f}  {rate * size / 1e6:>6.1f}  {statistics.median(lat):>17.2f}  "
              f"{q(lat, 0.99):>7.2f}", flush=True)


# -- subscribers -----------------------------------------------------------------------


def subscribers(key, tmp: Path) -> None:  # type: ignore[no-untyped-def]
    from loadbus import Subscribers, stream

    print("\nsubscribers on one relay (each verifies every message)", flush=True)
    print(f"{'subscribers':>11}  {'msg/s':>7}  {'verifications/s':>15}  {'latency median ms':>17}  {'p99 ms':>7}",
          flush=True)
    for count, n in ((1, 3000), (10, 2000), (50, 600)):
        # One process each, as subscribers on their own hosts: Sequoia keeps
        # what it has verified in a cache of the process, and threads of one
        # process would verify each message once between them.
        processes = count
        results = []
        for interval, messages in ((0.0, n), (0.02, 150)):
            work = tmp / f"subs-{count}-{interval}"
            bus = Bus(work / "bus", key)
            bus.start()
            subs = None
            try:
                subs = Subscribers(bus, work / "subs", messages, processes, count // processes)
                t0 = time.time()
                stream(bus, messages, interval, stamp=interval > 0, batch=1 if interval else 100)
                reports = subs.reports()
                if any(len(r["got"]) != messages for r in reports):
                    print(f"  !! not every subscriber got all {messages}", flush=True)
                results.append((messages / (max(r["last"] for r in reports) - t0),
                                [x for r in reports for x in r["latency_ms"]]))
            finally:
                if subs is not None:
                    subs.kill()
                bus.close()
        rate, lat = results[0][0], results[1][1]
        print(f"{count:>11}  {rate:>7.0f}  {rate * count:>15.0f}  {statistics.median(lat):>17.2f}  "
              f"{q(lat, 0.99):>7.2f}", flush=True)


# -- outbox size -----------------------------------------------------------------------


def fill(path: Path, stored: int) -> None:
    """`stored` canonical 1 KB envelopes with random msg_ids and keys, as
    the relay leaves them (written directly: publishing them would take an
    hour of the benchmark)."""
    from debpulse.emitters import envelope as env
    from debpulse.emitters.outbox import Outbox

    Outbox(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    now = time.time() - 3600
    template = env.canonical(env.build(topic="org.debian.dev.logger.log", msg={"log": "x" * 900}, msg_id="m", i=1,
                                       username="relay"))
    for first in range(1, stored + 1, 50_000):
        rows = [(s, env.new_msg_id(), f"id:{uuid.uuid4()}", "org.debian.dev.logger.log", now, template)
                for s in range(first, min(first + 50_000, stored + 1))]
        with db:
            db.executemany("INSERT INTO messages VALUES (?,?,?,?,?,?)", rows)
    with db:
        db.execute("UPDATE meta SET value=? WHERE name='last_seq'", (str(stored),))
        # Filed in the msg_id index, as the outbox's background thread leaves them.
        db.execute("INSERT INTO msg_index SELECT msg_id, seq_id FROM messages ORDER BY msg_id")
        db.execute("UPDATE meta SET value=? WHERE name='indexed_upto'", (str(stored),))
    db.close()


def outbox(key, tmp: Path, stored: int) -> None:  # type: ignore[no-untyped-def]
    from debpulse.emitters.event import Event

    print("\noutbox size: the publisher alone (check, sign, store, send), keyed events, 100 per batch", flush=True)
    print(f"{'stored':>9}  {'unsigned msg/s':>14}  {'signed msg/s':>12}  {'replay newest 100, ms':>21}  "
          f"{'by msg_id, ms':>13}  {'file MB':>7}", flush=True)
    for label, count in (("empty", 0), (f"{stored // 1000}k", stored)):
        template = tmp / f"filled-{count}.sqlite"
        if count:
            t0 = time.perf_counter()
            fill(template, count)
            print(f"  (filled {count} envelopes in {time.perf_counter() - t0:.0f} s)", flush=True)
        figures = []
        for scope in ("none", "envelope"):
            # Each on its own copy: what one run leaves (pages to checkpoint) does not weigh on the next.
            state = tmp / f"outbox-{count}-{scope}"
            if count:
                (state / "growth").mkdir(parents=True)
                shutil.copyfile(template, state / "growth" / "outbox.sqlite")
            pub = open_publisher(f"ipc://{tmp}/o-{count}-{scope}.sock", str(key.secret_file), str(state), scope)
            n = 20_000 if scope == "none" else 5000
            t0 = time.perf_counter()
            for _ in range(0, n, 100):
                pub.publish_events([Event("logger.log", {"log": "x" * 900}, key=f"id:{uuid.uuid4()}")
                                    for _ in range(100)])
            figures.append(n / (time.perf_counter() - t0))
            last = pub.outbox.last_seq()
            t0 = time.perf_counter()
            for _ in range(20):
                pub.outbox.query_raw({"seq_id_range": [last - 99, last]})
            replay_ms = (time.perf_counter() - t0) / 20 * 1000
            # By msg_id: ten stored ones picked at random, filed in the index or not yet.
            seqs = random.sample(range(1, last + 1), 10)
            picked = [r[0] for r in pub.outbox._db().execute(  # noqa: SLF001 (the filled rows share one envelope)
                f"SELECT msg_id FROM messages WHERE seq_id IN ({','.join(map(str, seqs))})")]
            t0 = time.perf_counter()
            for _ in range(20):
                assert len(pub.outbox.query_raw({"msg_ids": picked})) == 10
            by_id_ms = (time.perf_counter() - t0) / 20 * 1000
            size = sum(f.stat().st_size for f in pub.outbox.path.parent.glob("outbox.sqlite*")) / 1e6
            pub.close()
            for f in state.glob("growth/outbox.sqlite*"):
                f.unlink()
        template.unlink(missing_ok=True)
        print(f"{label:>9}  {figures[0]:>14.0f}  {figures[1]:>12.0f}  {replay_ms:>21.2f}  {by_id_ms:>13.2f}  "
              f"{size:>7.0f}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default="bodies,subscribers,outbox")
    p.add_argument("--stored", type=int, default=1_000_000, help="envelopes in the full outbox")
    a = p.parse_args()
    print(f"machine: {machine()}", flush=True)
    key = make_gpg_key("bench <bench@example.org>", "ed25519")
    tmp = Path(tempfile.mkdtemp(prefix="dp-growth-"))
    try:
        wanted = a.only.split(",")
        if "bodies" in wanted:
            bodies(key, tmp)
        if "subscribers" in wanted:
            subscribers(key, tmp)
        if "outbox" in wanted:
            outbox(key, tmp, a.stored)
    finally:
        drop_gpg_key(key)


if __name__ == "__main__":
    main()
