"""The relay's acknowledgement latency under load: a producer hands events
over one at a time (as a logger reading a live log does) while 0, 10 and 50
subscribers verify every message; the client spools after 1 s, so the
figure that matters is how far p99 stays under that bound.  The reference
is the same producer with no subscriber, measured in the same run.

    python tests/bench/bench_relay_load.py [--messages 2000] [--interval 0.005]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from loadbus import Subscribers, rss_kb, stream  # noqa: E402
from testbus import Bus, drop_gpg_key, make_gpg_key  # noqa: E402


def run(key, subscribers: int, messages: int, interval: float) -> tuple[list[float], int, int]:  # type: ignore[no-untyped-def]
    with tempfile.TemporaryDirectory(prefix="bench-relay-") as tmp:
        bus = Bus(Path(tmp) / "bus", key)
        bus.start()
        subs = None
        try:
            if subscribers:
                processes = max(1, subscribers // 10)
                subs = Subscribers(bus, Path(tmp) / "subs", messages, processes, subscribers // processes)
            rss_before = rss_kb(bus.proc.pid)
            latencies = stream(bus, messages, interval)
            rss_after = rss_kb(bus.proc.pid)
            if subs is not None:
                got = subs.results()
                complete = sum(seqs == list(range(1, messages + 1)) for seqs in got)
                if complete != len(got):
                    print(f"  !! only {complete} of {len(got)} subscribers got every message once", flush=True)
            return latencies, rss_before, rss_after
        finally:
            if subs is not None:
                subs.kill()
            bus.close()


def ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=2000)
    p.add_argument("--interval", type=float, default=0.005, help="seconds between events (default 0.005)")
    args = p.parse_args()
    key = make_gpg_key()
    try:
        print(f"relay acknowledgement latency, {args.messages} events one at a time, "
              f"{args.interval * 1000:g} ms apart; the client's bound is 1000 ms")
        print(f"{'subscribers':>11}  {'median ms':>9}  {'p99 ms':>7}  {'max ms':>7}  {'relay RSS MB':>12}")
        reference = None
        for n in (0, 10, 50):
            lat, before, after = run(key, n, args.messages, args.interval)
            med = statistics.median(lat) * 1000
            reference = reference or med
            print(f"{n:>11}  {med:>9.2f}  {ms(lat, 0.99):>7.2f}  {max(lat) * 1000:>7.1f}  "
                  f"{before / 1024:>5.1f} -> {after / 1024:<5.1f}  (median {med / reference:.1f}x the "
                  "reference)", flush=True)
    finally:
        drop_gpg_key(key)


if __name__ == "__main__":
    main()
