"""How fast wanna-build changes reach a subscriber, and how fast a backlog drains.

    python tests/bench/bench_wannabuild.py [--samples N] [--poll-samples N] [--interval S] [--backlog ROWS]

Starts a real PostgreSQL 15 with wanna-build's published schema, a real
debpulse-relay with a fresh key and debpulse-wanna-build as a process, then:
1. latency with the NOTIFY trigger: a wanna-build-style commit -> the
   verified message at a subscriber (median, p99);
2. the same with polling only (no trigger), bounded by --interval;
3. catch-up: --backlog transactions rows written while the adapter was down,
   read by a fresh adapter (`--once`): rows per second handed to the relay,
   and rows per second until the last message reached the subscriber.
Needs root (PostgreSQL runs as user postgres) and the shared sample data
($DEBPULSE_FIXTURES or ../shared/fixtures).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(os.environ.get("DEBPULSE_FIXTURES") or ROOT.parent / "shared" / "fixtures")
sys.path[:0] = [str(ROOT / "tests" / "wannabuild"), str(ROOT / "tests")]

from testbus import Bus, drop_gpg_key, make_gpg_key  # noqa: E402  (the test suite's relay and key helpers)
from wannabuild_cluster import WannaBuild, WannaBuildCluster  # noqa: E402

from debpulse.adapters.wannabuild.trigger_sql import install_sql  # noqa: E402

TOPIC = "org.debian.dev.wannabuild."




def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def adapter(cluster: WannaBuildCluster, bus: Bus, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    args = ["debpulse-wanna-build", "--dsn", cluster.dsn(), "--arch", "amd64", "--arch", "arm64", *extra]
    with open(log, "ab") as fh:
        return subprocess.Popen(args, env={**os.environ, **bus.env}, stdout=fh, stderr=fh)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(30)


def latencies(cluster: WannaBuildCluster, bus: Bus, log: Path, n: int, interval: float, pause: float,
              tag: str) -> list[float]:
    sub = bus.subscriber(TOPIC)
    marks = Path(bus.env["DEBPULSE_STATE_DIR"]) / "wannabuild" / "marks"
    for old in marks.glob("*.json"):
        old.unlink()  # a fresh start at "now" for each run
    start_after = time.monotonic() + 0.5  # and let the subscriber join
    proc = adapter(cluster, bus, log, "--interval", str(interval), "--start", "now")
    writer = WannaBuild(cluster.connect("wb-buildd"))
    try:
        # Marks are stored at the first poll, after LISTEN: from then on
        # every new transaction is published.
        marks = Path(bus.env["DEBPULSE_STATE_DIR"]) / "wannabuild" / "marks"
        deadline = time.monotonic() + 30
        while len(list(marks.glob("*.transactions.json"))) < 2 or time.monotonic() < start_after:
            if time.monotonic() > deadline:
                raise RuntimeError(f"adapter did not start; see {log}")
            time.sleep(0.01)
        out = []
        for i in range(n):
            writer.change("amd64", f"{tag}{i}", "1.0-1", "--take", "Building", commit=False)
            t0 = time.perf_counter()
            writer.conn.commit()
            got = sub.wait(1, timeout=interval + 10)
            if not got:
                raise RuntimeError(f"no message for {tag}{i}; see {log}")
            out.append(time.perf_counter() - t0)
            time.sleep(random.uniform(0, pause))  # spread over the poll phase
        return out
    finally:
        writer.conn.close()
        stop(proc)
        sub.close()


def catch_up(cluster: WannaBuildCluster, bus: Bus, log: Path, rows: int, state: Path) -> tuple[float, float]:
    # Written while no adapter runs: wanna-build's pace compressed, one
    # timestamp every 20 ms, older than the lookback so none is "hot".
    with cluster.connect("wbadm") as c:
        c.execute(
            'INSERT INTO "amd64".transactions (package, distribution, version, action, prevstate, state,'
            " real_user, set_user, time)"
            " SELECT 'backlog' || i, 'sid', '1.0-' || (i %% 7 + 1), '--merge-v3: needs-build', 'Installed',"
            " 'Needs-Build', 'wbadm', 'wbadm', localtimestamp - interval '3 hours' + i * interval '20 ms'"
            " FROM generate_series(1, %s) AS i", (rows,))
    # Fresh marks for this run, but the relay's own spool: events that wait
    # for a busy relay must be the ones it drains.
    config = state / "debpulse.toml"
    state.mkdir(parents=True)
    config.write_text(f'[bus]\nspool = "{bus.state / "spool"}"\n')
    sub = bus.subscriber(TOPIC)
    t0 = time.perf_counter()
    proc = adapter(cluster, bus, log, "--once", "--start", "beginning", "--state-dir", str(state),
                   "--config", str(config))
    if proc.wait(1800) != 0:
        raise RuntimeError(f"adapter failed; see {log}")
    handed = time.perf_counter() - t0
    got = 0
    while got < rows:
        batch = sub.wait(min(1000, rows - got), timeout=60)
        if not batch:
            raise RuntimeError(f"only {got} of {rows} messages arrived")
        got += len(batch)
    delivered = time.perf_counter() - t0
    sub.close()
    return rows / handed, rows / delivered


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=200, help="commits measured with NOTIFY")
    p.add_argument("--poll-samples", type=int, default=40, help="commits measured with polling only")
    p.add_argument("--interval", type=float, default=1.0, help="poll interval of the polling-only run")
    p.add_argument("--backlog", type=int, default=100_000, help="transactions rows to catch up on")
    args = p.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-wb-"))
    key = make_gpg_key()
    cluster = WannaBuildCluster(FIXTURES)
    bus = Bus(work / "bus", key)
    try:
        cluster.start()
        cluster.load_schema()
        bus.start()
        log = work / "adapter.log"

        polled = latencies(cluster, bus, log, args.poll_samples, args.interval, args.interval, "poll")
        with cluster.connect(autocommit=True) as c:
            c.execute(install_sql("debpulse_wannabuild"))
        notified = latencies(cluster, bus, log, args.samples, 60.0, 0.01, "notify")
        with cluster.connect(autocommit=True) as c:
            c.execute("DROP TRIGGER debpulse_notify ON public.transactions")
        handed, delivered = catch_up(cluster, bus, log, args.backlog, work / "catch-up-state")

        ms = 1000.0
        print(f"commit -> subscriber with NOTIFY: median {statistics.median(notified) * ms:.1f} ms, "
              f"p99 {percentile(notified, 99) * ms:.1f} ms ({len(notified)} commits, goal < 50 ms)")
        print(f"commit -> subscriber polling every {args.interval:g} s: median {statistics.median(polled) * ms:.0f} ms,"
              f" p99 {percentile(polled, 99) * ms:.0f} ms ({len(polled)} commits)")
        print(f"catch-up on {args.backlog} transactions rows: {handed:,.0f} rows/s handed to the relay, "
              f"{delivered:,.0f} rows/s until the last message reached the subscriber")
    finally:
        bus.close()
        cluster.destroy()
        drop_gpg_key(key)


if __name__ == "__main__":
    main()
