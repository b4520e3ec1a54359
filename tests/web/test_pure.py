"""The pages' pure parts: weeks, activities, maintainer changes, the pulse,
the SVG charts, the live filters and the event stream's format."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from debpulse.consumers.web import charts, live, pulse, views, weeks
from debpulse.consumers.web.params import BadParameter, Search

SVG = "{http://www.w3.org/2000/svg}"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


# -- weeks ---------------------------------------------------------------------------------------


def test_weeks_are_iso_weeks_in_utc():
    w = weeks.Week.parse("2024-W18")
    assert w.start == datetime(2024, 4, 29, tzinfo=UTC) and w.end == datetime(2024, 5, 6, tzinfo=UTC)
    assert w.shift(-1).name == "2024-W17" and w.shift(1).name == "2024-W19"
    # Across a year: 2020 had 53 weeks, and its week 53 ends in January 2021.
    assert weeks.Week.parse("2021-W01").shift(-1).name == "2020-W53"
    assert weeks.Week.of(date(2021, 1, 3)).name == "2020-W53"
    assert weeks.Week.of(datetime(2024, 4, 28, 23, 59, tzinfo=UTC)).name == "2024-W17"
    assert len(w.days) == 7 and w.days[0].weekday() == 0


@pytest.mark.parametrize("text", ["2024-18", "2024-W1", "2024-W54", "2023-W53", "2024-W00", "W18", "", "0001-W01",
                                  "2024-W18x", "９９９９-W01"])
def test_a_bad_week_says_how_to_write_one(text):
    with pytest.raises(weeks.BadWeek):
        weeks.Week.parse(text)


@given(st.dates(min_value=date(2, 1, 10), max_value=date(9998, 12, 20)))
def test_every_day_is_in_the_week_named_after_it(day):
    w = weeks.Week.of(day)
    assert weeks.Week.parse(w.name) == w
    assert w.start.date() <= day < w.end.date()


@given(st.text(max_size=20))
def test_week_parsing_never_fails_otherwise(text):
    try:
        weeks.Week.parse(text)
    except weeks.BadWeek:
        pass


def test_activities_of_a_message():
    assert weeks.activities_of("org.debian.production.dak.package.accept", None) == ["uploads"]
    build = "org.debian.dev.wannabuild.package.build.complete"
    assert weeks.activities_of(build, "failed") == ["builds", "build_failures"]
    assert weeks.activities_of(build, "successful") == ["builds"]
    assert weeks.activities_of("org.debian.dev.git.ref.update", None) == ["pushes"]
    assert weeks.activities_of("org.debian.dev.wannabuild.package.state.update", None) == []
    assert weeks.activities_of("org.fedoraproject.prod.bodhi.update", None) == []


def test_aggregate_counts_days_and_people():
    d0, d1 = date(2024, 4, 29), date(2024, 4, 30)
    rows = [
        {"topic": "org.debian.dev.dak.package.accept", "result": None, "agent": "jane", "day": d0, "n": 3},
        {"topic": "org.debian.dev.dak.package.accept", "result": None, "agent": "carlos", "day": d1, "n": 3},
        {"topic": "org.debian.dev.dak.package.accept", "result": None, "agent": "ravi", "day": d1, "n": 1},
        {"topic": "org.debian.dev.dak.package.new", "result": None, "agent": None, "day": d1, "n": 2},
        {"topic": "org.debian.dev.wannabuild.package.build.complete", "result": "failed", "agent": "b1", "day": d0,
         "n": 4},
    ]
    stats = weeks.aggregate(rows)
    assert stats.counts == {"uploads": 7, "new": 2, "builds": 4, "build_failures": 4}
    assert stats.top("uploads") == [("carlos", 3), ("jane", 3), ("ravi", 1)]  # ties by name
    assert stats.per_day["uploads"] == {d0: 3, d1: 4}
    week = weeks.Week.of(d0)
    data = weeks.overview(week, stats, weeks.aggregate(rows[:1]), [])
    uploads = data["activities"][0]
    assert uploads | {"top": None} == {"activity": "uploads", "label": "Uploads", "service": "dak", "count": 7,
                                       "previous": 3, "change": 4, "percent": 133,
                                       "per_day": [3, 4, 0, 0, 0, 0, 0], "top": None}
    assert data["activities"][1]["percent"] is None  # nothing the week before: no percentage


def test_maintainer_changes_compare_addresses_in_upload_order():
    def accept(src, maintainer, ts, version="1"):
        return {"source": src, "maintainer": maintainer, "ts": ts, "version": version, "agent": "jane"}

    start = T0
    rows = [
        accept("hello", "Jane Doe <jane@debian.org>", start - timedelta(days=40)),
        accept("hello", "Jane D. <JANE@debian.org>", start + timedelta(hours=1)),      # the same address
        accept("hello", "Debian QA Group <packages@qa.debian.org>", start + timedelta(hours=2), "2"),
        accept("vim", "Vim Team <vim@example.org>", start - timedelta(days=1)),
        accept("vim", "Vim Team <vim@example.org>", start + timedelta(days=1)),
        accept("new-one", "Carlos <carlos@debian.org>", start + timedelta(days=1)),  # first upload: no change
        accept("gone", "A <a@example.org>", start - timedelta(days=3)),
        accept("gone", "B <b@example.org>", start - timedelta(days=2)),                # before the week
    ]
    changes = weeks.maintainer_changes(rows, start)
    assert [(c.source, c.version, c.before, c.after) for c in changes] == [
        ("hello", "2", "Jane D. <JANE@debian.org>", "Debian QA Group <packages@qa.debian.org>")]


# -- the pulse ------------------------------------------------------------------------------------


def test_the_pulse_counts_by_minute_and_hour_and_forgets_the_old():
    p = pulse.Pulse()
    now = T0 + timedelta(seconds=30)
    assert p.add(T0, "dak", now) and p.add(T0 + timedelta(seconds=5), "dak", now)
    assert p.add(T0 - timedelta(minutes=59), "git", now)
    assert p.add(T0 - timedelta(minutes=61), "git", now)          # the week's window still counts it
    assert not p.add(T0 - timedelta(days=8), "git", now)
    starts, series = p.minutes.series(now)
    assert len(starts) == 60 and starts[-1] == T0
    assert series["dak"][-1] == 2 and series["git"][0] == 1 and sum(series["git"]) == 1
    hstarts, hseries = p.hours.series(now)
    assert len(hstarts) == 168 and sum(hseries["git"]) == 2 and sum(hseries["dak"]) == 2
    later = now + timedelta(minutes=2)
    p.minutes.trim(later)
    assert p.minutes.total(later) == 2  # the git message of 59 minutes before left the hour
    windows = p.windows(now)
    assert windows["minute"] == (T0 - timedelta(minutes=59), T0 + timedelta(minutes=1))


def test_pulse_charts_are_svg_with_a_title_per_column():
    p = pulse.Pulse()
    for i in range(30):
        p.add(T0 - timedelta(minutes=i), ["dak", "wannabuild", "debbugs"][i % 3], T0)
    svg = ET.fromstring(p.minute_chart(T0))
    titles = [t.text for t in svg.iter(f"{SVG}title")]
    assert titles[0].startswith("Messages per minute") and "(30 in all)" in titles[0]
    assert sum(1 for t in titles if t and t.startswith("12:00: 1 messages")) == 1
    ET.fromstring(p.hour_chart(T0))


# -- charts ---------------------------------------------------------------------------------------


def test_nice_tops():
    assert [charts.nice_top(v) for v in (0, 1, 3, 7, 11, 40, 99, 101, 5000)] == [1, 1, 5, 10, 20, 50, 100, 200, 5000]


@given(st.lists(st.lists(st.integers(0, 10_000), min_size=3, max_size=3), min_size=1, max_size=60),
       st.text(max_size=30))
def test_stacked_columns_are_well_formed_and_to_scale(values, title):
    labels = [f"c{i}" for i in range(len(values))]
    series = {name: [v[k] for v in values] for k, name in enumerate(("dak", "git", "a<b&c"))}
    root = ET.fromstring(charts.stacked_columns(labels, series, title=title))
    heights = [float(r.get("height")) for r in root.iter(f"{SVG}rect") if r.get("fill") not in ("transparent",)
               and r.get("width") != "10"]
    assert all(h >= 0 for h in heights)
    assert sum(heights) <= (180 - 8 - 34) * len(values) + 1e-6


def test_compare_bars_show_the_change():
    svg = charts.compare_bars([("Uploads", 12, 10), ("Rejects", 1, 3)], title="t")
    assert ">12<tspan" in svg and ">+2</tspan>" in svg and ">-2</tspan>" in svg
    ET.fromstring(svg)


# -- the live filters and stream ------------------------------------------------------------------------


def _row(**kw):
    base = {"topic": "org.debian.dev.dak.package.accept", "category": "dak", "usernames": ["jane"],
            "packages": ["hello"], "agent": "jane", "body_text": '{"source": "hello"}'}
    return base | kw


@pytest.mark.parametrize(("search", "expected"), [
    (Search(), True),
    (Search(packages=("hello", "vim")), True),
    (Search(packages=("vim",)), False),
    (Search(not_packages=("hello",)), False),
    (Search(users=("jane",), categories=("dak",)), True),
    (Search(users=("jane",), categories=("git",)), False),
    (Search(topics=("org.debian.dev.dak.package.accept",)), True),
    (Search(not_topics=("org.debian.dev.dak.package.accept",)), False),
    (Search(agents=("carlos",)), False),
    (Search(not_agents=("carlos",)), True),
    (Search(contains=('"source": "hello"',)), True),
    (Search(contains=('"source":"hello"',)), False),
])
def test_live_filters_match_as_the_api_filters(search, expected):
    assert live.matches(search, _row()) is expected


def test_a_message_without_agent_passes_not_agent():
    assert live.matches(Search(not_agents=("jane",)), _row(agent=None))
    assert not live.matches(Search(agents=("jane",)), _row(agent=None))


def test_live_parameters():
    assert live.parse_filters({"package": ["hello"], "user": ["jane@debian.org"]}).users == ("jane",)
    with pytest.raises(BadParameter, match="delta: not a live filter"):
        live.parse_filters({"delta": ["60"]})
    with pytest.raises(BadParameter, match="did you mean package"):
        live.parse_filters({"pakage": ["hello"]})
    with pytest.raises(BadParameter, match="rows_per_page"):
        live.parse_filters({"rows_per_page": ["5"]})
    assert live.parse_filters({"after": ["5"], "topic": ["t"]}, extra=live.STREAM_PARAMS).topics == ("t",)
    assert live.form_params({"package": [""], "user": ["jane", " "]}) == {"user": ["jane"]}
    assert live.rows_param({}) == live.DEFAULT_ROWS
    with pytest.raises(BadParameter):
        live.rows_param({"rows": ["0"]})
    assert live.position("42", "after") == 42 and live.position(None, "after") is None
    assert live.position(" ", "Last-Event-ID") is None
    for bad in ("x", "-1", "1.5"):
        with pytest.raises(BadParameter):
            live.position(bad, "Last-Event-ID")


@given(st.text())
def test_an_event_keeps_its_data_whole_whatever_the_lines(text):
    event = live.sse(text, event="message", ident=7)
    assert event.endswith("\n\n") and event.startswith("event: message\nid: 7\n")
    # What a browser's parser gives back (lines split on \n, \r\n or \r).
    data = [line[len("data: "):] for line in event.split("\n") if line.startswith("data: ")]
    assert "\n".join(data) == text or "\r" in text


def test_cards_say_what_a_message_is():
    row = {"id": 9, "msg_id": "2024-x", "ts": T0, "topic": "org.debian.dev.dak.package.accept", "category": "dak",
           "body": {"source": "hello", "version": "1-1", "architectures": ["source"], "suites": ["unstable"],
                    "changed_by": "Jane <jane@debian.org>"},
           "signer": "A" * 40, "scope": "envelope", "packages": ["hello"], "agent": "jane"}
    c = live.card(row)
    assert (c.time, c.summary, c.link) == ("12:00:00", "Jane uploaded hello 1-1 to unstable",
                                          "https://tracker.debian.org/pkg/hello")
    assert c.signer_short == "A" * 16
    # A link that is not http(s) is not made a link.
    weird = dict(row, topic="org.debian.dev.git.ref.update", category="git",
                 body={"repo": "x", "url": "javascript:alert(1)", "kind": "branch", "name": "m", "agent": "j",
                       "commits": 1, "detailed": 1, "forced": False, "dropped": 0, "old": "0" * 40, "new": "1" * 40})
    assert live.card(weird).link is None


# -- package and person views ------------------------------------------------------------------------


def _wb(topic, ts, **body):
    return {"topic": f"org.debian.dev.wannabuild.package.{topic}", "ts": ts, "id": int(ts.timestamp()), "body": body}


def test_builds_per_architecture():
    rows = [  # newest first
        _wb("build.complete", T0, architecture="arm64", version="2", result="failed", builder="b"),
        _wb("build.complete", T0 - timedelta(1), architecture="arm64", version="1", result="successful", builder="b"),
        _wb("build.complete", T0 - timedelta(2), architecture="arm64", version="0", result="successful", builder="b"),
        _wb("build.complete", T0 - timedelta(3), architecture="amd64", version="1", result="successful", builder="c"),
    ]
    assert [(b.architecture, b.version) for b in views.last_successful_builds(rows)] == [("amd64", "1"),
                                                                                         ("arm64", "1")]
    states = views.current_states([
        _wb("state.update", T0, architecture="arm64", version="2", new_state="Building", user="b"),
        _wb("state.update", T0 - timedelta(1), architecture="arm64", version="2", new_state="Needs-Build"),
        _wb("state.update", T0 - timedelta(1), architecture="amd64", version="2", new_state="Installed"),
    ])
    assert [(s.architecture, s.state) for s in states] == [("amd64", "Installed"), ("arm64", "Building")]
    assert [s.architecture for s in views.building_now(states)] == ["arm64"]


def test_last_of_each_kind():
    rows = [{"topic": "org.debian.dev.dak.package.accept", "ts": T0, "id": 1},
            {"topic": "org.debian.prod.dak.package.accept", "ts": T0, "id": 2},  # not a known environment
            {"topic": "org.debian.production.dak.package.accept", "ts": T0 + timedelta(1), "id": 3},
            {"topic": "org.debian.dev.git.ref.update", "ts": T0, "id": 4}]
    last = dict(views.last_of_each_kind(rows))
    assert last["Upload"]["id"] == 3 and last["Push"]["id"] == 4 and last["Build"] is None
    assert list(last) == [k for k, _ in views.KINDS]
    assert views.full_topics(["org.debian.dev.git.receive", "org.debian.dev.dak.package.new"],
                             ["git.receive"]) == ("org.debian.dev.git.receive",)
