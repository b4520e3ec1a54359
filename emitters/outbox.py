"""The durable outbox: every envelope is written here, numbered, before it
is sent, and the replay endpoint answers from it.

SQLite in WAL mode.  `synchronous=NORMAL` (the default) survives a killed
process; `FULL` also survives a power cut, at the cost of an fsync per
commit (see the durability benchmark).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from .errors import ConfigError

MAX_REPLY = 5_000  # envelopes per replay answer; clients page through ranges
log = logging.getLogger(__name__)

# A commit that takes the write-ahead log past wal_autocheckpoint pages
# copies it into the database there and then, with two fsyncs: that commit
# (and the relay's acknowledgement behind it) waits.  A thread of the
# outbox checkpoints instead, every second and passively (never blocking
# the writer or a reader: SQLite runs it without Python's lock); the
# writer's own checkpoint stays as a backstop far above what accumulates.
CHECKPOINT_EVERY = 1.0
_BACKSTOP_PAGES = 65_536
_WAL_LIMIT = 64 << 20  # the log file is cut back to this after a checkpoint

# msg_id is not indexed in `messages`: random ids land on random pages of
# an index, and with a unique index there each commit wrote about a page
# per message (12 of a publisher's 27 us per unsigned message).  The
# background thread files them into `msg_index` a second later, thousands
# at a time and sorted; a lookup reads the index and scans the few rows
# past `indexed_upto`.  Outboxes made before keep their unique index on
# `messages.msg_id` (no `indexed_upto` in meta) and are looked up there.
# The key index stays where it is: a repeated key must be found at once.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq_id    INTEGER PRIMARY KEY,
    msg_id    TEXT NOT NULL,
    key       TEXT UNIQUE,
    topic     TEXT NOT NULL,
    timestamp REAL NOT NULL,
    envelope  BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_time ON messages(timestamp);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS msg_index (msg_id TEXT PRIMARY KEY, seq_id INTEGER NOT NULL) WITHOUT ROWID;
"""
INDEX_CHUNK = 5_000  # msg_ids filed per transaction: the writer waits at most that long
PRUNE_INDEX_EVERY = 600.0  # seconds between removals of pruned messages' entries
_INDEXED_UPTO = "(SELECT CAST(value AS INTEGER) FROM meta WHERE name='indexed_upto')"


def _as_bytes(value: bytes | str) -> bytes:
    # Stored as canonical JSON bytes; text in outboxes written before that.
    return value if isinstance(value, bytes) else value.encode()


class OutboxError(ConfigError):
    """The outbox is unusable: refuse to run rather than lose or renumber."""


class Outbox:
    def __init__(self, path: Path, *, synchronous: str = "NORMAL", create: bool = True) -> None:
        self.path = Path(path)
        self._marker = self.path.with_suffix(".stream")
        if not self.path.exists() and self._marker.exists():
            raise OutboxError(
                f"{self.path}: outbox missing but {self._marker.name} says stream "
                f"{self._marker.read_text().strip()} existed; restore it, or remove "
                f"{self._marker} to start a new stream (subscribers will be told of the gap)"
            )
        if not create and not self.path.exists():
            raise OutboxError(f"{self.path}: no outbox")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._synchronous = synchronous
        self._local = threading.local()
        self._checkpointer: _Checkpointer | None = None
        try:
            db = self._db()
            db.executescript(_SCHEMA)
            row = db.execute("SELECT value FROM meta WHERE name='stream'").fetchone()
            if row is None:
                with db:
                    db.execute("INSERT INTO meta VALUES ('stream', ?)", (uuid.uuid4().hex,))
                    db.execute("INSERT INTO meta VALUES ('last_seq', '0')")
                    db.execute("INSERT INTO meta VALUES ('indexed_upto', '0')")
                row = db.execute("SELECT value FROM meta WHERE name='stream'").fetchone()
            self.indexed = db.execute("SELECT 1 FROM meta WHERE name='indexed_upto'").fetchone() is not None
            db.execute("PRAGMA quick_check").fetchone()
        except sqlite3.DatabaseError as exc:
            raise OutboxError(f"{self.path}: corrupted outbox ({exc}); keep it for inspection and restore a backup") \
                from None
        self.stream: str = row[0]
        if not self._marker.exists():
            self._marker.write_text(self.stream + "\n")

    def _db(self) -> sqlite3.Connection:
        # One connection per thread: the replay thread reads while the
        # publishing thread writes (WAL lets them run side by side).
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={self._synchronous}")
            db.execute(f"PRAGMA wal_autocheckpoint={_BACKSTOP_PAGES}")
            db.execute(f"PRAGMA journal_size_limit={_WAL_LIMIT}")
            # 64 MB of pages: the msg_id and key indexes take random
            # inserts; with a million envelopes stored they are about
            # 100 MB, and the default 2 MB made every insert read pages.
            db.execute("PRAGMA cache_size=-65536")
            db.isolation_level = "DEFERRED"
            self._local.db = db
        return db

    def last_seq(self) -> int:
        row = self._db().execute("SELECT value FROM meta WHERE name='last_seq'").fetchone()
        return int(row[0])

    def first_seq(self) -> int:
        row = self._db().execute("SELECT min(seq_id) FROM messages").fetchone()
        return int(row[0]) if row[0] is not None else self.last_seq() + 1

    def first_seq_since(self, timestamp: float) -> int:
        """The first seq_id stamped at or after `timestamp`, or the next
        number to come when there is none."""
        row = self._db().execute("SELECT min(seq_id) FROM messages WHERE timestamp >= ?", (timestamp,)).fetchone()
        return int(row[0]) if row[0] is not None else self.last_seq() + 1

    def find_key(self, key: str) -> dict[str, Any] | None:
        row = self._db().execute("SELECT envelope FROM messages WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def append_many(
        self, items: Iterable[tuple[str | None, Callable[[int], tuple[dict[str, Any], bytes]]]]
    ) -> list[tuple[dict[str, Any], bytes, bool]]:
        """append_batch with one builder per item: (idempotency key,
        build(seq_id) -> (signed envelope, its canonical bytes))."""
        items = list(items)
        return self.append_batch([key for key, _ in items],
                                 lambda numbered: [items[i][1](seq) for i, seq in numbered])

    def append_batch(
        self, keys: Sequence[str | None], build: Callable[[list[tuple[int, int]]], list[tuple[dict[str, Any], bytes]]]
    ) -> list[tuple[dict[str, Any], bytes, bool]]:
        """Number, build and store a batch of envelopes in one transaction.

        `keys` holds each item's idempotency key (or None).  `build` gets
        (index, seq_id) for every item to publish and returns (signed
        envelope, its canonical bytes) for each, in that order; the
        canonical bytes are what goes on the wire.
        Returns (envelope, canonical bytes, is_new) per item; a key already
        stored (or earlier in the batch) returns that envelope and takes no
        number, so seq_id stays gap-free.
        """
        db = self._db()
        if self._checkpointer is None:
            self._checkpointer = _Checkpointer(self.path, self._synchronous, index=self.indexed)
            self._checkpointer.start()
        out: list[Any] = [None] * len(keys)
        with db:
            seq = int(db.execute("SELECT value FROM meta WHERE name='last_seq'").fetchone()[0])
            stored = self._stored(db, {k for k in keys if k is not None})
            numbered: list[tuple[int, int]] = []
            first: dict[str, int] = {}
            repeats: list[tuple[int, int]] = []
            for i, key in enumerate(keys):
                if key is not None:
                    if key in stored:
                        out[i] = (json.loads(stored[key]), _as_bytes(stored[key]), False)
                        continue
                    if key in first:
                        repeats.append((i, first[key]))
                        continue
                    first[key] = i
                seq += 1
                numbered.append((i, seq))
            if numbered:
                built = build(numbered)
                rows = []
                for (i, n), (envelope, data) in zip(numbered, built, strict=True):
                    out[i] = (envelope, data, True)
                    rows.append((n, envelope["msg_id"], keys[i], envelope["topic"], envelope["timestamp"], data))
                db.executemany(
                    "INSERT INTO messages (seq_id, msg_id, key, topic, timestamp, envelope) VALUES (?,?,?,?,?,?)", rows)
                db.execute("UPDATE meta SET value=? WHERE name='last_seq'", (str(seq),))
            for i, j in repeats:
                out[i] = (out[j][0], out[j][1], False)
        return out

    @staticmethod
    def _stored(db: sqlite3.Connection, keys: set[str]) -> dict[str, bytes | str]:
        """The stored envelopes of those keys that are stored: one query per
        500 keys, not one per event."""
        found: dict[str, bytes | str] = {}
        ordered = sorted(keys)
        for n in range(0, len(ordered), 500):
            chunk = ordered[n:n + 500]
            found.update(db.execute(f"SELECT key, envelope FROM messages WHERE key IN ({','.join('?' * len(chunk))})",
                                    chunk).fetchall())
        return found

    def query(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        return [json.loads(r) for r in self.query_raw(query)]

    def query_raw(self, query: dict[str, Any]) -> list[bytes]:
        """Stored canonical envelopes for fedmsg's replay query shapes: seq_id, seq_ids, seq_id_range,
        msg_id, msg_ids, time (a [start, end] pair of epoch seconds).
        An open end (null) in a range means "up to the newest"."""
        db = self._db()
        sql = "SELECT envelope FROM messages WHERE "
        args: list[Any]
        if "seq_id" in query:
            sql, args = sql + "seq_id = ?", [int(query["seq_id"])]
        elif "seq_ids" in query:
            ids = [int(x) for x in query["seq_ids"]][:MAX_REPLY]
            sql, args = sql + f"seq_id IN ({','.join('?' * len(ids))})", ids
        elif "seq_id_range" in query:
            lo, hi = query["seq_id_range"]
            sql, args = sql + "seq_id >= ? AND seq_id <= ?", [int(lo), int(hi) if hi is not None else 2**62]
        elif "msg_id" in query or "msg_ids" in query:
            ids = [str(query["msg_id"])] if "msg_id" in query else [str(x) for x in query["msg_ids"]][:MAX_REPLY]
            marks = ",".join("?" * len(ids))
            if not self.indexed:
                sql, args = sql + f"msg_id IN ({marks})", ids
            else:
                # One statement, so one snapshot: what is filed in the index
                # and the rows past it are seen at the same moment.
                sql = (f"SELECT envelope, seq_id FROM messages WHERE seq_id IN "
                       f"(SELECT seq_id FROM msg_index WHERE msg_id IN ({marks})) "
                       f"UNION SELECT envelope, seq_id FROM messages WHERE seq_id > {_INDEXED_UPTO} "
                       f"AND msg_id IN ({marks})")
                rows = db.execute(sql + f" ORDER BY seq_id LIMIT {MAX_REPLY}", ids + ids).fetchall()
                return [_as_bytes(r[0]) for r in rows]
        elif "time" in query:
            lo, hi = query["time"]
            sql, args = sql + "timestamp >= ? AND timestamp <= ?", [float(lo), float(hi) if hi is not None else 1e18]
        else:
            raise ValueError("query needs one of seq_id, seq_ids, seq_id_range, msg_id, msg_ids, time")
        rows = db.execute(sql + f" ORDER BY seq_id LIMIT {MAX_REPLY}", args).fetchall()
        return [_as_bytes(r[0]) for r in rows]

    def prune(self, *, max_age: float | None = None, max_count: int | None = None) -> int:
        """Drop old envelopes; the numbering goes on (last_seq is kept)."""
        db = self._db()
        removed = 0
        with db:
            if max_age is not None:
                removed += db.execute("DELETE FROM messages WHERE timestamp < ?", (time.time() - max_age,)).rowcount
            if max_count is not None:
                removed += db.execute(
                    "DELETE FROM messages WHERE seq_id <= (SELECT value FROM meta WHERE name='last_seq') - ?",
                    (max_count,),
                ).rowcount
        return removed

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None


class _Checkpointer(threading.Thread):
    """Copies the write-ahead log into the database in the background, and
    files new messages' msg_ids into `msg_index` (`index`: the outbox has
    one)."""

    def __init__(self, path: Path, synchronous: str, *, index: bool = False) -> None:
        super().__init__(name="outbox-checkpoint", daemon=True)
        self._path = path
        self._synchronous = synchronous
        self._index = index
        self._stopping = threading.Event()
        self._pruned_at = time.monotonic()

    def run(self) -> None:
        db = sqlite3.connect(self._path, isolation_level=None, timeout=30)
        try:
            db.execute(f"PRAGMA synchronous={self._synchronous}")
            db.execute("PRAGMA cache_size=-65536")  # the msg_id index's pages, as the writer's
            while not self._stopping.wait(CHECKPOINT_EVERY):
                try:
                    if self._index:
                        index_msg_ids(db)
                        if time.monotonic() - self._pruned_at >= PRUNE_INDEX_EVERY:
                            self._pruned_at = time.monotonic()
                            drop_pruned_msg_ids(db)
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as exc:  # retried next second; the writer's backstop checkpoint takes over
                    log.warning("background work on %s failed: %s", self._path, exc)
        finally:
            db.close()

    def stop(self) -> None:
        self._stopping.set()
        self.join(10)


def index_msg_ids(db: sqlite3.Connection) -> int:
    """File the msg_ids of messages past `indexed_upto` into `msg_index`,
    INDEX_CHUNK per transaction, sorted; returns how many."""
    done = 0
    while True:
        with db:
            db.execute("BEGIN IMMEDIATE")  # the writer's lock: nothing commits in between
            upto = int(db.execute("SELECT value FROM meta WHERE name='indexed_upto'").fetchone()[0])
            last = db.execute("SELECT max(seq_id) FROM messages").fetchone()[0]
            if last is None or last <= upto:
                return done
            hi = min(last, upto + INDEX_CHUNK)
            # OR REPLACE: a key published again after its first message was
            # pruned has the same msg_id (uuid5 of the key); the new one wins.
            done += db.execute("INSERT OR REPLACE INTO msg_index (msg_id, seq_id) SELECT msg_id, seq_id FROM messages "
                               "WHERE seq_id > ? AND seq_id <= ? ORDER BY msg_id", (upto, hi)).rowcount
            db.execute("UPDATE meta SET value=? WHERE name='indexed_upto'", (str(hi),))


def drop_pruned_msg_ids(db: sqlite3.Connection) -> int:
    """Remove index entries of pruned messages (a lookup already skips them:
    it joins on the message)."""
    with db:
        db.execute("BEGIN IMMEDIATE")
        return db.execute("DELETE FROM msg_index WHERE seq_id < coalesce((SELECT min(seq_id) FROM messages), "
                          f"{_INDEXED_UPTO} + 1)").rowcount
