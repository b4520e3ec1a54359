"""debpulse-dak: delivery into a Maildir -> verified message at a subscriber.

    python tests/bench/bench_dak.py [--n 300] [--backlog 500]

A real relay (signing), debpulse-dak as its own process watching a Maildir,
a subscriber verifying each message.  The mails are dak's real ACCEPTED
mails (fixtures/dak/mails 03 and 04: plain and PGP/MIME + quoted-printable),
each renamed to a distinct upload so that none is a repeat.

1. latency: one mail at a time, from the moment the delivery (Python's
   mailbox: write into tmp/, rename into new/) returns to the moment the
   subscriber holds the verified message; median and p99.
2. backlog: with the adapter stopped, deliver --backlog mails, start it,
   and time until the last message; mails per second (first to last
   message, and including the process start).
"""

from __future__ import annotations

import argparse
import mailbox
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
os.environ.pop("RUST_BACKTRACE", None)

from testbus import Bus, drop_gpg_key, fixtures_dir, make_gpg_key  # noqa: E402

SAMPLES = [
    ("03-ACCEPTED-maintainer_xfsprogs_5.6.0-1_amd64_2020.eml", b"xfsprogs_5.6.0-1_amd64.changes"),
    ("04-ACCEPTED-maintainer_xfsprogs_6.12.0-1_source_2024-pgpmime.eml", b"xfsprogs_6.12.0-1_source.changes"),
]


def mails(n: int, start: int) -> list[bytes]:
    out = []
    texts = [((fixtures_dir() / "dak" / "mails" / name).read_bytes(), changes) for name, changes in SAMPLES]
    for i in range(start, start + n):
        data, changes = texts[i % len(texts)]
        # A distinct upload each time: its .changes name (in the subject and Debian-Changes) is the key.
        out.append(data.replace(changes, changes.replace(b"_", f"_b{i}_".encode(), 1)))
    return out


def start_adapter(bus: Bus, maildir: Path, log: Path) -> subprocess.Popen:
    with open(log, "ab") as fh:
        return subprocess.Popen([sys.executable, "-m", "debpulse.adapters.dak.cli", "--maildir", str(maildir)],
                                env={**os.environ, **bus.env}, stdout=fh, stderr=fh)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=300, help="mails for the latency run")
    ap.add_argument("--backlog", type=int, default=500, help="mails for the backlog run")
    args = ap.parse_args()

    base = Path(tempfile.mkdtemp(prefix="bench-dak-"))
    key = make_gpg_key()
    bus = Bus(base / "bus", key)
    bus.start()
    sub = bus.subscriber()
    maildir = base / "Maildir"
    box = mailbox.Maildir(maildir, create=True)
    proc = start_adapter(bus, maildir, base / "dak.log")
    try:
        # warm up: the adapter is up and the subscriber follows
        for m in mails(5, 1_000_000):
            box.add(m)
        assert len(sub.wait(5, timeout=30)) == 5, (base / "dak.log").read_text()

        lat = []
        for m in mails(args.n, 0):
            t0 = time.perf_counter()
            box.add(m)
            got = sub.wait(1, timeout=10)
            lat.append((time.perf_counter() - t0) * 1000)
            assert got and got[0].verdict.ok, "message lost or not verified"
        print(f"latency, delivery -> verified message ({args.n} mails, one at a time):")
        print(f"  median {statistics.median(lat):.1f} ms   p99 {pct(lat, 99):.1f} ms   "
              f"min {min(lat):.1f} ms   max {max(lat):.1f} ms")

        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        for m in mails(args.backlog, 10_000):
            box.add(m)
        t0 = time.perf_counter()
        proc = start_adapter(bus, maildir, base / "dak.log")
        first = sub.wait(1, timeout=60)
        t_first = time.perf_counter()
        rest = sub.wait(args.backlog - 1, timeout=300)
        t_last = time.perf_counter()
        assert len(first) + len(rest) == args.backlog, "backlog incomplete"
        print(f"backlog of {args.backlog} mails:")
        print(f"  {(args.backlog - 1) / (t_last - t_first):.0f} mails/s (first to last message), "
              f"{args.backlog / (t_last - t0):.0f} mails/s including the process start "
              f"({t_first - t0:.2f} s to the first message)")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)
        bus.close()
        drop_gpg_key(key)
        subprocess.run(["rm", "-rf", str(base)], check=False)


if __name__ == "__main__":
    main()
