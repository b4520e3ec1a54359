"""The outbox files msg_ids in the background: a lookup by msg_id finds
every stored message whether it is filed yet or not, never a pruned one,
and an outbox made before (its msg_id index in `messages`) keeps working."""

from __future__ import annotations

import json
import sqlite3
import uuid

import pytest

from debpulse.emitters import outbox as outbox_mod
from debpulse.emitters.outbox import Outbox


def _builder(msg_id: str, timestamp: float = 1.0):  # type: ignore[no-untyped-def]
    def build(seq: int) -> tuple[dict, bytes]:
        e = {"msg_id": msg_id, "topic": "t", "timestamp": timestamp, "seq_id": seq}
        return e, json.dumps(e).encode()
    return build


def _ids(outbox: Outbox, query: dict) -> list[tuple[int, str]]:
    return [(e["seq_id"], e["msg_id"]) for e in outbox.query(query)]


@pytest.fixture
def chunked(monkeypatch):
    monkeypatch.setattr(outbox_mod, "INDEX_CHUNK", 7)  # several transactions per pass


def test_lookups_find_filed_and_unfiled_messages(tmp_path, chunked):
    ob = Outbox(tmp_path / "o.sqlite")
    assert ob.indexed
    ids = [f"2026-{uuid.uuid4()}" for _ in range(40)]
    ob.append_many([(None, _builder(m)) for m in ids[:25]])
    db = sqlite3.connect(tmp_path / "o.sqlite", isolation_level=None)
    assert outbox_mod.index_msg_ids(db) == 25
    assert outbox_mod.index_msg_ids(db) == 0  # nothing new: nothing filed twice
    ob.append_many([(None, _builder(m)) for m in ids[25:]])
    # 1..25 are filed, 26..40 not yet: a query across both finds each once, in order.
    wanted = [ids[3], ids[24], ids[25], ids[39], "2026-not-there"]
    assert _ids(ob, {"msg_ids": wanted}) == [(4, ids[3]), (25, ids[24]), (26, ids[25]), (40, ids[39])]
    assert _ids(ob, {"msg_id": ids[30]}) == [(31, ids[30])]
    assert outbox_mod.index_msg_ids(db) == 15
    assert _ids(ob, {"msg_ids": wanted}) == [(4, ids[3]), (25, ids[24]), (26, ids[25]), (40, ids[39])]
    assert db.execute("SELECT count(*) FROM msg_index").fetchone()[0] == 40
    # The hot path writes no msg_id index: only the key's and the time's.
    indexed = {db.execute(f"PRAGMA index_info('{name}')").fetchone()[2]
               for _, name, *_ in db.execute("PRAGMA index_list('messages')")}
    assert indexed == {"key", "timestamp"}
    ob.close()


def test_pruned_messages_are_not_found_and_their_entries_go(tmp_path):
    ob = Outbox(tmp_path / "o.sqlite")
    ids = [f"2026-{uuid.uuid4()}" for _ in range(10)]
    ob.append_many([(f"k{n}", _builder(m)) for n, m in enumerate(ids)])
    db = sqlite3.connect(tmp_path / "o.sqlite", isolation_level=None)
    outbox_mod.index_msg_ids(db)
    assert ob.prune(max_count=4) == 6
    assert _ids(ob, {"msg_ids": ids}) == [(n + 1, m) for n, m in enumerate(ids)][6:]
    assert outbox_mod.drop_pruned_msg_ids(db) == 6
    assert sorted(r[0] for r in db.execute("SELECT seq_id FROM msg_index")) == [7, 8, 9, 10]
    # All pruned: every entry goes.
    ob.prune(max_count=0)
    assert outbox_mod.drop_pruned_msg_ids(db) == 4
    assert _ids(ob, {"msg_ids": ids}) == []
    # A key published again once its first message was pruned gets the
    # same msg_id (uuid5 of the key); the lookup finds the new message.
    ob.append_many([("k1", _builder(ids[1]))])
    assert _ids(ob, {"msg_id": ids[1]}) == [(11, ids[1])]
    outbox_mod.index_msg_ids(db)
    assert _ids(ob, {"msg_id": ids[1]}) == [(11, ids[1])]
    ob.close()


def test_an_outbox_made_before_keeps_its_msg_id_index(tmp_path):
    path = tmp_path / "o.sqlite"
    old = sqlite3.connect(path, isolation_level=None)
    old.executescript("""
        CREATE TABLE messages (seq_id INTEGER PRIMARY KEY, msg_id TEXT NOT NULL UNIQUE, key TEXT UNIQUE,
                               topic TEXT NOT NULL, timestamp REAL NOT NULL, envelope BLOB NOT NULL);
        CREATE INDEX messages_time ON messages(timestamp);
        CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('stream', 'f00d'), ('last_seq', '1');
        INSERT INTO messages VALUES (1, 'old-1', NULL, 't', 1.0, '{"msg_id":"old-1","seq_id":1}');
    """)
    old.close()
    ob = Outbox(path)
    assert not ob.indexed and ob.stream == "f00d"
    ob.append_many([(None, _builder("new-2"))])
    assert _ids(ob, {"msg_ids": ["old-1", "new-2"]}) == [(1, "old-1"), (2, "new-2")]
    ob.close()
