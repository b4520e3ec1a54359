"""The durable outbox: every envelope is written here, numbered, before it
is sent, and the replay endpoint answers from it.

SQLite in WAL mode.  `synchronous=NORMAL` (the default) survives a killed
process; `FULL` also survives a power cut, at the cost of an fsync per
commit (see the durability benchmark).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .errors import ConfigError

MAX_REPLY = 5_000  # envelopes per replay answer; clients page through ranges

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq_id    INTEGER PRIMARY KEY,
    msg_id    TEXT NOT NULL UNIQUE,
    key       TEXT UNIQUE,
    topic     TEXT NOT NULL,
    timestamp REAL NOT NULL,
    envelope  BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_time ON messages(timestamp);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


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
        try:
            db = self._db()
            db.executescript(_SCHEMA)
            row = db.execute("SELECT value FROM meta WHERE name='stream'").fetchone()
            if row is None:
                with db:
                    db.execute("INSERT INTO meta VALUES ('stream', ?)", (uuid.uuid4().hex,))
                    db.execute("INSERT INTO meta VALUES ('last_seq', '0')")
                row = db.execute("SELECT value FROM meta WHERE name='stream'").fetchone()
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
        """Number, build and store envelopes in one transaction.

        Each item is (idempotency key, build(seq_id) -> (signed envelope,
        its canonical bytes)).
        Returns (envelope, canonical bytes, is_new) per item; a key already
        stored returns the stored envelope and takes no number, so seq_id
        stays gap-free.  The canonical bytes are what goes on the wire.
        """
        db = self._db()
        out: list[tuple[dict[str, Any], bytes, bool]] = []
        with db:
            seq = int(db.execute("SELECT value FROM meta WHERE name='last_seq'").fetchone()[0])
            for key, build in items:
                if key is not None:
                    row = db.execute("SELECT envelope FROM messages WHERE key=?", (key,)).fetchone()
                    if row:
                        out.append((json.loads(row[0]), _as_bytes(row[0]), False))
                        continue
                seq += 1
                envelope, data = build(seq)
                db.execute(
                    "INSERT INTO messages (seq_id, msg_id, key, topic, timestamp, envelope) VALUES (?,?,?,?,?,?)",
                    (seq, envelope["msg_id"], key, envelope["topic"], envelope["timestamp"], data),
                )
                out.append((envelope, data, True))
            db.execute("UPDATE meta SET value=? WHERE name='last_seq'", (str(seq),))
        return out

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
        elif "msg_id" in query:
            sql, args = sql + "msg_id = ?", [str(query["msg_id"])]
        elif "msg_ids" in query:
            ids = [str(x) for x in query["msg_ids"]][:MAX_REPLY]
            sql, args = sql + f"msg_id IN ({','.join('?' * len(ids))})", ids
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
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
