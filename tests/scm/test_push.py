"""Ref updates + a real repository -> events (no bus): the fixture pushes
replayed on a bare repository made from the fixture bundle."""

from __future__ import annotations

from pathlib import Path

import pytest

from debpulse.adapters.scm import push
from debpulse.adapters.scm.commits import Repository, gather
from debpulse.adapters.scm.refs import parse
from debpulse.emitters.event import Event
from debpulse.emitters.messages import message_for, message_type

from .conftest import Git

A, B, C = ("a7e336ab45d3934e789c412e0ec08763ef7ea06c", "d9dce48da46babed65355658eb648b9ff1552376",
           "93ba66dd334cba69476228a1d85c3bdc4290798b")
TAG = "55ef7f76d15f396c18e679b3909239829e6daece"


@pytest.fixture
def hello(git: Git, hello_bundle: Path, tmp_path: Path) -> Path:
    bare = tmp_path / "hello.git"
    git(tmp_path, "clone", "-q", "--bare", str(hello_bundle), str(bare))
    for ref in git(bare, "for-each-ref", "--format=%(refname)").split():
        git(bare, "update-ref", "-d", ref)
    return bare


def replay(git: Git, bare: Path, stdin: bytes, refs: dict[str, str], **ctx: object) -> list[Event]:
    """Put the refs where the push left them, then describe the push."""
    for ref in git(bare, "for-each-ref", "--format=%(refname)").split():
        git(bare, "update-ref", "-d", ref)
    for ref, oid in refs.items():
        git(bare, "update-ref", ref, oid)
    context = push.Context(repo="hello", path=str(bare), agent="jane",
                           web_url="https://salsa.debian.org/debian/hello", **ctx)  # type: ignore[arg-type]
    events = push.events(context, gather(Repository(bare), parse(stdin), context.max_commits))
    for ev in events:
        message_type(ev.topic).validate(ev.body)  # what the emitter checks
    return events


def fixture_stdin(shared_fixtures: Path, n: int) -> bytes:
    return next((shared_fixtures / "git").glob(f"post-receive-stdin-0{n}-*.txt")).read_bytes()


def test_first_push_creates_master(git: Git, hello: Path, shared_fixtures: Path) -> None:
    create, receive = replay(git, hello, fixture_stdin(shared_fixtures, 1), {"refs/heads/master": A})
    assert create.topic == "git.ref.create"
    assert create.body["commits"] == 1 and create.body["name"] == "master"
    assert message_for(create.topic, create.body).summary() == \
        "jane created branch master in hello at a7e336a with 1 commit"
    assert receive.topic == "git.receive"
    c = receive.body["commit"]
    assert (c["rev"], c["branch"], c["repo"], c["name"], c["email"]) == \
        (A, "master", "hello", "Jane Maintainer", "jane@example.org")
    assert c["summary"] == "Initial packaging" and c["seen"] is False
    # The root commit counts every line it adds.
    assert c["stats"]["total"]["files"] == len(c["stats"]["files"]) > 0
    assert c["stats"]["total"]["deletions"] == 0
    assert c["stats"]["total"]["additions"] == c["stats"]["total"]["lines"] > 0
    assert receive.key == f"git.receive:hello:master:{A}"
    assert message_for(receive.topic, receive.body).link() == f"https://salsa.debian.org/debian/hello/-/commit/{A}"


def test_update_tag_and_new_branch(git: Git, hello: Path, shared_fixtures: Path) -> None:
    events = replay(git, hello, fixture_stdin(shared_fixtures, 2),
                    {"refs/heads/master": C, "refs/tags/debian/1.0-1": TAG, "refs/heads/upstream": B})
    assert [e.topic for e in events] == ["git.ref.update", "git.receive", "git.receive", "git.tag.create",
                                         "git.ref.create", "git.receive"]
    update, bump, fix, tag, create, again = events
    assert (update.body["commits"], update.body["forced"], update.body["dropped"]) == (2, False, 0)
    assert message_for(update.topic, update.body).summary() == "jane pushed 2 commits to hello (master)"
    assert [bump.body["commit"]["rev"], fix.body["commit"]["rev"]] == [B, C]  # oldest first
    assert fix.body["commit"]["stats"]["files"] == {"debian/changelog": {"additions": 1, "deletions": 0, "lines": 1}}
    assert message_for(fix.topic, fix.body).summary() == \
        "Jane Maintainer committed 93ba66d to hello (master): Fix typo in changelog"
    assert tag.body["annotated"] is True and tag.body["target"] == C and tag.body["new"] == TAG
    assert tag.body["tagger"] == {"name": "Jane Maintainer", "email": "jane@example.org"}
    assert message_for(tag.topic, tag.body).summary() == \
        "jane tagged 93ba66d as debian/1.0-1 in hello: hello Debian release 1.0-1"
    # upstream's commit was described for master a moment ago: fedmsg's "seen".
    assert create.body["commits"] == 1
    assert again.body["commit"]["rev"] == B and again.body["commit"]["branch"] == "upstream"
    assert again.body["commit"]["seen"] is True and bump.body["commit"]["seen"] is False
    assert again.key != bump.key  # one message per branch and commit


def test_delete_branch(git: Git, hello: Path, shared_fixtures: Path) -> None:
    [delete] = replay(git, hello, fixture_stdin(shared_fixtures, 3),
                      {"refs/heads/master": C, "refs/tags/debian/1.0-1": TAG})
    assert delete.topic == "git.ref.delete" and delete.body["old"] == B
    assert message_for(delete.topic, delete.body).summary() == "jane deleted branch upstream in hello (was d9dce48)"


def test_new_branch_from_known_commits_lists_none(git: Git, hello: Path) -> None:
    stdin = f"{'0' * 40} {B} refs/heads/stable\n".encode()
    [create] = replay(git, hello, stdin, {"refs/heads/master": C, "refs/heads/stable": B})
    assert create.body["commits"] == 0 and create.body["detailed"] == 0


def test_merged_commits_known_elsewhere_are_seen(git: Git, hello: Path) -> None:
    # master moves from A to C; B was on another branch already.
    stdin = f"{A} {C} refs/heads/master\n".encode()
    _, bump, fix = replay(git, hello, stdin, {"refs/heads/master": C, "refs/heads/upstream": B})
    assert bump.body["commit"]["seen"] is True and fix.body["commit"]["seen"] is False


def test_rewind_is_a_forced_update(git: Git, hello: Path) -> None:
    [update] = replay(git, hello, f"{C} {A} refs/heads/master\n".encode(), {"refs/heads/master": A})
    assert (update.body["forced"], update.body["dropped"], update.body["commits"]) == (True, 2, 0)
    assert message_for(update.topic, update.body).summary() == \
        "jane force-pushed 0 commits to hello (master), dropping 2 commits"


def test_bound_on_described_commits(git: Git, hello: Path) -> None:
    events = replay(git, hello, f"{A} {C} refs/heads/master\n".encode(), {"refs/heads/master": C}, max_commits=1)
    update, receive = events
    assert (update.body["commits"], update.body["detailed"]) == (2, 1)
    assert receive.body["commit"]["rev"] == B
    assert message_for(update.topic, update.body).summary() == \
        "jane pushed 2 commits to hello (master) (first 1 described)"


def test_lightweight_tag_and_other_refs(git: Git, hello: Path) -> None:
    stdin = f"{'0' * 40} {C} refs/tags/v1\n{'0' * 40} {C} refs/notes/commits\n".encode()
    tag, note = replay(git, hello, stdin, {"refs/heads/master": C, "refs/tags/v1": C, "refs/notes/commits": C})
    assert tag.topic == "git.tag.create" and tag.body["annotated"] is False and tag.body["target"] == C
    assert tag.body["tagger"] is None and tag.body["message"] is None
    assert note.topic == "git.ref.create" and note.body["kind"] == "other" and note.body["commits"] == 0
