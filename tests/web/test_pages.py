"""The pages over a generated history in a real PostgreSQL, served by
debpulse-web as a process: the week's counts, the package and person
pages, the stream's resume, and the live filters side by side with the
query API's SQL."""

from __future__ import annotations

import http.client
import re
import signal
from collections import Counter
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.rows import dict_row

from debpulse.consumers.archive.store import Store
from debpulse.consumers.web import live
from debpulse.consumers.web.params import Search
from debpulse.consumers.web.query import RESOLVE_SQL, Names, build, resolve_params, since
from debpulse.emitters.messages import message_for
from debpulse.emitters.topics import relative_topic
from web.history import History, store, weeks_of_history

FIRST = datetime(2024, 4, 8, tzinfo=UTC)   # 2024-W15
WEEKS = 3


@pytest.fixture(scope="module")
def history(pg_server) -> tuple[str, History, list[dict]]:  # type: ignore[no-untyped-def]
    if pg_server.proc is None:
        pg_server.start()
    dsn = pg_server.create_database("history")
    h = History(seed=17)
    envelopes = weeks_of_history(h, FIRST, WEEKS, per_day=150)
    assert store(dsn, envelopes) == len(envelopes)
    return dsn, h, envelopes


def test_generated_bodies_follow_their_schemas(history):
    from web.history import check_bodies

    check_bodies(history[2])


def test_the_week_page_counts_a_generated_week(history, start_web):
    dsn, h, envelopes = history
    web = start_web(dsn=dsn)
    for week in ("2024-W16", "2024-W17"):
        data = web.json(f"/week/{week}")
        previous = "2024-W15" if week == "2024-W16" else "2024-W16"
        counts = {a["activity"]: a["count"] for a in data["activities"]}
        assert counts == {a: h.counts[week][a] for a in counts}, week
        assert {a["activity"]: a["previous"] for a in data["activities"]} == {a: h.counts[previous][a] for a in counts}
        assert sum(counts.values()) > 300  # not a week of nothing
        assert [c["source"] for c in data["maintainer_changes"]] == h.changes[week]
        # The most active uploaders, from the events themselves.
        start = datetime.fromisoformat(data["start"])
        uploaders = Counter(message_for(e["topic"], e["msg"]).agent() for e in envelopes
                            if relative_topic(e["topic"]) == "dak.package.accept"
                            and start.timestamp() <= e["timestamp"] < start.timestamp() + 7 * 86400)
        top = next(a["top"] for a in data["activities"] if a["activity"] == "uploads")
        assert [(t["user"], t["count"]) for t in top] == sorted(uploaders.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    # The HTML says the same.
    code, _, body = web.get("/week/2024-W17", accept="text/html")
    assert code == 200
    html = body.decode()
    for activity, n in h.counts["2024-W17"].items():
        assert re.search(rf'<tr id="{activity}"><td>[^<]+</td><td class="num count">{n}</td>', html), activity
    assert h.changes["2024-W17"][0] in html and "<svg" in html
    # An empty week, a week that is not one.
    assert all(a["count"] == 0 for a in web.json("/week/2019-W10")["activities"])
    bad = web.json("/week/2024-W60", status=400)
    assert bad["parameter"] == "week" and "2024 has no week 60" in bad["error"]
    code, headers, _ = web.get("/week", accept="text/html")
    assert code == 200  # followed to this week


def test_package_and_person_pages(history, start_web):
    dsn, h, envelopes = history
    web = start_web(dsn=dsn)
    data = web.json("/package/hello")
    builds = [e for e in envelopes if relative_topic(e["topic"]) == "wannabuild.package.build.complete"
              and e["msg"]["package"] == "hello" and e["msg"]["result"] == "successful"]
    newest: dict[str, dict] = {}
    for e in sorted(builds, key=lambda e: e["timestamp"]):
        newest[e["msg"]["architecture"]] = e
    assert {a: b["version"] for a, b in data["last_successful_build"].items()} == {
        a: e["msg"]["version"] for a, e in newest.items()}
    assert data["uploads"] and all("hello" in c["summary"] for c in data["uploads"])
    assert data["bugs"] and data["git"]
    states = data["wanna_build"]
    assert data["building"] == sorted(a for a, s in states.items() if s["state"] == "Building")
    code, _, body = web.get("/package/hello", accept="text/html")
    assert code == 200 and b"last successful build" in body and b"<h2>Bugs</h2>" in body

    person = web.json("/user/jane@debian.org")
    assert person["user"] == "jane" and person["messages"] > 0
    assert person["last"]["Upload"]["summary"].startswith("Jane Example uploaded")
    assert person["last"]["Build"] is None
    assert web.json("/user/nobody-at-all")["messages"] == 0
    code, _, body = web.get("/user/jane", accept="text/html")
    assert code == 200 and b"Last activity of each kind" in body


# -- the stream ------------------------------------------------------------------------------------


class Stream:
    """A raw SSE client: what a browser's EventSource reads."""

    def __init__(self, url: str, path: str, last_event_id: str | None = None) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=30)
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        self.conn.request("GET", path, headers=headers)
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200, self.resp.read()
        assert self.resp.headers["content-type"].startswith("text/event-stream")

    def events(self, n: int) -> list[tuple[str, str, str]]:
        """The next `n` message events: (id, event, data)."""
        out: list[tuple[str, str, str]] = []
        fields: dict[str, str] = {}
        while len(out) < n:
            line = self.resp.fp.readline().decode().rstrip("\n")
            if line == "":
                if fields.get("event") == "message":
                    out.append((fields.get("id", ""), "message", fields.get("data", "")))
                fields = {}
            elif not line.startswith(":") and ":" in line:
                k, _, v = line.partition(":")
                fields[k] = (fields[k] + "\n" if k in fields else "") + v.removeprefix(" ")
        return out

    def next_event(self, kind: str) -> str:
        """The data of the next event of this kind."""
        fields: dict[str, str] = {}
        while True:
            line = self.resp.fp.readline().decode().rstrip("\n")
            if line == "":
                if fields.get("event") == kind:
                    return fields.get("data", "")
                fields = {}
            elif not line.startswith(":") and ":" in line:
                k, _, v = line.partition(":")
                fields[k] = (fields[k] + "\n" if k in fields else "") + v.removeprefix(" ")

    def close(self) -> None:
        self.conn.close()


def _ids(dsn: str, where: str = "true") -> list[int]:
    with psycopg.connect(dsn) as c:
        return [r[0] for r in c.execute(f"SELECT k.id FROM msg_ids k JOIN messages m ON m.ts = k.ts AND m.id = k.id"
                                        f" WHERE {where} ORDER BY k.id")]  # noqa: S608


def test_the_stream_resumes_after_the_last_event_id_and_follows_new_rows(archive_dsn, start_web):
    h = History(seed=5)
    monday = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=7)
    store(archive_dsn, h.week(monday, per_day=40))
    web = start_web()
    ids = _ids(archive_dsn)
    hello = _ids(archive_dsn, "'hello' = ANY(m.packages)")
    # A browser that saw up to the middle comes back: the rest of hello, in order, once.
    mark = hello[len(hello) // 2]
    s = Stream(web.url, "/stream?package=hello", last_event_id=str(mark))
    rest = [i for i in hello if i > mark]
    got = s.events(len(rest))
    assert [int(i) for i, _, _ in got] == rest
    assert all("hello" in data for _, _, data in got)
    # New rows: the archive's Store NOTIFYs; the open stream shows the new hello message only.
    later = datetime.now(UTC)
    fresh = [h.event("git.ref.update", later) for _ in range(3)]
    for e in fresh:
        e["msg"]["repo"] = "vim"
    fresh[1]["msg"]["repo"] = "hello"
    s2 = Stream(web.url, f"/stream?after={ids[-1]}")
    writer = Store(archive_dsn)
    writer.connect()
    from web.history import rows

    writer.write(rows(fresh))
    writer.close()
    (new_id, _, data), = s.events(1)
    assert int(new_id) > ids[-1] and "hello" in data and "vim" not in data
    everything = s2.events(3)
    assert [int(i) for i, _, _ in everything] == _ids(archive_dsn)[-3:]
    s.close()
    # `after` is where a new EventSource starts; a wrong one is a 400.
    assert web.json("/stream?after=x", status=400)["parameter"] == "after"
    assert web.json("/stream?delta=60", status=400)["parameter"] == "delta"
    # Stopped, the web ends its open streams (their browsers reconnect) and exits cleanly.
    assert web.service.stop(signal.SIGTERM) == 0
    assert s2.resp.fp.read() is not None
    s2.close()


# -- the live filters are the API's -------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(history):  # type: ignore[no-untyped-def]
    dsn = history[0]
    conn = psycopg.connect(dsn, autocommit=True, row_factory=dict_row)
    with conn.cursor() as cur:
        top = cur.execute("SELECT max(id) AS n FROM msg_ids").fetchone()["n"]
        everything = cur.execute(*since(Search(), Names(), 0, top, 100_000)).fetchall()
    yield conn, top, everything
    conn.close()


NAMES = {
    "packages": ["hello", "linux", "vim", "no-such-package"],
    "users": ["jane", "carlos", "buildd_arm64-01", "ftpmaster@ftp-master.debian.org", "nobody"],
    "categories": ["dak", "git", "wannabuild", "debbugs", "logger"],
    "topics": ["org.debian.production.dak.package.accept", "org.debian.production.git.receive",
               "org.debian.production.debbugs.bug.close"],
    "agents": ["jane", "mika", "buildd_amd64-02"],
    "contains": ['"result": "failed"', "FTBFS", '"repo": "vim"'],
}


def _searches() -> st.SearchStrategy[Search]:
    fields = {}
    for name, values in NAMES.items():
        fields[name] = st.lists(st.sampled_from(values), max_size=2, unique=True).map(tuple)
        if name != "contains":
            fields[f"not_{name}"] = st.lists(st.sampled_from(values), max_size=1).map(tuple)
    return st.builds(Search, **fields)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(search=_searches())
def test_live_filters_select_what_the_api_selects(corpus, search):
    conn, top, everything = corpus
    with conn.cursor() as cur:
        names = Names.from_rows([tuple(r.values()) for r in cur.execute(RESOLVE_SQL, resolve_params(search))])
        listing = build(search, names, limit=100_000)
        api = set() if listing is None else {r["id"] for r in cur.execute(listing.rows_sql, listing.rows_params)}
        statement = since(search, names, 0, top, 100_000)
        resumed = [] if statement is None else [r["id"] for r in cur.execute(*statement)]
    python = [r["id"] for r in everything if live.matches(search, r)]
    assert set(resumed) == api == set(python)
    assert resumed == python  # both in archive order


def test_query_strings_of_the_live_page_are_the_api_s(history, start_web):
    dsn = history[0]
    web = start_web(dsn=dsn)
    query = urlencode([("package", "hello"), ("category", "git"), ("not_user", "jane")])
    code, _, body = web.get(f"/?{query}&rows=100", accept="text/html")
    assert code == 200
    shown = re.findall(r'<li id="m(\d+)"', body.decode())
    api = web.json(f"/raw?{query}&rows_per_page=100")
    assert len(shown) == min(100, api["total"]) > 0
    # The page links to the same view as JSON and Atom.
    assert f"/raw?{query}".replace("&", "&amp;") in body.decode()


def test_the_pulse_moves_with_what_is_stored(archive_dsn, start_web):
    import json
    import xml.etree.ElementTree as ET

    from web.history import rows

    writer = Store(archive_dsn)
    writer.connect()  # the archive's tables: a web over a database without them answers 503
    web = start_web()
    before = web.json("/pulse")
    assert len(before["minute"]["start"]) == 60 and len(before["hour"]["start"]) == 168
    s = Stream(web.url, "/stream?pulse=all")
    h = History(seed=9)
    now = datetime.now(UTC)
    writer.write(rows([h.event("dak.package.accept", now - timedelta(seconds=1)) for _ in range(4)]))
    writer.close()
    charts = json.loads(s.next_event("pulse"))
    assert set(charts) == {"minute", "hour"}
    for svg in charts.values():
        ET.fromstring(svg)
    s.close()
    after = web.json("/pulse")
    assert sum(after["minute"]["series"]["dak"]) == 4 and sum(after["hour"]["series"]["dak"]) == 4
    assert web.json("/stream?pulse=yes", status=400)["parameter"] == "pulse"
