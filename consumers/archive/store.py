"""The archive's database I/O: schema, partitions, batched idempotent
inserts, retention.  One connection, one writer per batch.

A batch is stored in one transaction: the msg_ids it does not already
hold (idempotency on msg_id alone), the messages (COPY), the people and
packages they concern, and the counters of the name tables.  Whatever
fails rolls the batch back whole, so retrying it is always safe.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql

from . import partitions, schema
from .partitions import Bounds
from .rows import Row

log = logging.getLogger(__name__)

MESSAGE_COLUMNS = ("ts", "id", "msg_id", "topic_id", "category_id", "publisher_id", "seq_id", "i", "username",
                   "agent", "signer", "scope", "crypto", "signature", "headers", "body", "usernames", "packages")
NAME_TABLES = ("categories", "topics", "users", "packages", "publishers")
# One writer at a time changes the schema or the partitions.
_LOCK_KEY = 0x64656270  # "debp"
# One writer at a time numbers and commits messages: held from the first
# id a batch takes until its commit, so ids become visible in their order
# and a reader's "every id above N" is never missing one committed later
# below it (debpulse-web's live pages resume from an id).
_POSITION_LOCK = 0x64656271
# Sent in each transaction that stores messages, with the newest id:
# debpulse-web LISTENs, and clients resume from the ids they have seen.
NOTIFY_CHANNEL = "debpulse_archive"


class SchemaMismatch(psycopg.Error):
    pass


@dataclass(frozen=True)
class GapRecord:
    publisher: str
    first: int
    last: int
    reason: str


@dataclass(frozen=True)
class Written:
    stored: int       # new messages
    duplicates: int   # already there (msg_id), not stored again
    expired: int      # older than the retention age, not stored


class Store:
    def __init__(self, dsn: str, *, interval: str = "month", retention_days: float = 0,
                 connect_timeout: float = 10) -> None:
        partitions.period(datetime.now().astimezone(), interval)  # ValueError for an unknown interval
        self.dsn = dsn
        self.interval = interval
        self.retention_days = retention_days
        self.connect_timeout = connect_timeout
        self.conn: psycopg.Connection | None = None
        self._ids: dict[str, dict[str, int]] = {t: {} for t in NAME_TABLES}
        self._parts: dict[Bounds, dict[str, str]] = {}

    # -- connection and schema -------------------------------------------------

    def connect(self) -> None:
        self.close()
        conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=max(1, int(self.connect_timeout)),
                               application_name="debpulse-archive")
        conn.execute("SET TIME ZONE 'UTC'")
        self.conn = conn
        self.migrate()
        self.load_partitions()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    @property
    def db(self) -> psycopg.Connection:
        if self.conn is None or self.conn.closed:
            raise psycopg.OperationalError("not connected")
        return self.conn

    def migrate(self) -> None:
        with self.db.transaction():
            self.db.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            self.db.execute(schema.DDL)
            row = self.db.execute("SELECT version FROM archive_schema").fetchone()
            if row is None:
                self.db.execute("INSERT INTO archive_schema VALUES (%s)", (schema.VERSION,))
            elif row[0] != schema.VERSION:
                raise SchemaMismatch(f"the database holds archive schema {row[0]}, this program knows {schema.VERSION}")

    def load_partitions(self) -> None:
        found: dict[Bounds, dict[str, str]] = {}
        for parent, child, expr in self.db.execute(
                "SELECT p.relname, c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
                " JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent"
                " WHERE p.relname = ANY(%s) AND pg_table_is_visible(p.oid)", (list(schema.PARTITIONED),)):
            bounds = partitions.parse_bound(expr)
            if bounds is not None:
                found.setdefault(bounds, {})[parent] = child
        self._parts = found

    @property
    def partitions(self) -> list[Bounds]:
        return sorted(self._parts)

    def ensure_partitions(self, times: Iterable[datetime]) -> None:
        """Make the partitions these times need (each in its own short transaction)."""
        for ts in sorted(set(times)):
            if partitions.covering(ts, self._parts):
                continue
            bounds = partitions.fit(ts, self.interval, self._parts)
            with self.db.transaction():
                self.db.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
                self.load_partitions()  # another writer may have made it meanwhile
                if partitions.covering(ts, self._parts):
                    continue
                bounds = partitions.fit(ts, self.interval, self._parts)
                made = {}
                for table in schema.PARTITIONED:
                    child = partitions.name(table, bounds)
                    self.db.execute(sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})").format(
                        sql.Identifier(child), sql.Identifier(table), sql.Literal(bounds[0]), sql.Literal(bounds[1])))
                    made[table] = child
            self._parts[bounds] = made
            log.info("made partitions for %s .. %s", bounds[0].isoformat(), bounds[1].isoformat())

    # -- names -------------------------------------------------------------------

    def _name_ids(self, table: str, names: Iterable[str], categories: dict[str, int] | None = None) -> dict[str, int]:
        """Ids of `names` in a name table, made (and committed) if new: the
        cache never holds an id that a rolled-back batch made."""
        cache = self._ids[table]
        missing = sorted({n for n in names if n not in cache})
        if missing:
            with self.db.transaction():
                if table == "topics":
                    assert categories is not None
                    from .rows import category_of

                    self.db.execute(
                        "INSERT INTO topics (name, category_id) SELECT * FROM unnest(%s::text[], %s::smallint[])"
                        " ON CONFLICT (name) DO NOTHING",
                        (missing, [categories[category_of(t)] for t in missing]))
                else:
                    self.db.execute(sql.SQL("INSERT INTO {} (name) SELECT unnest(%s::text[]) ON CONFLICT (name)"
                                            " DO NOTHING").format(sql.Identifier(table)), (missing,))
                for ident, name in self.db.execute(
                        sql.SQL("SELECT id, name FROM {} WHERE name = ANY(%s)").format(sql.Identifier(table)),
                        (missing,)):
                    cache[name] = ident
        return cache

    # -- writing -------------------------------------------------------------------

    def cutoff(self, now: datetime) -> datetime | None:
        from datetime import timedelta

        return now - timedelta(days=self.retention_days) if self.retention_days else None

    def write(self, rows: Sequence[Row], gaps: Sequence[GapRecord] = (), *, now: datetime | None = None) -> Written:
        """Store a batch in one transaction; safe to call again with the same batch."""
        unique: dict[str, Row] = {}
        for r in rows:
            unique.setdefault(r.msg_id, r)
        cutoff = self.cutoff(now or datetime.now().astimezone())
        keep = [r for r in unique.values() if cutoff is None or r.ts >= cutoff]
        expired = len(unique) - len(keep)
        categories = self._name_ids("categories", (r.category for r in keep))
        topics = self._name_ids("topics", (r.topic for r in keep), categories)
        publishers = self._name_ids("publishers", (r.publisher for r in keep if r.publisher))
        users = self._name_ids("users", (u for r in keep for u in r.usernames))
        packages = self._name_ids("packages", (p for r in keep for p in r.packages))
        self.ensure_partitions(r.ts for r in keep)
        with self.db.transaction():
            cur = self.db.cursor()
            new: dict[str, int] = {}
            if keep:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (_POSITION_LOCK,))
                cur.execute("INSERT INTO msg_ids (msg_id, ts) SELECT * FROM unnest(%s::text[], %s::timestamptz[])"
                            " ON CONFLICT DO NOTHING RETURNING msg_id, id",
                            ([r.msg_id for r in keep], [r.ts for r in keep]))
                new = dict(cur.fetchall())
            fresh = [r for r in keep if r.msg_id in new]
            if fresh:
                self._copy_messages(cur, fresh, new, topics, categories, publishers)
                self._copy_links(cur, "message_users", "user_id", [(users[u], r.ts, new[r.msg_id])
                                                                  for r in fresh for u in r.usernames])
                self._copy_links(cur, "message_packages", "package_id", [(packages[p], r.ts, new[r.msg_id])
                                                                        for r in fresh for p in r.packages])
                self._bump(cur, "categories", [(categories[r.category], r.ts) for r in fresh])
                self._bump(cur, "topics", [(topics[r.topic], r.ts) for r in fresh], first_seen=True)
                self._bump(cur, "users", [(users[u], r.ts) for r in fresh for u in r.usernames])
                self._bump(cur, "packages", [(packages[p], r.ts) for r in fresh for p in r.packages])
                # Delivered at the commit, and only if it commits.
                cur.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, str(max(new.values()))))
            for g in gaps:
                cur.execute("INSERT INTO gaps (publisher, first, last, reason) VALUES (%s, %s, %s, %s)"
                            " ON CONFLICT DO NOTHING", (g.publisher, g.first, g.last, g.reason))
        return Written(len(fresh), len(keep) - len(fresh), expired)

    @staticmethod
    def _copy_messages(cur: psycopg.Cursor, rows: Sequence[Row], ids: dict[str, int], topics: dict[str, int],
                       categories: dict[str, int], publishers: dict[str, int]) -> None:
        statement = sql.SQL("COPY messages ({}) FROM STDIN").format(
            sql.SQL(", ").join(map(sql.Identifier, MESSAGE_COLUMNS)))
        with cur.copy(statement) as copy:
            for r in rows:
                copy.write_row((
                    r.ts, ids[r.msg_id], r.msg_id, topics[r.topic], categories[r.category],
                    publishers.get(r.publisher) if r.publisher else None, r.seq_id, r.i, r.username, r.agent,
                    r.signer, r.scope, r.crypto, r.signature,
                    json.dumps(r.headers, ensure_ascii=False, separators=(",", ":")), r.body,
                    list(r.usernames), list(r.packages),
                ))

    @staticmethod
    def _copy_links(cur: psycopg.Cursor, table: str, column: str, links: list[tuple[int, datetime, int]]) -> None:
        if not links:
            return
        with cur.copy(sql.SQL("COPY {} ({}, ts, message_id) FROM STDIN").format(
                sql.Identifier(table), sql.Identifier(column))) as copy:
            for link in set(links):
                copy.write_row(link)

    @staticmethod
    def _bump(cur: psycopg.Cursor, table: str, seen: list[tuple[int, datetime]], first_seen: bool = False) -> None:
        """Add to each name's message_count and move its last_seen on."""
        if not seen:
            return
        agg: dict[int, list] = {}
        for ident, ts in seen:
            a = agg.get(ident)
            if a is None:
                agg[ident] = [1, ts, ts]
            else:
                a[0] += 1
                a[1] = min(a[1], ts)
                a[2] = max(a[2], ts)
        ids = sorted(agg)  # one lock order for every writer
        first = sql.SQL(", first_seen = LEAST(t.first_seen, v.first)") if first_seen else sql.SQL("")
        cur.execute(sql.SQL(
            "UPDATE {} t SET message_count = t.message_count + v.n, last_seen = GREATEST(t.last_seen, v.last){}"
            " FROM unnest(%s::int[], %s::bigint[], %s::timestamptz[], %s::timestamptz[]) AS v(id, n, first, last)"
            " WHERE t.id = v.id").format(sql.Identifier(table), first),
            (ids, [agg[i][0] for i in ids], [agg[i][1] for i in ids], [agg[i][2] for i in ids]))

    # -- retention -----------------------------------------------------------------

    def expire(self, now: datetime | None = None) -> int:
        """Drop the partitions wholly older than the retention age, with
        their msg_ids and their share of the counters.  Returns how many
        periods were dropped."""
        cutoff = self.cutoff(now or datetime.now().astimezone())
        if cutoff is None:
            return 0
        self.load_partitions()
        dropped = 0
        for bounds in partitions.expired(self._parts, cutoff):
            tables = self._parts[bounds]
            with self.db.transaction():
                self.db.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
                for table, counts in (("messages", ("topics", "topic_id")), ("messages", ("categories", "category_id")),
                                      ("message_users", ("users", "user_id")),
                                      ("message_packages", ("packages", "package_id"))):
                    if table in tables:
                        names, column = counts
                        self.db.execute(sql.SQL(
                            "UPDATE {names} t SET message_count = greatest(0, t.message_count - v.n)"
                            " FROM (SELECT {col} AS id, count(*) AS n FROM {part} GROUP BY 1) v WHERE t.id = v.id"
                        ).format(names=sql.Identifier(names), col=sql.Identifier(column),
                                 part=sql.Identifier(tables[table])))
                self.db.execute("DELETE FROM msg_ids WHERE ts >= %s AND ts < %s", bounds)
                for child in tables.values():
                    self.db.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(child)))
            del self._parts[bounds]
            dropped += 1
            log.info("retention: dropped the partitions of %s .. %s", bounds[0].isoformat(), bounds[1].isoformat())
        return dropped
