"""notify's durable state, one SQLite database in its state directory:

- owners: who maintains or uploaded which source package, learnt from the
  dak.package.accept messages seen (what "my packages" means);
- outbox: notifications decided but not yet delivered (waiting for their
  digest, or for the MTA or the IRC bot to come back).

A message is acknowledged on the bus once its notifications are committed
here, so a restart neither loses nor repeats one; each is deleted once
handed to the MTA, confirmed by the IRC server or shown.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from debpulse.consumers.common.facts import Facts, addresses

SCHEMA = """
CREATE TABLE IF NOT EXISTS owners (
    package TEXT NOT NULL, address TEXT NOT NULL, role TEXT NOT NULL, seen REAL NOT NULL,
    PRIMARY KEY (package, address, role)
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    recipient TEXT NOT NULL, rule TEXT NOT NULL, destination TEXT NOT NULL,
    msg_id TEXT NOT NULL, envelope TEXT NOT NULL, created REAL NOT NULL,
    digest INTEGER NOT NULL, not_before REAL NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,
    UNIQUE (recipient, destination, msg_id)
);
"""


def learnt(f: Facts) -> list[tuple[str, str, str]]:
    """(package, address, role) an accepted upload teaches (pure)."""
    if f.relative != "dak.package.accept":
        return []
    source = f.body.get("source")
    if not isinstance(source, str) or not source:
        return []
    out = [(source, a, "maintainer") for a in addresses(f.body.get("maintainer"))]
    out += [(source, a, "uploader") for a in addresses(f.body.get("changed_by"))]
    return out


@dataclass
class Waiting:
    id: int
    recipient: str
    rule: str
    destination: str
    envelope: dict[str, Any]
    created: float
    digest: bool
    attempts: int


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        self._owners: dict[str, set[str]] = {}
        self._maintainers: dict[str, set[str]] = {}
        for package, address, role in self.db.execute("SELECT package, address, role FROM owners"):
            self._owners.setdefault(package, set()).add(address)
            if role == "maintainer":
                self._maintainers.setdefault(package, set()).add(address)

    # -- owners -----------------------------------------------------------------

    def owners(self, package: str) -> set[str]:
        return self._owners.get(package, set())

    def maintainers(self, packages: Iterable[str]) -> set[str]:
        return {a for p in packages for a in self._maintainers.get(p, ())}

    def _learn(self, f: Facts) -> None:
        facts = learnt(f)
        if not facts:
            return
        now = time.time()
        source = facts[0][0]
        # The Maintainer is the latest upload's; every uploader stays.
        self.db.execute("DELETE FROM owners WHERE package = ? AND role = 'maintainer'", (source,))
        self._maintainers[source] = set()
        self.db.executemany("INSERT OR REPLACE INTO owners VALUES (?, ?, ?, ?)",
                            [(p, a, r, now) for p, a, r in facts])
        self._owners[source] = {a for (a,) in self.db.execute("SELECT address FROM owners WHERE package = ?",
                                                              (source,))}
        self._maintainers[source] = {a for p, a, r in facts if r == "maintainer"}

    def learn(self, f: Facts) -> None:
        """Learn from `f` alone (for a consumer without an outbox)."""
        if learnt(f):
            with self.db:
                self.db.execute("BEGIN")
                self._learn(f)

    # -- the outbox ---------------------------------------------------------------

    def record(self, f: Facts, envelope: Mapping[str, Any],
               notifications: Iterable[tuple[str, str, str, bool]]) -> int:
        """Learn from the message and queue its notifications
        (recipient, rule, destination, digest) in one transaction."""
        text = json.dumps({k: envelope.get(k) for k in ("topic", "msg", "msg_id", "timestamp")}, sort_keys=True)
        now = time.time()
        with self.db:
            self.db.execute("BEGIN")
            self._learn(f)
            n = 0
            for recipient, rule, destination, digest in notifications:
                cur = self.db.execute(
                    "INSERT OR IGNORE INTO outbox (recipient, rule, destination, msg_id, envelope, created, digest)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)", (recipient, rule, destination, f.msg_id, text, now, int(digest)))
                n += cur.rowcount
        return n

    def due(self, now: float) -> list[Waiting]:
        rows = self.db.execute(
            "SELECT id, recipient, rule, destination, envelope, created, digest, attempts FROM outbox "
            "WHERE not_before <= ? ORDER BY id", (now,))
        return [Waiting(i, r, ru, d, json.loads(e), c, bool(dg), a) for i, r, ru, d, e, c, dg, a in rows]

    def delivered(self, ids: Iterable[int]) -> None:
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])

    def retry(self, ids: Iterable[int], at: float) -> None:
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("UPDATE outbox SET not_before = ?, attempts = attempts + 1 WHERE id = ?",
                                [(at, i) for i in ids])

    def waiting(self) -> int:
        return self.db.execute("SELECT count(*) FROM outbox").fetchone()[0]

    def close(self) -> None:
        self.db.close()
