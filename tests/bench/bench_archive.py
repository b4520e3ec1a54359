"""The history: debpulse-archive's ingest rate against the relay's publish
rate in the same run, then the latency of each documented query shape of
debpulse-web over what was ingested.

    python tests/bench/bench_archive.py [--n 1000000] [--rounds 200]

A real PostgreSQL 15 (fsync on), the real relay, debpulse-archive and
debpulse-web as processes.  The messages are a Debian-like mix of every
adapter's types (wanna-build most, then debbugs, git and dak), their
bodies made from the real samples with packages and people drawn from
Zipf-like populations (30,000 packages, 1,500 people, 200 buildds) and one
sparse person who appears three times.  Queries go over HTTP, one at a
time, on a kept-alive connection.
"""

from __future__ import annotations

import argparse
import copy
import http.client
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
os.environ.pop("RUST_BACKTRACE", None)

import psycopg  # noqa: E402
from bridge.samples import dak_events, debbugs_events, git_events  # noqa: E402
from pg import Postgres  # noqa: E402
from testbus import Bus, drop_gpg_key, fixtures_dir, free_port, make_gpg_key  # noqa: E402

from debpulse.emitters.config import Config  # noqa: E402
from debpulse.emitters.event import Event  # noqa: E402
from debpulse.emitters.options import BusOptions  # noqa: E402
from debpulse.emitters.relay_client import RelayClient  # noqa: E402

SPARSE = "rarely-seen@example.org"
WEIGHTS = {  # per 1,000 messages
    "wannabuild.package.state.update": 450, "wannabuild.package.build.complete": 150,
    "debbugs.bug.followup": 100, "debbugs.bug.control": 60, "debbugs.bug.report": 40, "debbugs.bug.close": 30,
    "git.receive": 80, "git.ref.update": 30, "git.ref.create": 5, "git.tag.create": 5,
    "dak.package.accept": 40, "dak.package.reject": 5, "dak.package.remove": 5,
}


def zipf(n: int, rng: random.Random, s: float = 1.1) -> list[float]:
    weights = [1 / (k ** s) for k in range(1, n + 1)]
    total = sum(weights)
    acc, out = 0.0, []
    for w in weights:
        acc += w / total
        out.append(acc)
    return out


class Mix:
    """Realistic events: the real samples' bodies, with names drawn anew."""

    def __init__(self, fixtures: Path, work: Path, seed: int = 16) -> None:
        self.rng = random.Random(seed)
        self.packages = [f"pkg{k}" for k in range(30_000)]
        self.people = [f"dd{k}" for k in range(1_500)]
        self.buildds = [f"buildd_{a}-{k:02d}" for a in ("amd64", "arm64", "i386", "ppc64el", "s390x")
                        for k in range(40)]
        self.cum_pkg = zipf(len(self.packages), self.rng)
        self.cum_people = zipf(len(self.people), self.rng)
        templates: dict[str, dict] = {}
        for e in dak_events(fixtures) + debbugs_events(fixtures) + git_events(fixtures, work):
            templates.setdefault(e.topic, dict(e.body))
        mails = fixtures / "debbugs" / "mails"
        from debpulse.adapters.dak.mail import parse_mail as dak_mail
        from debpulse.adapters.debbugs.mail import parse_mail as bug_mail

        for f in sorted(mails.iterdir()):
            for e in bug_mail(f.read_bytes()).events:
                templates.setdefault(e.topic, dict(e.body))
        for f in sorted((fixtures / "dak" / "mails").iterdir()):
            for e in dak_mail(f.read_bytes()).events:
                templates.setdefault(e.topic, dict(e.body))
        templates["dak.package.remove"] = {"sources": [{"name": "x", "version": "1"}], "binaries": [],
                                           "suites": ["unstable"], "reason": "RoQA; orphaned", "closes": [],
                                           "ftpmaster": "Release Team <ftpmaster@debian.org>", "route": "mail"}
        templates["wannabuild.package.state.update"] = {
            "architecture": "amd64", "package": "x", "version": "1", "suite": "sid", "old_state": "Needs-Build",
            "new_state": "Building", "action": "--take", "user": "b", "real_user": "buildd",
            "time": "2024-05-01T10:00:00Z"}
        templates["wannabuild.package.build.complete"] = {
            "architecture": "amd64", "package": "x", "version": "1", "suite": "sid", "result": "successful",
            "build_time": 300, "disk_space": 10_000_000, "builder": "b", "time": "2024-05-01T10:00:00Z"}
        # A report has a followup's body (one schema for every bug mail).
        templates.setdefault("debbugs.bug.report", templates["debbugs.bug.followup"])
        self.templates = {t: templates[t] for t in WEIGHTS if t in templates}
        self.topics = list(self.templates)
        self.cum_topics = list(__import__("itertools").accumulate(WEIGHTS[t] for t in self.topics))

    def _pick(self, names: list[str], cum: list[float]) -> str:
        import bisect

        return names[min(bisect.bisect(cum, self.rng.random()), len(names) - 1)]

    def event(self, n: int, sparse: set[int]) -> Event:
        import bisect

        topic = self.topics[bisect.bisect(self.cum_topics, self.rng.random() * self.cum_topics[-1])]
        body = copy.deepcopy(self.templates[topic])
        pkg = self._pick(self.packages, self.cum_pkg)
        who = SPARSE if n in sparse else f"{self._pick(self.people, self.cum_people)}@debian.org"
        version = f"{self.rng.randint(1, 9)}.{self.rng.randint(0, 30)}-{self.rng.randint(1, 5)}"
        service = topic.split(".")[0]
        if service == "wannabuild":
            body.update(package=pkg, version=version, architecture=self.rng.choice(["amd64", "arm64", "i386"]))
            buildd = who if n in sparse else self.rng.choice(self.buildds)
            body["user" if "user" in body else "builder"] = buildd
        elif service == "debbugs":
            if topic == "debbugs.bug.control":
                body.update(packages=[pkg], bugs=[self.rng.randint(1, 1_100_000)])
                body["changes"] = [dict(c, bug=body["bugs"][0]) for c in body["changes"]][:3]
            else:
                body.update(package=pkg, source=pkg, bug=self.rng.randint(1, 1_100_000))
            body["from"] = f"Someone <{who}>"
        elif service == "git":
            if topic == "git.receive":
                body["commit"] = dict(body["commit"], repo=pkg, agent=who.split("@")[0],
                                      username=who.split("@")[0], email=who)
            else:
                body.update(repo=pkg, agent=who.split("@")[0])
        elif topic == "dak.package.remove":
            body["sources"] = [{"name": pkg, "version": version}]
        else:
            body.update(source=pkg, version=version)
            if "changed_by" in body:
                body["changed_by"] = f"Someone <{who}>"
        return Event(topic, body)


def client(bus: Bus) -> RelayClient:
    opts = BusOptions.from_args(argparse.Namespace(relay=bus.relay_socket, state_dir=str(bus.state / "pubs")),
                                Config(), name="bench")
    opts.relay_timeout = 60.0
    return RelayClient(opts)


def stored(dsn: str) -> int:
    with psycopg.connect(dsn) as c:
        return c.execute("SELECT coalesce(sum(message_count), 0) FROM categories").fetchone()[0]


def start(argv: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    notify = log.with_suffix(".notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify))
    sock.settimeout(60)
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=out, env={**os.environ, **env, "NOTIFY_SOCKET": str(notify)})
    try:
        while b"READY=1" not in sock.recv(4096):
            pass
    finally:
        sock.close()
    return proc


def measure(conn: http.client.HTTPConnection, path: str, rounds: int) -> tuple[float, float, int]:
    samples = []
    status = 0
    for _ in range(rounds):
        t0 = time.perf_counter()
        conn.request("GET", path, headers={"Accept": "application/json"})
        resp = conn.getresponse()
        resp.read()
        samples.append(time.perf_counter() - t0)
        status = resp.status
    samples.sort()
    return statistics.median(samples) * 1000, samples[min(len(samples) - 1, int(len(samples) * 0.99))] * 1000, status


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1_000_000, help="messages (default 1,000,000)")
    p.add_argument("--rounds", type=int, default=200, help="requests per query shape (default 200)")
    p.add_argument("--verifying-processes", type=int, default=1, choices=(1, 2),
                   help="the archive's [subscribe] verifying_processes (default 1)")
    p.add_argument("--ingest-only", action="store_true", help="measure the ingest, not the queries")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-archive-"))
    key = make_gpg_key()
    db = Postgres(prefix="bar-", settings={"fsync": "on", "shared_buffers": "512MB", "max_wal_size": "4GB"})
    db.start()
    bus = Bus(tmp / "bus", key)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        bus.start()
        dsn = db.create_database("archive")
        config = tmp / "archive.toml"
        config.write_text(f"[subscribe]\nverifying_processes = {args.verifying_processes}\n")
        procs.append(start([sys.executable, "-m", "debpulse.consumers.archive.cli", "--dsn", dsn, "--endpoint",
                            bus.endpoint, "--keyring", str(bus.key.public_file), "--resume", "bench",
                            "--config", str(config)], tmp / "archive.log", bus.env))
        relay = client(bus)
        probe = 0
        while stored(dsn) == 0:  # until the archive's SUB socket has joined
            relay.emit_many([Event("logger.log", {"log": f"probe {probe}"})])
            probe += 1
            time.sleep(0.2)
        base = stored(dsn)
        mix = Mix(fixtures_dir(), tmp)
        rng = random.Random(1)
        sparse = set(rng.sample(range(args.n), 3))
        print(f"generating {args.n} events ...", flush=True)
        events = [mix.event(n, sparse) for n in range(args.n)]
        batch = 200
        t0 = time.perf_counter()
        for i in range(0, args.n, batch):
            relay.emit_many(events[i:i + batch])
        published = time.perf_counter() - t0
        while stored(dsn) < base + args.n:
            time.sleep(0.1)
        ingested = time.perf_counter() - t0
        relay.close()
        pub_rate, ing_rate = args.n / published, args.n / ingested
        print(f"ingest of {args.n} messages through the bus:")
        print(f"  relay publish rate   {pub_rate:8.0f} msg/s  (client hand-over to relay acknowledgement)")
        print(f"  archive ingest rate  {ing_rate:8.0f} msg/s  (first publish to the last one committed)")
        print(f"  ratio {ing_rate / pub_rate:.2f}x; the archive's last commit came "
              f"{ingested - published:.2f} s after the relay's last acknowledgement "
              f"(the archive checking signatures in {args.verifying_processes} process(es))")
        if args.ingest_only:
            return

        deep = max(2, min(1000, args.n // 50))
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("VACUUM ANALYZE")
            popular = c.execute("SELECT name, message_count FROM packages ORDER BY message_count DESC LIMIT 1"
                                ).fetchone()
            middle = c.execute("SELECT name, message_count FROM packages WHERE message_count BETWEEN 20 AND 40"
                               " LIMIT 1").fetchone()
            sparse_count = c.execute("SELECT message_count FROM users WHERE name = %s", (SPARSE,)).fetchone()
            # The row before page `deep` (page 1,000 at 1M; less for a quick run).
            offset_key = c.execute("SELECT ts, id FROM messages ORDER BY ts DESC, id DESC OFFSET %s LIMIT 1",
                                   ((deep - 1) * 25 - 1,)).fetchone()
        from debpulse.consumers.web.cursor import Cursor, encode

        cursor = encode(Cursor(offset_key[0], offset_key[1], "desc"))
        port = free_port()
        procs.append(start([sys.executable, "-m", "debpulse.consumers.web.cli", "--dsn", dsn, "--listen",
                            f"127.0.0.1:{port}"], tmp / "web.log", {}))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        shapes = [
            ("recent: /raw (newest 25, total from the counters)", "/raw"),
            ("recent, last 10 minutes (counted)", "/raw?delta=600"),
            ("by topic: debbugs.bug.report", "/raw?topic=org.debian.dev.debbugs.bug.report"),
            ("by topic, last 10 minutes (counted)", "/raw?topic=org.debian.dev.debbugs.bug.report&delta=600"),
            (f"by package, the most frequent ({popular[0]}, {popular[1]})", f"/raw?package={popular[0]}"),
            (f"by package, a middling one ({middle[0]}, {middle[1]})", f"/raw?package={middle[0]}"),
            (f"by sparse user ({sparse_count[0] if sparse_count else 0} messages)", f"/raw?user={SPARSE}"),
            ("by user and category", "/raw?user=dd0&category=debbugs"),
            ("contains, in category dak", "/raw?category=dak&contains=%22urgency%22:%20%22high%22"),
            (f"page {deep:,} by offset (page={deep})", f"/raw?page={deep}"),
            (f"page {deep:,} by cursor", f"/raw?cursor={cursor}"),
            ("page 1 (for comparison)", "/raw?page=1"),
        ]
        print(f"\nquery latency over HTTP at {stored(dsn)} rows, {args.rounds} requests each (median / p99 ms):")
        for name, path in shapes:
            median, p99, status = measure(conn, path, args.rounds)
            note = "" if status == 200 else f"  (HTTP {status})"
            print(f"  {name:<58} {median:7.1f} {p99:7.1f}{note}", flush=True)
        conn.close()
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        bus.close()
        db.destroy()
        drop_gpg_key(key)


if __name__ == "__main__":
    main()
