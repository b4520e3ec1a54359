"""notify's pure parts: rule files, matching (and its index), what was
mailed already, owners learnt from uploads, mails and digests; desktop's
bursts and its suspend watch."""

from __future__ import annotations

import email
import email.policy
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from debpulse.consumers.common.facts import facts
from debpulse.consumers.desktop.collapse import Burst, SleepWatch
from debpulse.consumers.notify import compose
from debpulse.consumers.notify.rules import RuleBook, RuleError, already_mailed, recipient_from
from debpulse.consumers.notify.store import Store, learnt

T = "org.debian.dev."
ACCEPT = {"source": "hello", "version": "2.10-3", "architectures": ["source"], "suites": ["unstable"],
          "maintainer": "Hello Team <hello-team@lists.example.org>", "changed_by": "Alice <alice@debian.org>",
          "urgency": "medium", "closes": [], "files": [], "changes": "hello_2.10-3_source.changes",
          "signature": "verified", "signed_by": None, "route": "mail"}
BUG = {"bug": 1000, "package": "hello", "source": "hello", "title": "crash", "from": "Carol <carol@example.org>",
       "severity": "important", "tags": [], "message_id": None, "enriched": False, "status": None, "via": "mail"}


def person(text: str, name: str = "alice") -> object:
    return recipient_from(tomllib.loads(text), f"{name}.toml", name)


def test_rule_file_and_matching() -> None:
    alice = person("""\
mail = "alice@example.org"
addresses = ["Alice <alice@debian.org>"]
irc = "alice"
[[rule]]
name = "mine"
my_packages = true
exclude = { topics = ["debbugs.bug.control"] }
to = ["mail", "irc"]
[[rule]]
name = "bob's work"
users = ["bob"]
topics = ["git.#"]
to = ["mail"]
digest = { every = 3600, count = 20 }
""")
    assert alice.addresses == {"alice@example.org", "alice@debian.org"}
    book = RuleBook([alice])
    owners = {"hello": {"alice@debian.org"}}.get
    report = facts(T + "debbugs.bug.report", BUG)
    assert [(m.rule.name, m.destination) for m in book.match(report, lambda p: owners(p) or ())] == [
        ("mine", "mail"), ("mine", "irc")]
    assert book.match(report, lambda p: ()) == []        # not hers
    control = facts(T + "debbugs.bug.control", {"bugs": [1000], "packages": ["hello"], "from": None,
                                                "subject": "", "changes": [], "errors": [], "message_id": None,
                                                "via": "mail"})
    assert book.match(control, lambda p: owners(p) or ()) == []   # excluded
    push = facts(T + "git.ref.delete", {"repo": "x", "path": "/x", "ref": "refs/heads/a", "kind": "branch",
                                        "name": "a", "old": "1" * 40, "new": "0" * 40, "agent": "bob"})
    [m] = book.match(push, lambda p: ())
    assert m.rule.name == "bob's work" and m.rule.digest and m.rule.digest.due(0, 20, 1)


@pytest.mark.parametrize("text, message", [
    ('[[rule]]\nname = "r"\npackages = ["a"]\nto = ["mail"]', "sends mail but there is no mail"),
    ('irc = "a"\n[[rule]]\nname = "r"\nto = ["irc"]', "says nothing to follow"),
    ('irc = "a"\n[[rule]]\nname = "r"\npackages = ["a"]', "says where to send it"),
    ('irc = "a"\n[[rule]]\nname = "r"\npackages = ["a"]\nto = ["irc"]\ndigest = { every = 0 }', "digest every"),
    ('irc = "a"\n[[rule]]\nname = "r"\npackages = ["a"]\nto = ["irc"]\ndigest = { evry = 3 }', "digest is a table"),
    ('irc = "a"\n[[rule]]\nname = "r"\nmy_packages = true\nto = ["irc"]', "no address says who you are"),
    ('irc = "a"\n[[rule]]\nname = "r"\npackage = ["a"]\nto = ["irc"]', "unknown key 'package'"),
    ('mial = "a@b"', "unknown key 'mial'"),
    ('mail = "not an address"', "is not a mail address"),
    ('irc = "a"\n[[rule]]\nname = "r"\ntopics = ["dak package"]\nto = ["irc"]', "topic pattern"),
    ('irc = "a"\n[[rule]]\nname = "r"\ntopics = ["dak"]\nto = ["irc"]\n[[rule]]\nname = "r"\ntopics = ["dak"]\n'
     'to = ["irc"]', "two rules named 'r'"),
])
def test_rule_errors_name_file_and_key(text: str, message: str) -> None:
    with pytest.raises(RuleError) as exc:
        person(text)
    assert message in str(exc.value) and "alice.toml" in str(exc.value)


toml_values = st.recursive(
    st.none().map(lambda _: "x") | st.booleans() | st.integers(-5, 5) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(["name", "to", "packages", "topics", "digest", "every", "count", "my_packages", "users",
                         "exclude", "mail", "irc", "teams", "x"]), children, max_size=4),
    max_leaves=12)


@settings(max_examples=300)
@given(st.dictionaries(st.sampled_from(["mail", "addresses", "irc", "irc_network", "name", "rule", "bad"]),
                       toml_values | st.lists(st.dictionaries(
                           st.sampled_from(["name", "to", "packages", "topics", "digest", "my_packages", "users",
                                            "teams", "exclude", "duplicates", "x"]), toml_values, max_size=5),
                           max_size=3), max_size=5))
def test_any_rule_file_is_read_or_refused_with_a_rule_error(data: dict) -> None:
    try:
        r = recipient_from(data, "fuzz.toml", "fuzz")
    except RuleError as exc:
        assert str(exc).startswith("fuzz.toml")
        return
    book = RuleBook([r])
    book.match(facts(T + "debbugs.bug.report", BUG), lambda p: ())


def test_the_index_finds_the_same_rules_as_checking_each() -> None:
    people = []
    for i in range(200):
        people.append(person(f"""\
irc = "p{i}"
addresses = ["p{i}@debian.org"]
[[rule]]
name = "r"
{"my_packages = true" if i % 5 == 0 else ""}
{f'packages = ["pkg{i % 7}"]' if i % 3 == 0 else ""}
{f'users = ["u{i % 4}"]' if i % 4 == 1 else ""}
topics = {["dak.#", "debbugs.bug.*", "org.debian.dev.git.#", "#"][i % 4]!r}
to = ["irc"]
""".replace("'", '"'), f"p{i}"))
    book = RuleBook(people)
    owners = {"pkg1": {"p0@debian.org", "p5@debian.org"}}
    for topic, body in (("dak.package.accept", {**ACCEPT, "source": "pkg1"}),
                        ("debbugs.bug.report", {**BUG, "package": "pkg3", "source": "pkg3", "from": "u1@x.org"}),
                        ("logger.log", {"log": "x"})):
        f = facts(T + topic, body)
        got = {(m.recipient.name, m.destination) for m in book.match(f, lambda p: owners.get(p, ()))}
        mine = {a for p in f.packages for a in owners.get(p, ())}
        want = {(r.name, "irc") for r in people for rule in r.rules if rule.follows(f, bool(mine & r.addresses))}
        assert got == want and got


def test_already_mailed() -> None:
    accept = facts(T + "dak.package.accept", ACCEPT)
    assert already_mailed(accept, ()) == {"hello-team@lists.example.org", "alice@debian.org"}
    report = facts(T + "debbugs.bug.report", BUG)
    assert already_mailed(report, {"hello-team@lists.example.org"}) == {"carol@example.org",
                                                                        "hello-team@lists.example.org"}
    assert already_mailed(facts(T + "git.ref.delete", {"repo": "x"}), ()) == frozenset()


def test_owners_are_learnt_durably(tmp_path: Path) -> None:
    accept = facts(T + "dak.package.accept", ACCEPT)
    assert learnt(accept) == [("hello", "hello-team@lists.example.org", "maintainer"),
                              ("hello", "alice@debian.org", "uploader")]
    store = Store(tmp_path / "n.sqlite")
    store.learn(accept)
    store.learn(facts(T + "dak.package.accept", {**ACCEPT, "maintainer": "New <new@example.org>",
                                                  "changed_by": "Bob <bob@debian.org>"}))
    store.close()
    again = Store(tmp_path / "n.sqlite")
    assert again.owners("hello") == {"new@example.org", "alice@debian.org", "bob@debian.org"}  # maintainer replaced
    assert again.maintainers(["hello"]) == {"new@example.org"}


def test_mail_headers_and_footer() -> None:
    r = person('mail = "alice@example.org"\n[[rule]]\nname = "bugs"\ntopics = ["debbugs"]\nto = ["mail"]\n')
    f = facts(T + "debbugs.bug.report", {**BUG, "title": "x\r\nBcc: evil@example.org"}, "2026-abc")
    msg = compose.mail(f, r, r.rules[0], "notify <n@example.org>")
    parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    assert parsed["Subject"] == "[debbugs] Bug #1000 (hello): new report from Carol: x Bcc: evil@example.org"
    assert parsed["Bcc"] is None and parsed["X-Debpulse-Msg-Id"] == "2026-abc"
    assert parsed["X-Debpulse-Rule"] == "alice/bugs" and parsed["Precedence"] == "bulk"
    assert "rule 'bugs' of alice" in parsed.get_content()
    many = [facts(T + "debbugs.bug.report", {**BUG, "bug": i, "package": f"p{i}", "source": f"p{i}"})
            for i in range(1, 13)]
    digest = compose.digest_mail(many, r, r.rules[0], "n@example.org")
    assert digest["X-Debpulse-Digest"] == "12" and len(digest.get_all("X-Debpulse-Package")) == 10
    assert digest["X-Debpulse-Num-Packages"] == "12"
    assert compose.irc_line(many, r.rules[0]).startswith("12 messages (bugs): Bug #1 (p1)")


def test_desktop_burst_and_sleep_watch() -> None:
    b = Burst(hold=1.0, collapse=3)
    for i in range(2):
        b.add(facts(T + "debbugs.bug.report", {**BUG, "bug": i}), lambda: None, 0.0)
    assert b.take(0.5) == []
    batch = b.take(1.0)
    assert [n.count for n, _ in b.notices(batch)] == [1, 1]
    for i in range(9):
        b.add(facts(T + "debbugs.bug.report", {**BUG, "bug": i}), lambda: None, 2.0)
    [(n, done)] = b.notices(b.take(3.0))
    assert n.count == 9 and len(done) == 9 and n.body.endswith("and 4 more")
    w = SleepWatch(100.0, 100.0)
    assert w.slept(101.0, 101.0) == 0.0
    assert w.slept(102.0, 3702.0) == pytest.approx(3600.0)   # an hour asleep
