"""The live pages: bus to browser latency with a real page open, and one
debpulse-web holding many Server-Sent Events clients.

    python tests/bench/bench_web.py [--messages 100] [--clients 1000] [--rate 100] [--seconds 10]

A real PostgreSQL 15 (fsync on), the real relay, debpulse-archive and
debpulse-web as processes, headless Chromium.

1. Bus to browser: messages published one at a time through the relay;
   the page's own clock (a MutationObserver) marks when each appears.
   Reference in the same run: a plain subscriber on the same bus (what
   the bus itself costs), so the difference is the archive's commit, the
   NOTIFY, debpulse-web and the browser.
2. Fan-out: `--clients` raw SSE connections to one debpulse-web; its
   memory per client (RSS before and after they connect), then
   `--rate` messages a second for `--seconds`, and the delivery latency
   (publish to a client reading the event) on a sample of the clients.
   Reference: the same rate with one client.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "bench"))

from bench_archive import client, start  # noqa: E402
from pg import Postgres  # noqa: E402
from testbus import Bus, BusSubscriber, drop_gpg_key, free_port, make_gpg_key  # noqa: E402
from web.conftest import chrome  # noqa: E402

from debpulse.emitters.event import Event  # noqa: E402

MARK = re.compile(rb"bench (\d+) (\d+\.\d+)")
OBSERVER = """
window.__seen = {};
new MutationObserver(function (changes) {
  var now = performance.timeOrigin + performance.now();
  changes.forEach(function (c) { c.addedNodes.forEach(function (n) {
    var m = /bench (\\d+) /.exec(n.textContent || "");
    if (m && !(m[1] in window.__seen)) window.__seen[m[1]] = now;
  }); });
}).observe(document.getElementById("messages"), {childList: true});
"""


def pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(len(s) * q))]


def describe(name: str, samples: list[float]) -> str:
    if not samples:
        return f"{name}: no samples"
    return (f"{name}: median {statistics.median(samples):.1f} ms, p99 {pct(samples, 0.99):.1f} ms, "
            f"max {max(samples):.1f} ms ({len(samples)} samples)")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def bus_to_browser(bus: Bus, web_url: str, n: int) -> None:
    ref = BusSubscriber(bus, "")
    driver = chrome()
    publisher = client(bus)
    sent: dict[int, float] = {}
    on_bus: dict[int, float] = {}
    stop = threading.Event()

    def listen() -> None:
        from debpulse.emitters.subscriber import Received

        while not stop.is_set():
            item = ref.sub.receive(timeout=0.2)
            if isinstance(item, Received):
                m = MARK.search(str(item.envelope["msg"].get("log", "")).encode())
                if m:
                    on_bus.setdefault(int(m.group(1)), time.time())

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    try:
        driver.get(web_url + "/?category=logger")
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(driver, 60).until(lambda d: d.find_element(By.ID, "status").text == "live")
        driver.execute_script(OBSERVER)
        for i in range(n):
            sent[i] = time.time()
            publisher.emit(Event("logger.log", {"log": f"bench {i} {sent[i]:.6f}"}))
            deadline = time.monotonic() + 30
            while str(i) not in driver.execute_script("return window.__seen") and time.monotonic() < deadline:
                time.sleep(0.005)
            time.sleep(0.05)  # one at a time, as a person watches them
        seen = driver.execute_script("return window.__seen")
    finally:
        stop.set()
        thread.join(2)
        publisher.close()
        driver.quit()
        shutil.rmtree(driver.profile_dir, ignore_errors=True)
        ref.close()
    browser = [(seen[str(i)] / 1000 - sent[i]) * 1000 for i in range(n) if str(i) in seen]
    reference = [(on_bus[i] - sent[i]) * 1000 for i in range(n) if i in on_bus]
    print(describe("  bus -> browser (page open, chromium)", browser))
    print(describe("  bus -> subscriber (reference: the bus alone)", reference))


async def sse_client(host: str, port: int, arrivals: list[tuple[int, float]] | None, ready: asyncio.Event,
                     counter: list[int], stop: asyncio.Event) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET /stream HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n".encode())
    await writer.drain()
    tail = b""
    opened = False
    try:
        while not stop.is_set():
            try:
                data = await asyncio.wait_for(reader.read(65536), 0.5)
            except TimeoutError:
                continue
            if not data:
                break
            if not opened and b"retry:" in data:
                opened = True
                counter[0] += 1
                if counter[0] >= counter[1]:
                    ready.set()
            if arrivals is not None:
                now = time.time()
                chunk = tail + data
                for m in MARK.finditer(chunk):
                    arrivals.append((int(m.group(1)), now))
                tail = chunk[-60:] if not MARK.search(chunk[-60:]) else b""
    finally:
        writer.close()


def publish_at(bus: Bus, rate: float, seconds: float, sent: dict[int, float], first: int) -> None:
    publisher = client(bus)
    try:
        t0 = time.monotonic()
        for k in range(int(rate * seconds)):
            due = t0 + k / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            i = first + k
            sent[i] = time.time()
            publisher.emit(Event("logger.log", {"log": f"bench {i} {sent[i]:.6f}"}))
    finally:
        publisher.close()


async def fan_out(bus: Bus, port: int, web_pid: int, clients: int, rate: float, seconds: float,
                  first: int) -> None:
    sample = min(clients, 20)
    arrivals: list[list[tuple[int, float]]] = [[] for _ in range(sample)]
    stop = asyncio.Event()
    ready = asyncio.Event()
    counter = [0, clients]
    base = rss_kib(web_pid)
    tasks = [asyncio.create_task(sse_client("127.0.0.1", port, arrivals[k] if k < sample else None, ready, counter,
                                            stop)) for k in range(clients)]
    await asyncio.wait_for(ready.wait(), 120)
    await asyncio.sleep(1)
    held = rss_kib(web_pid)
    sent: dict[int, float] = {}
    await asyncio.to_thread(publish_at, bus, rate, seconds, sent, first)
    last = max(sent)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(any(i == last for i, _ in a) for a in arrivals):
        await asyncio.sleep(0.1)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    latencies = [(t - sent[i]) * 1000 for a in arrivals for i, t in a if i in sent]
    delivered = [len({i for i, _ in a if i in sent}) for a in arrivals]
    print(f"  {clients} client(s): debpulse-web RSS {base / 1024:.1f} MiB -> {held / 1024:.1f} MiB held, "
          f"{(held - base) / max(clients, 1):.1f} KiB per client")
    print(describe(f"  {clients} client(s), {rate:g} msg/s for {seconds:g} s, publish -> client", latencies))
    print(f"  delivered to the sampled clients: {min(delivered)}..{max(delivered)} of {len(sent)}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=100, help="bus to browser: messages, one at a time (100)")
    p.add_argument("--clients", type=int, default=1000, help="fan-out: SSE clients (1000)")
    p.add_argument("--rate", type=float, default=100, help="fan-out: messages a second (100)")
    p.add_argument("--seconds", type=float, default=10, help="fan-out: how long (10)")
    args = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    tmp = Path(tempfile.mkdtemp(prefix="bench-web-"))
    key = make_gpg_key()
    db = Postgres(prefix="bweb-", settings={"fsync": "on", "max_connections": "50"})
    db.start()
    bus = Bus(tmp / "bus", key)
    procs = []
    try:
        bus.start()
        dsn = db.create_database("archive")
        procs.append(start([sys.executable, "-m", "debpulse.consumers.archive.cli", "--dsn", dsn, "--endpoint",
                            bus.endpoint, "--keyring", str(bus.key.public_file), "--resume", "bench"],
                           tmp / "archive.log", bus.env))
        port = free_port()
        web = start([sys.executable, "-m", "debpulse.consumers.web.cli", "--dsn", dsn, "--listen",
                     f"127.0.0.1:{port}"], tmp / "web.log", {})
        procs.append(web)
        # Until the archive has joined the relay: a probe stored.
        probe = client(bus)
        import psycopg

        with psycopg.connect(dsn, autocommit=True) as c:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                probe.emit(Event("logger.log", {"log": "probe"}))
                time.sleep(0.3)
                if c.execute("SELECT count(*) FROM messages").fetchone()[0]:
                    break
        probe.close()
        print(f"machine: {os.cpu_count()} cores; PostgreSQL 15 fsync on; one debpulse-web process")
        print("bus -> browser, one message at a time:")
        bus_to_browser(bus, f"http://127.0.0.1:{port}", args.messages)
        print("fan-out (reference first: one client):")
        asyncio.run(fan_out(bus, port, web.pid, 1, args.rate, args.seconds, 100_000))
        asyncio.run(fan_out(bus, port, web.pid, args.clients, args.rate, args.seconds, 200_000))
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except Exception:  # noqa: BLE001
                proc.kill()
        bus.stop()
        db.destroy()
        drop_gpg_key(key)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
