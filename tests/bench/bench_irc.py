"""Bus to IRC line latency: a message published through the real relay,
said by debpulse-irc on a real ngircd, read by a real client in the channel.

    python tests/bench/bench_irc.py [MESSAGES]

Prints the median and p99 from the publisher's call to the reader seeing
the line, beside the reference measured in the same run: a plain client
saying a line to the same reader through the same server.  The channel is
set with no hold (hold = 0) and rates above the pace, so that the figure is
the machinery, not flood control; with the default hold (1 s, to gather a
burst) add that second.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ircd import IrcClient, Ngircd  # noqa: E402
from services import BusService, wait_for  # noqa: E402
from testbus import Bus, drop_gpg_key, make_gpg_key  # noqa: E402

ACCEPT = {"source": "hello", "version": "2.10-3", "architectures": ["source"], "suites": ["unstable"],
          "maintainer": "A <a@debian.org>", "changed_by": "A <a@debian.org>", "urgency": "medium", "closes": [],
          "files": [], "changes": "hello_2.10-3_source.changes", "signature": "verified", "signed_by": None,
          "route": "mail"}


def p99(samples: list[float]) -> float:
    return sorted(samples)[min(len(samples) - 1, int(len(samples) * 0.99))]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    key = make_gpg_key()
    base = Path(tempfile.mkdtemp(prefix="bench-irc-"))
    bus = Bus(base / "bus", key)
    bus.start()
    ircd = Ngircd(base / "ircd").start()
    reader = IrcClient(ircd.port, "reader")
    reader.join("#bench")
    talker = IrcClient(ircd.port, "talker")
    talker.join("#bench")
    config = base / "irc.toml"
    config.write_text(f"""\
[irc]
nick = "dpbot"
[irc.networks.test]
host = "127.0.0.1"
port = {ircd.port}
rate = 200
burst = 50
[[irc.channels]]
name = "#bench"
include = {{ topics = ["dak.package.accept"] }}
hold = 0
rate = 200
burst = 50
""")
    from debpulse.emitters.config import Config
    from debpulse.emitters.event import Event
    from debpulse.emitters.options import BusOptions
    from debpulse.emitters.relay_client import RelayClient

    os.environ.update(bus.env)
    client = RelayClient(BusOptions.from_args(argparse.Namespace(), Config(), name="bench"))
    bot = BusService(bus, base, "irc", "debpulse.consumers.irc.cli",
                     ["--config", str(config), "--control-socket", str(base / "irc.sock")])
    try:
        bot.start()
        wait_for(lambda: "dpbot" in reader.names("#bench"), what="the bot in the channel")
        bot.wait_joined_bus(lambda topic, *bodies: client.emit_many([Event(topic, b) for b in bodies]))

        def heard(text: str) -> bool:
            return any(text in line for line in reader.said("#bench")[-5:])

        samples = []
        for i in range(n):
            name = f"pkg{i}"
            t0 = time.perf_counter()
            client.emit_many([Event("dak.package.accept", {**ACCEPT, "source": name})])
            while not heard(f" {name} "):
                time.sleep(0.0002)
            samples.append(time.perf_counter() - t0)
        reference = []
        for i in range(n):
            text = f"reference {i}"
            t0 = time.perf_counter()
            talker._send(f"PRIVMSG #bench :{text}")
            while not heard(text):
                time.sleep(0.0002)
            reference.append(time.perf_counter() - t0)
        print(f"bus -> IRC line ({n} messages, one at a time): median {statistics.median(samples) * 1e3:.1f} ms, "
              f"p99 {p99(samples) * 1e3:.1f} ms")
        print(f"reference, a client's line to the reader through the same ngircd: median "
              f"{statistics.median(reference) * 1e3:.2f} ms, p99 {p99(reference) * 1e3:.2f} ms")
    finally:
        bot.stop()
        reader.close()
        talker.close()
        ircd.stop()
        bus.close()
        drop_gpg_key(key)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
