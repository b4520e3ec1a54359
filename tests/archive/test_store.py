"""The store on a real PostgreSQL: partitions by period, retention by age."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from debpulse.consumers.archive.rows import to_row
from debpulse.consumers.archive.store import Store


def _row(n: int, when: datetime):  # type: ignore[no-untyped-def]
    body = {"architecture": "amd64", "package": f"p{n % 2}", "version": "1", "suite": "sid", "old_state": None,
            "new_state": "Needs-Build", "action": None, "user": "u", "real_user": None, "time": "2024-01-01T00:00:00Z"}
    return to_row({"topic": "org.debian.dev.wannabuild.package.state.update", "msg": body,
                   "timestamp": when.timestamp(), "msg_id": f"m{n}"})


def test_retention_drops_whole_old_partitions_with_their_counts(archive_dsn: str) -> None:
    now = datetime(2024, 6, 20, tzinfo=UTC)
    store = Store(archive_dsn, interval="week", retention_days=30)
    store.connect()
    try:
        rows = [_row(n, now - timedelta(days=n)) for n in range(60)]
        written = store.write(rows, now=now)
        assert (written.stored, written.expired) == (31, 29)  # older than 30 days: not stored at all
        assert store.write(rows, now=now).duplicates == 31
        store.retention_days = 10
        dropped = store.expire(now)
        with psycopg.connect(archive_dsn) as c:
            kept = c.execute("SELECT count(*), min(ts) FROM messages").fetchone()
            counts = dict(c.execute("SELECT name, message_count FROM packages").fetchall())
            ids = c.execute("SELECT count(*) FROM msg_ids").fetchone()[0]
            links = c.execute("SELECT count(*) FROM message_packages").fetchone()[0]
        assert dropped >= 2 and kept[1] >= now - timedelta(days=17)  # whole weeks only
        assert sum(counts.values()) == kept[0] == ids == links
        assert store.partitions and all(hi > now - timedelta(days=10) for _, hi in store.partitions)
    finally:
        store.close()
