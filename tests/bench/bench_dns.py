"""How long one discovery round takes against a real knot on loopback:
plain SRV+TXT lookups, and the same validated with DNSSEC against the
zone's DS (which adds a DNSKEY query and the signature checks).

    python tests/bench/bench_dns.py [--rounds 200] [--publishers 10]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

from debpulse.emitters.announce import Announcement, Announcer
from debpulse.emitters.discovery import SrvResolver
from debpulse.emitters.dnssec import TrustAnchors

HERE = Path(__file__).resolve().parent


def knot_fixture_module():
    # The knot recipe lives with the DNS tests (tests/dns/conftest.py).
    spec = importlib.util.spec_from_file_location("dns_test_knot", HERE.parent / "dns" / "conftest.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def measure(resolver: SrvResolver, domain: str, rounds: int, expect: int) -> list[float]:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        found = resolver.publishers(domain)
        times.append((time.perf_counter() - t0) * 1000)
        assert len(found) == expect
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=200)
    p.add_argument("--publishers", type=int, default=10)
    args = p.parse_args()
    fixture = knot_fixture_module()
    knot = fixture.start_knot(("lookup.test", "signed.test"))
    try:
        for domain in ("lookup.test", "signed.test"):
            for i in range(args.publishers):
                Announcer(Announcement(domain, f"relay{i}.example.org", 9940, name=f"relay{i}"),
                          knot.server, knot.key).announce()
        plain = measure(SrvResolver([knot.server]), "lookup.test", args.rounds, args.publishers)
        anchors = TrustAnchors.from_file(knot.anchor("signed.test"))
        signed = measure(SrvResolver([knot.server], anchors=anchors), "signed.test", args.rounds, args.publishers)
        for name, times in (("plain SRV+TXT", plain), ("DNSSEC-validated", signed)):
            times.sort()
            print(f"{name:18} {args.publishers} publishers: median {statistics.median(times):.2f} ms, "
                  f"p95 {times[int(len(times) * 0.95) - 1]:.2f} ms over {args.rounds} rounds")
    finally:
        fixture.drop_knot(knot)


if __name__ == "__main__":
    main()
