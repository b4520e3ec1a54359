"""A busy relay is not a dead relay: 50 subscribers and a producer
streaming events through one relay.  Every subscriber gets every message
once, in order; nothing is spooled while the relay is up (every
acknowledgement came within the client's 1 s bound); the relay's memory
stays flat.  How fast: tests/bench/bench_relay_load.py."""

from __future__ import annotations

from pathlib import Path

from loadbus import Subscribers, rss_kb, stream
from testbus import Bus

from debpulse.emitters.spool import Spool

MESSAGES = 1000


def test_fifty_subscribers_and_a_streaming_producer(tmp_path: Path, bus: Bus):
    subs = Subscribers(bus, tmp_path, MESSAGES, processes=5, threads=10)
    try:
        stream(bus, MESSAGES // 2, interval=0.005)
        rss_middle = rss_kb(bus.proc.pid)
        stream(bus, MESSAGES - MESSAGES // 2, interval=0.005, start=MESSAGES // 2)
        rss_end = rss_kb(bus.proc.pid)
        got = subs.results()
    finally:
        subs.kill()
    assert len(got) == 50
    for seqs in got:
        assert seqs == list(range(1, MESSAGES + 1))  # every message, once, in order
    assert len(Spool(bus.state / "spool")) == 0
    # Flat: the second half adds noise, not a per-message cost (a leak of
    # even 1 KB per message and subscriber would be 25 MB here).
    assert rss_end - rss_middle < 8 * 1024, (rss_middle, rss_end)
