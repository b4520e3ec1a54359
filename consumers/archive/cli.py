"""debpulse-archive: store every verified bus message in PostgreSQL.

At least once from the bus, exactly once in the database: messages are
acknowledged (the checkpoint moves) only after the transaction that holds
them has committed, and a message delivered again (after a crash, or by
two routes) is recognised by its msg_id and not stored twice.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import psycopg

from debpulse.adapters.common.quarantine import Quarantine
from debpulse.adapters.common.service import metrics_port, ready, serve_metrics, stopping
from debpulse.emitters import cli, metrics, paths, replay
from debpulse.emitters.backoff import Backoff
from debpulse.emitters.config import Config, Derived, Key, Table, Values
from debpulse.emitters.consumer import open_subscriber, open_verifier
from debpulse.emitters.errors import ConfigError
from debpulse.emitters.subscriber import Gap, Received, Subscriber
from debpulse.emitters.verify import Verifier

from . import partitions
from .rows import Row, Unstorable, to_row
from .store import GapRecord, SchemaMismatch, Store, Written

log = logging.getLogger("debpulse-archive")

DEFAULT_DSN = "dbname=debpulse"
ARCHIVE = Table("archive", {
    "dsn": Key(str, DEFAULT_DSN, "libpq connection string of the database the messages are stored in"),
    "read_dsn": Key(str, Derived("`dsn`"), "where `debpulse-web` reads (a streaming replica)"),
    "resume": Key(str, "archive", "checkpoint name: a restart continues where it stopped"),
    "batch": Key(int, 1000, "messages per transaction at most"),
    "linger": Key((int, float), 0.05, "seconds a batch waits to fill"),
    "partition": Key(str, "month", f"one partition per {', '.join(f'`{i}`' for i in partitions.INTERVALS)} (UTC)"),
    "retention_days": Key((int, float), 0, "drop whole partitions older than this many days (`0`: keep "
                          "everything)"),
    "metrics_port": Key(int, None, "serve Prometheus metrics on `127.0.0.1:PORT`"),
    "topics": Key(list, [], "only topics starting with these, full ones (`org.debian...`); none: every topic",
                  items=str),
    "connect_timeout": Key((int, float), 10, "seconds to wait for the database"),
}, "The history: every verified message kept in PostgreSQL by `debpulse-archive`, and read by `debpulse-web`.",
   read_by=("debpulse-archive", "debpulse-web"))
LOCAL_REPLAY = "tcp://127.0.0.1:9941"
RETENTION_EVERY = 3600.0

EPILOG = """\
examples:
  debpulse-archive --dsn "host=db.example.org dbname=debpulse user=debpulse"
  debpulse-archive --config /etc/debpulse/debpulse.toml --resume archive
  debpulse-archive backfill --replay tcp://ftp-master.example.org:9941   # what a publisher still holds

/etc/debpulse/debpulse.toml:
  [archive]
  dsn = "service=debpulse"           # libpq: a service in pg_service.conf, a password in ~/.pgpass
  read_dsn = "service=debpulse-replica"  # where debpulse-web reads (a streaming replica)
  resume = "archive"                 # checkpoint name: a restart continues where it stopped
  partition = "month"                # day, week or month (UTC)
  retention_days = 0                 # 0 keeps everything; else whole partitions older than this go
"""


class Settings:
    def __init__(self, args: argparse.Namespace, config: Config) -> None:
        section = ARCHIVE.read(config)
        self.where = section.where
        self.dsn: str = args.dsn or section["dsn"]
        self.resume: str = getattr(args, "resume", None) or section["resume"]
        self.batch = _positive(getattr(args, "batch", None) or section["batch"], "batch", section)
        self.linger = float(section["linger"])
        self.interval = section["partition"]
        if self.interval not in partitions.INTERVALS:
            raise ConfigError(f"{section.where}: [archive] partition must be one of "
                              f"{', '.join(partitions.INTERVALS)}, not {self.interval!r}")
        self.retention_days = float(section["retention_days"])
        if self.retention_days < 0:
            raise ConfigError(f"{section.where}: [archive] retention_days must be 0 (keep all) or positive")
        self.topics = getattr(args, "topic", None) or section["topics"]
        self.connect_timeout = float(section["connect_timeout"])
        self.metrics_port = metrics_port(args, section)
        section["read_dsn"]  # read by debpulse-web; checked here too


def _positive(value: int, key: str, section: Values) -> int:
    if value < 1:
        raise ConfigError(f"{section.where}: [archive] {key} must be at least 1")
    return value


class Archiver:
    """The loop: take a batch from the subscriber, store it in one
    transaction, then acknowledge it."""

    def __init__(self, sub: Subscriber, store: Store, quarantine: Quarantine, *, batch: int = 1000,
                 linger: float = 0.05) -> None:
        self.sub = sub
        self.store = store
        self.quarantine = quarantine
        self.batch = batch
        self.linger = linger
        self.stored = 0
        self.duplicates = 0
        self.backoff = Backoff(first=0.2, most=10.0, jitter=0.2)
        self._next_retention = 0.0

    def take(self, timeout: float = 1.0) -> list[Received | Gap]:
        """A batch: what arrives within `linger` of the first item, up to `batch` items."""
        first = self.sub.receive(timeout=timeout)
        if first is None:
            return []
        items: list[Received | Gap] = [first]
        deadline = time.monotonic() + self.linger
        while len(items) < self.batch:
            item = self.sub.receive(timeout=max(0.0, deadline - time.monotonic()))
            if item is None:
                break
            items.append(item)
        return items

    def step(self, timeout: float = 1.0) -> int:
        self._maybe_expire()
        items = self.take(timeout)
        if not items:
            return 0
        rows: list[Row] = []
        gaps: list[GapRecord] = []
        for item in items:
            if isinstance(item, Gap):
                if item.permanent:
                    log.error("messages %d..%d of %s are lost and will not be archived: %s",
                              item.first, item.last, item.publisher, item.reason)
                    metrics.inc("debpulse_archive_lost_total", item.last - item.first + 1,
                                help="bus messages lost before the archive (permanent gaps)")
                    gaps.append(GapRecord(item.publisher, item.first, item.last, item.reason))
                continue
            try:
                rows.append(to_row(item.envelope, signer=item.verdict.signer, scope=item.verdict.scope))
            except Unstorable as exc:
                data = json.dumps(item.envelope, sort_keys=True, default=str).encode()
                self.quarantine.keep(data, f"{_safe_name(item.envelope.get('msg_id'))}.json", str(exc))
        written = self._write(rows, gaps)
        self.stored += written.stored
        self.duplicates += written.duplicates
        metrics.inc("debpulse_archive_stored_total", written.stored, help="messages stored")
        metrics.inc("debpulse_archive_duplicates_total", written.duplicates,
                    help="messages delivered again and recognised by msg_id (not stored twice)")
        if written.expired:
            metrics.inc("debpulse_archive_expired_total", written.expired,
                        help="messages older than the retention age when they came (not stored)")
        self._ack(items)
        return len(items)

    def _write(self, rows: list[Row], gaps: list[GapRecord]) -> Written:
        """Store the batch, retrying (with backoff) until the database takes it:
        nothing is acknowledged before, so nothing is lost meanwhile."""
        while True:
            try:
                if self.store.conn is None or self.store.conn.closed:
                    self.store.connect()
                written = self.store.write(rows, gaps)
                self.backoff.reset()
                return written
            except SchemaMismatch:
                raise
            except psycopg.OperationalError as exc:
                wait = self.backoff.delay()
                log.warning("database unavailable (%s); retrying the batch of %d in %.1f s",
                            " ".join(str(exc).split()), len(rows), wait)
                metrics.inc("debpulse_archive_db_errors_total", help="batches the database did not take at once")
                self.store.close()
                time.sleep(wait)
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure) as exc:
                log.info("retrying a batch: %s", exc)

    def _ack(self, items: list[Received | Gap]) -> None:
        # The checkpoint keeps the highest number per stream: acknowledging
        # the highest of the batch per stream is the same, one write not many.
        highest: dict[str, tuple[int, Received | Gap]] = {}
        for item in items:
            mark = item.seq_id if isinstance(item, Received) else (item.last if item.permanent else None)
            if item.publisher and mark and mark >= highest.get(item.publisher, (0, item))[0]:
                highest[item.publisher] = (mark, item)
        for _, item in highest.values():
            self.sub.ack(item)

    def _maybe_expire(self) -> None:
        if not self.store.retention_days or time.monotonic() < self._next_retention:
            return
        self._next_retention = time.monotonic() + RETENTION_EVERY
        try:
            if self.store.conn is None or self.store.conn.closed:
                self.store.connect()
            self.store.expire()
        except psycopg.Error as exc:
            log.warning("retention did not run (next try in an hour): %s", exc)

    def run(self) -> None:
        while True:
            self.step()


def _safe_name(value: object) -> str:
    text = value if isinstance(value, str) else "message"
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:100] or "message"


def _parser() -> cli.Parser:
    p = cli.parser("debpulse-archive", "Store every verified bus message in PostgreSQL "
                   "(debpulse-web answers queries over it).", EPILOG)
    p.add_argument("mode", nargs="?", choices=("run", "backfill"), default="run",
                   help="run: follow the bus (default); backfill: fetch what publishers still hold, then exit")
    cli.add_common(p, subscribe=True)
    p.add_argument("--dsn", metavar="DSN", help=f"PostgreSQL connection (libpq string or URI; default {DEFAULT_DSN!r})")
    p.add_argument("--resume", metavar="NAME", help="checkpoint name (default 'archive')")
    p.add_argument("--topic", action="append", default=[], metavar="PREFIX",
                   help="only topics starting with PREFIX (org.debian...; default every topic)")
    p.add_argument("--batch", type=int, metavar="N", help="messages per transaction at most (default 1000)")
    p.add_argument("--replay", action="append", default=[], metavar="URL",
                   help="backfill: this publisher's replay endpoint (repeatable; default: the announced "
                        f"publishers', else {LOCAL_REPLAY})")
    p.add_argument("--metrics-port", type=int, metavar="PORT", help="serve Prometheus metrics on 127.0.0.1:PORT")
    return p


@cli.entry
def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    cli.setup_logging(args.verbose)
    config = cli.config_from(args)
    settings = Settings(args, config)
    if args.mode == "backfill":
        for url in args.replay:
            if not url.startswith(("tcp://", "ipc://")):
                raise ConfigError(f"--replay {url!r} is not a tcp:// or ipc:// endpoint")
    store = Store(settings.dsn, interval=settings.interval, retention_days=settings.retention_days,
                  connect_timeout=settings.connect_timeout)
    try:
        store.connect()
    except SchemaMismatch as exc:
        raise ConfigError(str(exc)) from None
    except psycopg.OperationalError as exc:
        # At start a database that does not answer is most often a wrong
        # DSN; systemd restarts us if it was only not up yet.
        print(f"debpulse-archive: cannot connect to the database ({' '.join(str(exc).split())})", file=sys.stderr)
        return 1
    state = Path(args.state_dir or paths.state_dir())
    quarantine = Quarantine(state / "archive" / "rejected", "archive")
    full = [t for t in settings.topics if t.startswith("org.")]
    if len(full) != len(settings.topics):
        raise ConfigError("archive topics must be full prefixes (org.debian.<env>...)")
    if args.mode == "backfill":
        try:
            verifier = open_verifier(args, config)
            endpoints = args.replay or _announced_replays(args, config) or [LOCAL_REPLAY]
            return backfill(Archiver(None, store, quarantine), verifier, endpoints)  # type: ignore[arg-type]
        finally:
            store.close()
    sub = open_subscriber(args, config, topics=full or None, resume=settings.resume, auto_ack=False)
    archiver = Archiver(sub, store, quarantine, batch=settings.batch, linger=settings.linger)
    try:
        serve_metrics(settings.metrics_port)
        ready(f"archiving into {store.db.info.dbname} (checkpoint {settings.resume!r})")
        log.info("archiving from %s (checkpoint %r)", ", ".join(sub.endpoints), settings.resume)
        archiver.run()
    except KeyboardInterrupt:
        pass
    finally:
        stopping()
        sub.close()
        store.close()
        log.info("stopped: %d stored, %d already there", archiver.stored, archiver.duplicates)
    return 0


def _announced_replays(args: argparse.Namespace, config: Config) -> list[str]:
    from debpulse.emitters.discovery import Discovery

    discovery = Discovery.from_args(args, config)
    if discovery.is_empty_configuration():
        return []
    return [p.replay for p in discovery.current() if p.replay]


def backfill(archiver: Archiver, verifier: Verifier, endpoints: list[str]) -> int:
    """Store everything the publishers behind `endpoints` still hold (their
    outboxes, through their replay endpoints), verified as the subscriber
    verifies replayed messages, then return.  Safe beside a running
    archive: what is already there is recognised by msg_id."""
    rejected: dict[str, int] = {}
    for url in endpoints:
        try:
            status = replay.request(url, {"status": True}, timeout=10)
            info = status[0]["status"] if status else {}
            first, last = int(info.get("first_seq") or 1), int(info.get("last_seq") or 0)
            log.info("backfill: %s holds %d..%d of %s", url, first, last, info.get("publisher"))
            lo = first
            while lo <= last:
                found = replay.request(url, {"seq_id_range": [lo, last]}, timeout=30)
                if not found:
                    break
                rows = []
                for envelope in found:
                    verdict = verifier.check(envelope, replayed=True)
                    if not verdict.ok:
                        rejected[verdict.reason] = rejected.get(verdict.reason, 0) + 1
                        continue
                    try:
                        rows.append(to_row(envelope, signer=verdict.signer, scope=verdict.scope))
                    except Unstorable as exc:
                        archiver.quarantine.keep(json.dumps(envelope, sort_keys=True).encode(),
                                                 f"{_safe_name(envelope.get('msg_id'))}.json", str(exc))
                written = archiver._write(rows, [])  # noqa: SLF001 (the same retrying write)
                archiver.stored += written.stored
                archiver.duplicates += written.duplicates
                lo = max(e.get("seq_id") or lo for e in found) + 1
        except (replay.ReplayError, KeyError, TypeError, ValueError) as exc:
            print(f"debpulse-archive: backfill from {url}: {exc}", file=sys.stderr)
            return 1
    refused = ", ".join(f"{n} {reason}" for reason, n in sorted(rejected.items()))
    print(f"backfill: {archiver.stored} stored, {archiver.duplicates} already there"
          + (f", refused: {refused}" if refused else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
