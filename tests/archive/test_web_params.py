"""debpulse-web over a known archive: every datagrepper parameter with
its documented meaning, the errors that name the parameter, and what
datagrepper lacked (cursors, /topics, the feed, the export, the 422)."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from testbus import free_port

from debpulse.consumers.archive.rows import to_row
from debpulse.consumers.archive.store import Store

from .conftest import Service, Web

T0 = 1714521600  # 2024-05-01T00:00:00Z
N = 200


def envelope(i: int) -> dict:
    if i % 10 == 9:
        topic, body = "org.debian.dev.logger.log", {"log": f"note {i} 100% <script>alert(1)</script>"}
    else:
        topic = "org.debian.dev.wannabuild.package." + ("state.update" if i % 2 else "build.complete")
        common = {"architecture": "amd64", "package": f"p{i % 5}", "version": f"1.{i}", "suite": "sid",
                  "time": "2024-05-01T00:00:00Z"}
        if i % 2:
            body = {**common, "old_state": "Needs-Build", "new_state": "Building", "action": "--take",
                    "user": "rare" if i == 7 else f"u{i % 4}", "real_user": None}
        else:
            body = {**common, "result": "successful", "build_time": 60, "disk_space": 1, "builder": f"u{i % 4}"}
    return {"topic": topic, "msg": body, "timestamp": T0 + 60 * i, "msg_id": f"2024-m{i:03d}", "i": i,
            "username": "debpulse", "seq_id": i + 1, "publisher": "relay@test/0"}


def expected(pred) -> list[str]:  # type: ignore[no-untyped-def]
    """msg_ids matching, newest first."""
    return [f"2024-m{i:03d}" for i in reversed(range(N)) if pred(i, envelope(i))]


@pytest.fixture(scope="module")
def data(pg_server) -> str:  # type: ignore[no-untyped-def]
    if pg_server.proc is None:
        pg_server.start()
    dsn = pg_server.create_database("webdata")
    store = Store(dsn, interval="day")
    store.connect()
    store.write([to_row(envelope(i), signer="F" * 40, scope="envelope") for i in range(N)])
    store.close()
    return dsn


def _web(dsn: str, tmp: Path, config: str = "") -> Iterator[Web]:
    port = free_port()
    conf = tmp / "debpulse.toml"
    conf.write_text(config)
    s = Service([sys.executable, "-m", "debpulse.consumers.web.cli", "--dsn", dsn, "--config", str(conf),
                 "--listen", f"127.0.0.1:{port}"], tmp, "web", {})
    try:
        yield Web(s.start(), port)
    finally:
        s.stop(signal.SIGKILL)


@pytest.fixture(scope="module")
def web(data: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    yield from _web(data, tmp_path_factory.mktemp("web"), "[web]\nexport_chunk = 7\n")


def ids(web: Web, query: str) -> list[str]:
    """Every msg_id of a search, through its pages (rows_per_page=100)."""
    out: list[str] = []
    page = 1
    while True:
        got = web.json(f"/raw?{query}&rows_per_page=100&page={page}")
        out += [m["msg_id"] for m in got["raw_messages"]]
        if page >= got["pages"]:
            assert got["total"] == len(out)
            return out
        page += 1


def test_time_arguments(web: Web) -> None:
    at = lambda i: T0 + 60 * i  # noqa: E731
    assert ids(web, f"start={at(10)}&end={at(20)}") == expected(lambda i, e: 10 <= i <= 20)
    assert ids(web, f"start={at(10)}&delta=600") == expected(lambda i, e: 10 <= i <= 20)
    assert ids(web, f"end={at(20)}&delta=600") == expected(lambda i, e: 10 <= i <= 20)
    assert ids(web, f"start={at(190)}") == expected(lambda i, e: i >= 190)
    assert ids(web, f"end={at(5)}") == expected(lambda i, e: i <= 5)  # no default delta: 0 .. end
    assert ids(web, f"start={at(10)}&end={at(20)}&delta=1") == expected(lambda i, e: 10 <= i <= 20)  # delta ignored
    # ISO 8601, UTC when no zone is given, or any zone.
    assert ids(web, "start=2024-05-01T00:10:00&end=2024-05-01T02:20:00%2B02:00") == expected(lambda i, e: 10 <= i <= 20)
    assert web.json("/raw?delta=3600")["total"] == 0  # the last hour: nothing since 2024
    assert web.json("/raw")["total"] == N  # no time at all: everything, as datagrepper without a default delta
    bad = web.json(f"/raw?start={at(20)}&end={at(10)}", 400)
    assert bad["parameter"] == "start"
    assert web.json("/raw?start=yesterday", 400)["parameter"] == "start"
    assert web.json("/raw?delta=-5", 400)["parameter"] == "delta"


def test_filters(web: Web) -> None:
    def user(e: dict) -> set[str]:
        b = e["msg"]
        return {b[k] for k in ("user", "real_user", "builder") if b.get(k)}

    assert ids(web, "user=u1") == expected(lambda i, e: "u1" in user(e))
    assert ids(web, "user=u1&user=rare") == expected(lambda i, e: user(e) & {"u1", "rare"})
    assert ids(web, "user=rare") == ["2024-m007"]
    assert ids(web, "user=nobody") == []
    assert ids(web, "package=p2") == expected(lambda i, e: e["msg"].get("package") == "p2")
    assert ids(web, "package=p2&user=u0") == expected(lambda i, e: e["msg"].get("package") == "p2" and "u0" in user(e))
    assert ids(web, "not_package=p2&not_category=logger") == expected(
        lambda i, e: e["msg"].get("package") not in ("p2", None))
    assert ids(web, "category=logger") == expected(lambda i, e: e["topic"].endswith("logger.log"))
    assert ids(web, "topic=org.debian.dev.wannabuild.package.build.complete&not_user=u0") == expected(
        lambda i, e: e["topic"].endswith("build.complete") and "u0" not in user(e))
    assert ids(web, "not_topic=org.debian.dev.wannabuild.package.build.complete&not_topic=org.debian.dev.logger.log") \
        == expected(lambda i, e: e["topic"].endswith("state.update"))
    assert ids(web, "agent=u3") == expected(lambda i, e: "u3" in (e["msg"].get("user"), e["msg"].get("builder")))
    assert ids(web, "category=wannabuild&not_agent=u3") == expected(
        lambda i, e: "package" in e["msg"] and "u3" not in (e["msg"].get("user"), e["msg"].get("builder")))
    # contains: a substring of the body's JSON text; % and _ are themselves.
    assert ids(web, "contains=100%25&category=logger") == expected(lambda i, e: "100%" in json.dumps(e["msg"]))
    assert ids(web, "contains=%22version%22:%20%221.11%22") == ["2024-m011"]
    assert ids(web, "contains=1.1_") == []


def test_pages_rows_order_and_the_cursor(web: Web) -> None:
    newest = expected(lambda i, e: True)
    page2 = web.json("/raw?rows_per_page=10&page=2")
    assert [m["msg_id"] for m in page2["raw_messages"]] == newest[10:20]
    assert (page2["count"], page2["total"], page2["pages"]) == (10, N, 20)
    assert [m["msg_id"] for m in web.json("/raw?rows_per_page=5&order=asc")["raw_messages"]] == newest[::-1][:5]
    assert web.json("/raw")["arguments"]["rows_per_page"] == 25
    # The cursor walks the same rows as the page numbers, and says where it ends.
    walked, cursor = [], ""
    while True:
        got = web.json(f"/raw?rows_per_page=30&order=asc{cursor}")
        walked += [m["msg_id"] for m in got["raw_messages"]]
        if not got["next_cursor"]:
            break
        cursor = "&cursor=" + got["next_cursor"]
    assert walked == newest[::-1]
    code, headers, _ = web.get("/raw?rows_per_page=30")
    assert 'rel="next"' in headers["link"] and "cursor=" in headers["link"]
    for query, parameter in (("rows_per_page=101", "rows_per_page"), ("rows_per_page=0", "rows_per_page"),
                             ("page=0", "page"), ("page=two", "page"), ("order=sideways", "order"),
                             ("cursor=bm9wZQ", "cursor"), ("pakage=p1", "pakage"), ("meta=colour", "meta"),
                             ("callback=alert(1)", "callback"), ("user=", "user")):
        got = web.json(f"/raw?{query}", 400)
        assert got["parameter"] == parameter and parameter in got["error"], got


def test_meta_and_the_two_shapes(web: Web) -> None:
    got = web.json("/raw?user=rare&meta=summary,url&meta=usernames&meta=packages&meta=date&meta=subtitle")
    [m] = got["raw_messages"]
    assert m["meta"] == {"summary": "p2 1.7 on amd64 (sid): Needs-Build → Building by rare",
                         "url": "https://buildd.debian.org/status/package.php?p=p2",
                         "usernames": ["rare"], "packages": ["p2"], "date": "2024-05-01T00:07:00Z"}
    assert got["WARNING"] == ["meta 'subtitle' is deprecated, use 'summary'"]
    assert m["timestamp"] == T0 + 420 and m["users"] == ["rare"] and m["source_name"] == "debpulse"
    v2 = web.json("/v2/search?user=rare")["raw_messages"][0]
    assert v2["id"] == "2024-m007" and v2["headers"]["sent-at"] == "2024-05-01T00:07:00+00:00"
    assert v2["headers"]["fedora_messaging_user_rare"] is True
    assert web.json("/id?id=2024-m007")["envelope"] == envelope(7)
    assert web.json("/id", 400)["parameter"] == "id"
    assert web.json("/v2/id?id=2024-nothing", 404)["error"]


def test_names_counts_and_routes(web: Web) -> None:
    assert web.json("/messagecount") == {"messagecount": N}
    topics = {t["topic"]: t for t in web.json("/topics")["topics"]}
    assert topics["org.debian.dev.logger.log"]["count"] == N // 10
    assert topics["org.debian.dev.logger.log"]["category"] == "logger"
    assert topics["org.debian.dev.logger.log"]["last_seen"] == "2024-05-01T03:19:00Z"
    assert {c["category"]: c["count"] for c in web.json("/categories")["categories"]} == {
        "logger": 20, "wannabuild": 180}
    assert web.get("/messagecount", method="POST")[0] == 405
    assert web.json("/nowhere", 404) == {"error": "not_found"}


def test_html_for_browsers_jsonp_feed_and_export(web: Web) -> None:
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    code, headers, body = web.get("/raw?category=logger&rows_per_page=3", accept=browser)
    assert code == 200 and headers["content-type"].startswith("text/html")
    page = body.decode()
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    code, headers, body = web.get("/raw?rows_per_page=1&callback=show")
    assert headers["content-type"].startswith("application/javascript") and body.startswith(b"/**/show({")
    code, headers, body = web.get("/feed.atom?package=p1&rows_per_page=4")
    assert headers["content-type"] == "application/atom+xml"
    entries = ET.fromstring(body).findall("{http://www.w3.org/2005/Atom}entry")
    newest = [int(m[-3:]) for m in expected(lambda i, e: e["msg"].get("package") == "p1")[:4]]
    assert [e.findtext("{http://www.w3.org/2005/Atom}updated") for e in entries] == [
        datetime.fromtimestamp(T0 + 60 * i, UTC).isoformat().replace("+00:00", "Z") for i in newest]
    assert entries[0].findtext("{http://www.w3.org/2005/Atom}title").startswith(f"p1 1.{newest[0]} ")
    code, headers, body = web.get("/export?category=wannabuild")
    assert headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in body.decode().splitlines()]
    assert [m["msg_id"] for m in lines] == expected(lambda i, e: "package" in e["msg"])[::-1]  # oldest first
    assert web.json("/export?page=2", 400)["parameter"] == "page"


def test_a_query_that_needs_too_long_is_a_422_that_says_how_to_narrow_it(data: str, tmp_path: Path) -> None:
    for web in _web(data, tmp_path, "[web]\nstatement_timeout = 0.001\n"):
        code, _, body = web.get("/raw?contains=nowhere&page=3")
        answer = json.loads(body)
        assert code == 422, answer
        assert "narrow it" in answer["error"] and "bound it in time" in answer["error"]
        assert "/export" in answer["error"]
        code, _, _ = web.get("/healthz/live")
        assert code == 200


def test_configuration_mistakes_are_one_line(data: str, tmp_path: Path) -> None:
    import subprocess

    conf = tmp_path / "bad.toml"
    conf.write_text("[web]\nlisten = \"127.0.0.1:9960\"\nstatment_timeout = 1\n")
    proc = subprocess.run([sys.executable, "-m", "debpulse.consumers.web.cli", "--config", str(conf)],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "statment_timeout" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "debpulse.consumers.web.cli", "--dsn", data, "--listen", "nowhere"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "--listen 'nowhere' is not HOST:PORT" in proc.stderr
    conf.write_text('[archive]\ndsn = "dbname=x"\npartition = "fortnight"\n')
    proc = subprocess.run([sys.executable, "-m", "debpulse.consumers.archive.cli", "--config", str(conf)],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "partition must be one of" in proc.stderr
