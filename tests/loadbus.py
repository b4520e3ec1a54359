"""Load on a real relay, shared by the load test and the relay benchmark:
many subscribers (threads in a few processes, each its own Subscriber and
connection) and a producer handing events over one at a time, as a logger
reading a live log does.

Run as a script, it is one of the subscriber processes:

    python tests/loadbus.py ENDPOINT REPLAY KEYRING COUNT THREADS OUT

Each thread follows the relay, receives COUNT messages and the process
writes the seq_ids each got, in order, to OUT (JSON); READY=1 goes to
$NOTIFY_SOCKET once every thread follows the relay.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve()


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


class Subscribers:
    """PROCESSES x THREADS subscribers of `bus`, each expecting `count`."""

    def __init__(self, bus, work: Path, count: int, processes: int, threads: int) -> None:  # type: ignore[no-untyped-def]
        from testbus import Notify

        self.outputs: list[Path] = []
        self.procs: list[subprocess.Popen] = []
        waiting = []
        for k in range(processes):
            (work / f"n{k}").mkdir(parents=True)
            notify = Notify(work / f"n{k}")
            out = work / f"subs-{k}.json"
            with open(work / f"subs-{k}.log", "w") as log:
                proc = subprocess.Popen(
                    [sys.executable, str(HERE), bus.endpoint, bus.replay, str(bus.key.public_file),
                     str(count), str(threads), str(out)],
                    env={**os.environ, "NOTIFY_SOCKET": str(notify.path)}, stdout=subprocess.DEVNULL, stderr=log)
            self.procs.append(proc)
            self.outputs.append(out)
            waiting.append((proc, notify))
        for proc, notify in waiting:
            notify.wait_for("READY=1", proc, timeout=180)
            notify.close()

    def results(self, timeout: float = 300) -> list[list[int]]:
        """The seq_ids every subscriber got, once all are done."""
        got = []
        for proc, out in zip(self.procs, self.outputs, strict=True):
            if proc.wait(timeout) != 0:
                raise RuntimeError(f"a subscriber process exited with {proc.returncode}")
            got += json.loads(out.read_text())["got"]
        return got

    def kill(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


def stream(bus, count: int, interval: float, start: int = 0) -> list[float]:  # type: ignore[no-untyped-def]
    """Hand `count` events to the relay one by one, `interval` seconds
    apart, with the client's default bound (1 s); the acknowledgement
    latency of each, in seconds.  RuntimeError if one was spooled."""
    from debpulse.emitters.event import Event
    from debpulse.emitters.options import BusOptions
    from debpulse.emitters.relay_client import RelayClient

    client = RelayClient(BusOptions(name="load", relay=bus.relay_socket, spool=bus.state / "spool"))
    latencies = []
    try:
        for n in range(start, start + count):
            t0 = time.perf_counter()
            route = client.emit_many([Event("logger.log", {"log": f"line {n}"}, origin="load")])
            latencies.append(time.perf_counter() - t0)
            if route != "relay":
                raise RuntimeError(f"event {n} was spooled although the relay is up")
            time.sleep(interval)
    finally:
        client.close()
    return latencies


def _worker(endpoint: str, replay: str, keyring: str, count: str, threads: str, out: str) -> None:
    from debpulse.emitters import systemd
    from debpulse.emitters.signing import SequoiaKeyring
    from debpulse.emitters.subscriber import Received, Subscriber
    from debpulse.emitters.verify import Verifier

    n, wanted = int(threads), int(count)
    subs = []
    for _ in range(n):
        sub = Subscriber([endpoint], verifier=Verifier(SequoiaKeyring.from_files([keyring])), catchup_interval=2.0)
        sub.follow(replay)
        subs.append(sub)
    got: list[list[int]] = [[] for _ in range(n)]

    def receive(k: int) -> None:
        deadline = time.monotonic() + 600
        while len(got[k]) < wanted and time.monotonic() < deadline:
            item = subs[k].receive(timeout=1.0)
            if isinstance(item, Received):
                got[k].append(item.envelope["seq_id"])

    workers = [threading.Thread(target=receive, args=(k,)) for k in range(n)]
    for w in workers:
        w.start()
    systemd.notify("READY=1")
    for w in workers:
        w.join()
    for s in subs:
        s.close()
    with open(out, "w") as fh:
        json.dump({"got": got}, fh)


if __name__ == "__main__":
    _worker(*sys.argv[1:7])
