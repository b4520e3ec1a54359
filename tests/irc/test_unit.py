"""debpulse-irc's pure parts: IRC framing, text cleaning, token buckets,
squashing, filters and the [irc] table."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from debpulse.consumers.common.facts import Criteria, criteria_from, facts
from debpulse.consumers.irc import lines
from debpulse.consumers.irc.flood import ChannelQueue, SquashPolicy, TokenBucket
from debpulse.consumers.irc.protocol import (
    MAX_LINE,
    ProtocolError,
    clean_text,
    encode,
    fit,
    irc_lower,
    parse,
    room_for_text,
)
from debpulse.emitters.config import Config
from debpulse.emitters.errors import ConfigError

ACCEPT = {"source": "hello", "version": "2.10-3", "architectures": ["source"], "suites": ["unstable"],
          "maintainer": "Debian OCaml Maintainers <debian-ocaml-maint@lists.debian.org>",
          "changed_by": "Santiago Vila <sanvila@debian.org>", "urgency": "medium", "closes": [], "files": [],
          "changes": "hello_2.10-3_source.changes", "signature": "verified", "signed_by": None, "route": "mail"}
T = "org.debian.dev."


def accept(source: str = "hello", suite: str = "unstable") -> object:
    return facts(T + "dak.package.accept", {**ACCEPT, "source": source, "suites": [suite]})


def commit(i: int, repo: str = "hello", branch: str = "master") -> object:
    return facts(T + "git.receive", {"commit": {
        "name": "Jane", "email": "j@e.org", "username": "jane", "summary": f"change {i}", "message": "", "stats":
        {"files": {}, "total": {"additions": 0, "deletions": 0, "lines": 0, "files": 0}}, "rev": f"{i:07x}" + "0" * 33,
        "path": "/srv/hello.git", "repo": repo, "branch": branch, "agent": "jane", "seen": False, "url": None}})


def push(commits: int, detailed: int) -> object:
    return facts(T + "git.ref.update", {
        "repo": "hello", "path": "/srv/hello.git", "ref": "refs/heads/master", "kind": "branch", "name": "master",
        "old": "1" * 40, "new": "2" * 40, "agent": "jane", "commits": commits, "detailed": detailed,
        "forced": False, "dropped": 0, "url": "https://salsa.example.org/hello/-/compare/1...2"})


# -- protocol -----------------------------------------------------------------


def test_parse_server_lines() -> None:
    line = parse(b":alice!~a@host PRIVMSG #debian :hello there")
    assert (line.prefix, line.command, line.params, line.nick) == ("alice!~a@host", "PRIVMSG",
                                                                   ("#debian", "hello there"), "alice")
    assert parse(b"PING :irc.example.org").params == ("irc.example.org",)
    assert parse(b":srv 433 * dpbot :Nickname already in use").command == "433"
    assert parse(b"@time=x :srv PONG srv :dp3").params == ("srv", "dp3")
    for bad in (b"", b":onlyprefix", b":p 12 x", b"PRIV MSG\r", b"A\0B"):
        with pytest.raises(ProtocolError):
            parse(bad)


@given(st.binary(max_size=600))
def test_parse_never_fails_but_with_protocol_error(raw: bytes) -> None:
    try:
        line = parse(raw)
    except ProtocolError:
        return
    assert line.command and all("\r" not in p and "\n" not in p for p in line.params)


middle = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\0 :"), min_size=1,
                 max_size=20)


@given(st.lists(middle, max_size=4), st.text(st.characters(blacklist_categories=("Cs",),
                                                          blacklist_characters="\r\n\0"), max_size=100))
def test_encode_then_parse_gives_the_same_parameters(params: list[str], trailing: str) -> None:
    data = encode("PRIVMSG", *params, trailing)
    assert data.endswith(b"\r\n") and len(data) <= MAX_LINE
    assert parse(data[:-2]).params == (*params, trailing)


def test_encode_refuses_line_breaks() -> None:
    for bad in ("a\r\nQUIT", "a\nb", "a\0"):
        with pytest.raises(ValueError):
            encode("PRIVMSG", "#x", bad)


@given(st.text(max_size=300))
def test_clean_text_leaves_no_control_character(text: str) -> None:
    out = clean_text(text)
    assert not any(ord(c) < 32 or ord(c) == 127 for c in out)
    assert out == out.strip()


@given(st.text(max_size=700), st.integers(min_value=4, max_value=500))
def test_fit_cuts_whole_characters_to_the_room(text: str, room: int) -> None:
    out = fit(text, room)
    assert len(out.encode("utf-8")) <= room
    assert out == text or out.endswith("…")


def test_a_long_summary_still_fits_once_relayed() -> None:
    text = fit("é" * 600, room_for_text("PRIVMSG", "#debian-devel-changes"))
    relayed = f":{'n' * 30}!{'u' * 10}@{'h' * 63} PRIVMSG #debian-devel-changes :{text}\r\n"
    assert len(relayed.encode()) <= MAX_LINE


def test_irc_case_mapping() -> None:
    assert irc_lower("#Debian[Devel]") == "#debian{devel}"


# -- buckets and squashing -----------------------------------------------------------


def test_token_bucket() -> None:
    b = TokenBucket(rate=2, burst=3, now=0)
    assert [b.take(0) for _ in range(4)] == [True, True, True, False]
    assert b.wait(0) == pytest.approx(0.5)
    assert b.take(0.5) and not b.take(0.5)
    assert b.take(100) and b.tokens == pytest.approx(2)  # never more than the burst


def drain(q: ChannelQueue, now: float) -> list[tuple[str, int]]:
    out = []
    while (o := q.take(now)) is not None:
        for done in o.done:
            done()
        out.append((o.text, o.squashed))
    return out


def queue(**policy: object) -> ChannelQueue:
    return ChannelQueue(SquashPolicy(**{"hold": 1.0, **policy}), TokenBucket(1, 100, 0))


def test_a_burst_of_one_group_becomes_one_line_and_every_message_is_done() -> None:
    q = queue()
    done: list[int] = []
    for i in range(37):
        q.add(accept(f"p{i}"), lambda i=i: done.append(i), 0.0)
    assert q.take(0.5) is None  # held: the rest of the burst may come
    assert drain(q, 1.0) == [("37 packages accepted into unstable: p0 2.10-3, p1 2.10-3, p2 2.10-3 and 34 more",
                              37)]
    assert sorted(done) == list(range(37))


def test_below_the_threshold_each_message_has_its_line() -> None:
    q = queue(threshold=4)
    q.add(accept("a"), lambda: None, 0)
    q.add(accept("b", "experimental"), lambda: None, 0)
    q.add(accept("c"), lambda: None, 0)
    texts = [t for t, _ in drain(q, 2)]
    assert texts == ["Santiago Vila uploaded a 2.10-3 to unstable https://tracker.debian.org/pkg/a",
                     "Santiago Vila uploaded b 2.10-3 to experimental https://tracker.debian.org/pkg/b",
                     "Santiago Vila uploaded c 2.10-3 to unstable https://tracker.debian.org/pkg/c"]


def test_a_push_waits_for_its_commits_then_is_one_line() -> None:
    q = queue(hold=0.1, push_wait=10)
    q.add(push(500, 100), lambda: None, 0)
    for i in range(50):
        q.add(commit(i), lambda: None, 0.01)
    assert q.take(1.0) is None  # 50 of the 100 announced commits are in
    for i in range(50, 100):
        q.add(commit(i), lambda: None, 1.1)
    [(text, n)] = drain(q, 1.2)
    assert n == 101 and text.startswith("jane pushed 500 commits to hello (master) (first 100 described)")


def test_a_small_push_is_its_commit_lines() -> None:
    q = queue(hold=0)
    q.add(push(2, 2), lambda: None, 0)
    q.add(commit(1), lambda: None, 0)
    q.add(commit(2), lambda: None, 0)
    out = drain(q, 0)
    assert [n for _, n in out] == [2, 1]
    assert out[0][0].startswith("Jane committed 0000001 to hello (master): change 1")


def test_a_push_whose_commits_never_come_goes_out_after_push_wait() -> None:
    q = queue(hold=0, push_wait=5)
    q.add(push(3, 3), lambda: None, 0)
    assert q.take(4.9) is None
    assert drain(q, 5.0)[0][0].startswith("jane pushed 3 commits")


def test_a_backlog_too_long_to_send_is_squashed_whole_and_counted() -> None:
    q = ChannelQueue(SquashPolicy(hold=0, max_delay=2), TokenBucket(1, 1, 0))
    done: list[int] = []
    for i in range(10):
        q.add(facts(T + f"debbugs.bug.t{i}", {}), lambda i=i: done.append(i), 0)
    [(text, n)] = drain(q, 0)
    assert n == 10 and text.startswith("10 messages squashed to keep up:")
    assert sorted(done) == list(range(10))


def test_rate_limits_the_lines() -> None:
    q = ChannelQueue(SquashPolicy(hold=0, threshold=100), TokenBucket(1, 2, 0))
    for i in range(5):
        q.add(accept(f"p{i}"), lambda: None, 0)
    assert len(drain(q, 0)) == 2
    assert q.next_time(0) == pytest.approx(1.0)
    assert len(drain(q, 1.0)) == 1


def test_colours_and_hostile_summaries() -> None:
    f = facts(T + "dak.package.reject", {**ACCEPT, "reason": "bad\x03\x02\r\nQUIT :x", "rejection": "manual"})
    plain = lines.single(f)
    assert "\r" not in plain and "\n" not in plain and "\x03" not in plain
    coloured = lines.single(accept(), colours=True)
    assert coloured.startswith("\x0303dak\x0f Santiago Vila") and coloured.endswith("\x0310https://tracker.debian.org/pkg/hello\x0f")


# -- filters ------------------------------------------------------------------


def test_facts_from_the_body() -> None:
    f = accept()
    # The people a message concerns: the uploader, and the maintainer (here a team's list).
    assert f.packages == {"hello"} and f.users == {"sanvila", "debian-ocaml-maint@lists.debian.org"}
    assert "debian-ocaml-maint@lists.debian.org" in f.teams
    assert f.people == {"debian-ocaml-maint@lists.debian.org", "sanvila@debian.org"}
    assert commit(1, repo="ocaml-team/hello").teams == {"ocaml-team"}


def test_include_is_and_between_kinds_or_within_and_exclude_is_any() -> None:
    inc = criteria_from({"topics": ["dak.#", "debbugs"], "packages": ["hello", "other"]}, "x")
    assert inc.all_of(accept("hello")) and not inc.all_of(accept("nope"))
    assert not inc.all_of(commit(1))
    exc = criteria_from({"packages": ["linux"], "users": ["jane"]}, "x")
    assert exc.any_of(accept("linux")) and exc.any_of(commit(1)) and not exc.any_of(accept("hello"))
    assert Criteria().all_of(accept()) and Criteria().empty
    assert criteria_from({"topics": ["org.debian.dev.dak.package.accept"]}, "x").all_of(accept())
    assert criteria_from({"teams": ["Debian-OCaml-Maint@lists.debian.org"]}, "x").all_of(accept())


@pytest.mark.parametrize("table, message", [
    ({"topic": ["dak"]}, "unknown key 'topic'"),
    ({"topics": "dak package"}, "topic pattern"),
    ({"packages": [1]}, "list of strings"),
])
def test_criteria_errors(table: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        criteria_from(table, "include")


# -- the [irc] table ------------------------------------------------------------------


def settings(data: dict) -> object:
    from debpulse.consumers.irc.settings import settings_from

    return settings_from(Config(data, {"irc": "debpulse.toml"}))


NET = {"networks": {"oftc": {"host": "irc.oftc.net", "tls": True}}}


def test_settings_defaults() -> None:
    s = settings({"irc": {**NET, "channels": [{"name": "#debian-devel-changes"}]}})
    [c] = s.channels
    assert c.network == "oftc" and s.networks["oftc"].port == 6697 and c.policy.threshold == 4


@pytest.mark.parametrize("irc, message", [
    ({"nik": "x"}, "unknown key 'nik'"),
    ({**NET, "channels": [{"name": "debian"}]}, "is not a channel name"),
    ({**NET, "channels": [{"name": "#a", "network": "libera"}]}, "no [irc.networks.libera]"),
    ({**NET, "channels": [{"name": "#a", "rate": 0}]}, "rate must be positive"),
    ({**NET, "channels": [{"name": "#a", "include": {"pakages": []}}]}, "unknown key 'pakages'"),
    ({**NET, "channels": [{"name": "#a"}, {"name": "#A"}]}, "configured twice"),
    ({"networks": {"oftc": {"host": "h", "port": 70000}}}, "is not a port"),
    ({"networks": {"oftc": {"host": "h", "colour": True}}}, "unknown key 'colour'"),
    ({"networks": {"a": {"host": "h"}, "b": {"host": "h"}}, "channels": [{"name": "#a"}]}, "say which network"),
    ({"nick": "bad nick"}, "is not an IRC nick"),
    ({"control_mode": "rw"}, "not an octal mode"),
])
def test_settings_errors_name_the_key(irc: dict, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        settings({"irc": irc})
    assert message in str(exc.value) and "debpulse.toml" in str(exc.value)


# -- the control socket's requests ---------------------------------------------------


def test_control_requests() -> None:
    from debpulse.consumers.irc.control import parse_request

    r = parse_request(b'{"to": "alice", "text": "hello\\r\\nQUIT :x", "network": "oftc"}')
    assert (r.to, r.text, r.network, r.notice) == ("alice", "hello QUIT :x", "oftc", False)
    for bad, why in ((b"[]", "JSON object"), (b'{"to": "#chan", "text": "x"}', "nick"),
                     (b'{"to": "a", "text": ""}', "non-empty"), (b'{"to": "a", "text": "x", "cc": 1}', "unknown key"),
                     (b"\xff", "JSON object")):
        with pytest.raises(ValueError, match=why):
            parse_request(bad)


@given(st.binary(max_size=300) | st.dictionaries(st.sampled_from(["to", "text", "network", "notice", "x"]),
                                                 st.none() | st.booleans() | st.integers() | st.text(max_size=40),
                                                 max_size=5).map(lambda d: __import__("json").dumps(d).encode()))
def test_any_control_request_is_parsed_or_refused_with_a_reason(data: bytes) -> None:
    from debpulse.consumers.irc.control import parse_request

    try:
        r = parse_request(data)
    except ValueError as exc:
        assert str(exc)
        return
    assert "\r" not in r.text and "\n" not in r.text and r.text
