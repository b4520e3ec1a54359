"""The pure parts of debpulse-trigger: topic patterns, what a command is
given for a message or a batch, and acknowledging in order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from debpulse.consumers.trigger.runner import (
    ENV_NAMES,
    InOrderAcks,
    TopicFilter,
    child_environment,
    clean,
    for_messages,
    message_fields,
)
from debpulse.emitters.errors import ConfigError
from debpulse.emitters.subscriber import Gap, Received
from debpulse.emitters.verify import Verdict

HOSTILE = [
    "$(touch /tmp/pwned)", "`touch /tmp/pwned`", "'; touch /tmp/pwned; '", '"; touch /tmp/pwned #',
    "x\ntouch /tmp/pwned", "a && b || c; d | e > f < g", "${IFS}$HOME*?[a]~!#%", "\\'\\\"",
]


def envelope(topic: str, body: dict, msg_id: str = "2026-1", seq: int = 1, publisher: str = "relay@h") -> dict:
    return {"topic": topic, "msg": body, "msg_id": msg_id, "seq_id": seq, "publisher": publisher,
            "timestamp": 1.0, "i": seq, "username": "dak", "signature": "c2ln", "crypto": "openpgp-envelope"}


def received(env: dict) -> Received:
    return Received(env, Verdict(True, "ok", "envelope", "F" * 40))


# -- topic patterns ----------------------------------------------------------------


@pytest.mark.parametrize("pattern, topic, expected", [
    ("dak.package.accept", "org.debian.dev.dak.package.accept", True),
    ("dak.package.accept", "org.debian.production.dak.package.accept", True),
    ("dak", "org.debian.dev.dak.package.new", True),
    ("dak.", "org.debian.dev.dak.package.new", True),
    ("dak.pack", "org.debian.dev.dak.package.accept", False),       # whole parts only
    ("dak.package.accept", "org.debian.dev.dak.package.acceptx", False),
    ("debbugs.bug.*", "org.debian.dev.debbugs.bug.report", True),
    ("debbugs.bug.*", "org.debian.dev.debbugs.bugs.report", False),
    ("debbugs.*", "org.debian.dev.debbugs.bug.report", False),      # '*' is exactly one part
    ("debbugs.#", "org.debian.dev.debbugs.bug.report", True),
    ("*.package.accept", "org.debian.dev.dak.package.accept", True),
    ("#", "org.debian.dev.git.receive", True),
    ("org.debian.production.dak.#", "org.debian.production.dak.package.accept", True),
    ("org.debian.production.dak.#", "org.debian.dev.dak.package.accept", False),
    ("org.debian.dev.dak", "org.debian.dev.dak.package.accept", True),
    ("wannabuild.package.state.update", "org.debian.dev.dak.package.accept", False),
])
def test_topic_patterns(pattern: str, topic: str, expected: bool) -> None:
    assert TopicFilter([pattern]).matches(topic) is expected


def test_several_patterns_and_subscription_prefixes() -> None:
    f = TopicFilter(["dak.package.accept", "debbugs.bug.#"])
    assert f.matches("org.debian.dev.debbugs.bug.close") and f.matches("org.debian.dev.dak.package.accept")
    assert not f.matches("org.debian.dev.dak.package.new")
    assert f.subscription() is None  # relative patterns: filtered in the trigger
    assert TopicFilter(["org.debian.production.dak.package.accept"]).subscription() == [
        "org.debian.production.dak.package.accept"]
    assert TopicFilter(["org.debian.production.dak.#"]).subscription() is None


@pytest.mark.parametrize("bad", ["", "dak package", "dak..accept", ".dak"])
def test_bad_patterns_are_configuration_errors(bad: str) -> None:
    with pytest.raises(ConfigError):
        TopicFilter([bad])
    with pytest.raises(ConfigError):
        TopicFilter([])


# -- what the command gets -------------------------------------------------------------


def test_real_dak_accept_gives_package_version_suite(shared_fixtures: Path) -> None:
    from debpulse.adapters.dak.mail import parse_mail

    mail = shared_fixtures / "dak/mails/04-ACCEPTED-maintainer_xfsprogs_6.12.0-1_source_2024-pgpmime.eml"
    [event] = parse_mail(mail.read_bytes()).events
    env = envelope("org.debian.dev." + event.topic, event.body, "2026-abc")
    inv = for_messages(["/usr/bin/import", "--fast"], [env])
    assert inv.argv == ("/usr/bin/import", "--fast")
    assert inv.env == {
        "DEBPULSE_TOPIC": "org.debian.dev.dak.package.accept", "DEBPULSE_MSG_ID": "2026-abc",
        "DEBPULSE_PACKAGE": "xfsprogs", "DEBPULSE_VERSION": "6.12.0-1", "DEBPULSE_SUITE": "unstable",
        "DEBPULSE_COUNT": "1", "DEBPULSE_TOPICS": "org.debian.dev.dak.package.accept",
        "DEBPULSE_PACKAGES": "xfsprogs", "DEBPULSE_SUITES": "unstable",
    }
    assert inv.stdin.endswith(b"\n") and inv.stdin.count(b"\n") == 1
    assert json.loads(inv.stdin) == env
    assert inv.label == "2026-abc" and inv.count == 1


def test_real_debbugs_followup_names_the_source_package(shared_fixtures: Path) -> None:
    from debpulse.adapters.debbugs.mail import parse_mail

    [event] = parse_mail((shared_fixtures / "debbugs/mails/bts-followup_979653.eml").read_bytes()).events
    inv = for_messages(["refresh"], [envelope("org.debian.dev." + event.topic, event.body)])
    assert inv.env["DEBPULSE_PACKAGE"] == "xfsprogs"
    assert "DEBPULSE_VERSION" not in inv.env and "DEBPULSE_SUITE" not in inv.env
    assert inv.env["DEBPULSE_SUITES"] == ""


def test_field_names_of_every_adapter() -> None:
    assert message_fields("", {"package": "src:gawk", "source": None}) == {
        "package": ["gawk"], "version": [], "suite": []}
    assert message_fields("", {"package": "hello", "version": "2.10-3", "suite": "sid"}) == {
        "package": ["hello"], "version": ["2.10-3"], "suite": ["sid"]}
    removal = {"sources": [{"name": "a", "version": "1"}, {"name": "b", "version": "2"}],
               "suites": ["unstable", "testing"]}
    assert message_fields("", removal) == {"package": ["a", "b"], "version": [], "suite": ["unstable", "testing"]}
    assert message_fields("", {"bug": 1, "package": "a,b", "source": None}, ["a", "b"])["package"] == ["a,b"]
    assert message_fields("", {"bug": 1}, ["x", "y"])["package"] == ["x", "y"]


def test_batch_sets_what_every_message_agrees_on_and_lists_the_rest() -> None:
    envs = [
        envelope("org.debian.dev.dak.package.accept", {"source": "hello", "version": "1", "suites": ["unstable"]},
                 "2026-1", 1),
        envelope("org.debian.dev.dak.package.accept", {"source": "gawk", "version": "2", "suites": ["unstable"]},
                 "2026-2", 2),
        envelope("org.debian.dev.dak.package.accept", {"source": "hello", "version": "3",
                                                        "suites": ["experimental"]}, "2026-3", 3),
    ]
    inv = for_messages(["import"], envs)
    assert inv.env == {
        "DEBPULSE_TOPIC": "org.debian.dev.dak.package.accept", "DEBPULSE_MSG_ID": "2026-3", "DEBPULSE_COUNT": "3",
        "DEBPULSE_TOPICS": "org.debian.dev.dak.package.accept", "DEBPULSE_PACKAGES": "hello gawk",
        "DEBPULSE_SUITES": "unstable experimental",
    }
    assert [json.loads(line) for line in inv.stdin.splitlines()] == envs
    assert inv.label == "batch-3-2026-1"
    same_suite = for_messages(["import"], envs[:2])
    assert same_suite.env["DEBPULSE_SUITE"] == "unstable" and "DEBPULSE_PACKAGE" not in same_suite.env


@pytest.mark.parametrize("payload", HOSTILE)
def test_hostile_content_stays_data(payload: str) -> None:
    body = {"source": payload, "version": payload, "suite": payload, "title": payload, "nested": {"x": [payload]}}
    inv = for_messages(["/usr/bin/import", "--suite", "all"], [envelope("org.debian.dev.dak.package.note", body)])
    assert inv.argv == ("/usr/bin/import", "--suite", "all")
    assert json.loads(inv.stdin)["msg"] == body
    assert inv.stdin.count(b"\n") == 1  # a newline in a field cannot start another message
    for name in ("DEBPULSE_PACKAGE", "DEBPULSE_VERSION", "DEBPULSE_SUITE"):
        assert inv.env[name] == payload
    if any(c.isspace() for c in payload):
        assert inv.env["DEBPULSE_PACKAGES"] == ""  # would split wrongly in a word list
    else:
        assert inv.env["DEBPULSE_PACKAGES"] == payload


def test_nul_bytes_and_surrogates_are_cleaned_and_inherited_values_dropped() -> None:
    body = {"source": "hel\0lo", "version": "1\udcff", "suite": "x" * 10_000}
    inv = for_messages(["import"], [envelope("org.debian.dev.dak.package.note", body)])
    assert inv.env["DEBPULSE_PACKAGE"] == "hello"
    assert "\0" not in inv.env["DEBPULSE_PACKAGE"] and inv.env["DEBPULSE_VERSION"] == "1\ufffd"
    assert len(inv.env["DEBPULSE_SUITE"]) == 4096
    assert json.loads(inv.stdin)["msg"]["source"] == "hel\0lo"  # stdin keeps the exact content
    base = {"PATH": "/usr/bin", "DEBPULSE_PACKAGE": "stale", "DEBPULSE_SUITE": "stale", "DEBPULSE_STATE_DIR": "/s"}
    env = child_environment(base, {"DEBPULSE_TOPIC": "t\0"})
    assert env == {"PATH": "/usr/bin", "DEBPULSE_STATE_DIR": "/s", "DEBPULSE_TOPIC": "t"}
    assert set(inv.env) <= set(ENV_NAMES)
    assert clean("a\0b\0") == "ab"


# -- acking in order ----------------------------------------------------------------------


def test_acks_wait_for_every_earlier_message_of_the_same_publisher() -> None:
    acks = InOrderAcks()
    a = [acks.add(received(envelope("t", {}, f"a{i}", i, "A"))) for i in range(1, 4)]
    b1 = acks.add(received(envelope("t", {}, "b1", 1, "B")))
    gap = acks.add(Gap("A", 4, 6, "pruned", permanent=True))
    a7 = acks.add(received(envelope("t", {}, "a7", 7, "A")))
    assert acks.finish([a[2]]) == []                    # a3 done, a1 and a2 still running
    assert acks.finish([b1]) == [b1.item]               # another publisher is independent
    assert acks.finish([a[0]]) == [a[0].item]
    assert acks.finish([gap, a7]) == []                 # still behind a2
    assert acks.finish([a[1]]) == [a[1].item, a[2].item, gap.item, a7.item]
    assert acks.pending() == 0
