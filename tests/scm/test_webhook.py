"""GitLab's Push Hook and Tag Push Hook: the pure payload reader, and the
real `debpulse-git webhook` receiver in front of a real relay."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from testbus import free_port, start_ready

from debpulse.adapters.scm import push
from debpulse.adapters.scm.commits import Repository, gather
from debpulse.adapters.scm.refs import parse
from debpulse.adapters.scm.webhook import gitlab_events
from debpulse.emitters.errors import InputError
from debpulse.emitters.messages import message_for, message_type

from .conftest import Git

A, B, C = ("a7e336ab45d3934e789c412e0ec08763ef7ea06c", "d9dce48da46babed65355658eb648b9ff1552376",
           "93ba66dd334cba69476228a1d85c3bdc4290798b")
TAG = "55ef7f76d15f396c18e679b3909239829e6daece"
ZERO = "0" * 40
WEB = "https://salsa.debian.org/debian/hello"
TOKEN = "s3cret-token"


def project() -> dict[str, Any]:
    return {"id": 4242, "name": "hello", "description": "", "web_url": WEB,
            "git_ssh_url": "git@salsa.debian.org:debian/hello.git",
            "git_http_url": f"{WEB}.git", "namespace": "Debian", "path_with_namespace": "debian/hello",
            "default_branch": "master"}


def push_payload(before: str = A, after: str = C, ref: str = "refs/heads/master") -> dict[str, Any]:
    """Shaped as GitLab documents its Push Hook (the fixture repository's second push)."""
    commits = [
        {"id": B, "message": "Bump changelog\n", "title": "Bump changelog", "timestamp": "2026-11-27T10:20:51+00:00",
         "url": f"{WEB}/-/commit/{B}", "author": {"name": "Jane Maintainer", "email": "jane@example.org"},
         "added": [], "modified": ["debian/changelog"], "removed": []},
        {"id": C, "message": "Fix typo in changelog\n", "title": "Fix typo in changelog",
         "timestamp": "2026-11-27T10:20:51+00:00", "url": f"{WEB}/-/commit/{C}",
         "author": {"name": "Jane Maintainer", "email": "jane@example.org"},
         "added": [], "modified": ["debian/changelog"], "removed": []},
    ] if after != ZERO else []
    return {"object_kind": "push", "event_name": "push", "before": before, "after": after, "ref": ref,
            "checkout_sha": after if after != ZERO else None, "message": None, "user_id": 7,
            "user_name": "Jane Maintainer", "user_username": "jane", "user_email": "[REDACTED]",
            "user_avatar": "", "project_id": 4242, "project": project(), "commits": commits,
            "total_commits_count": len(commits),
            "repository": {"name": "hello", "url": project()["git_ssh_url"], "homepage": WEB}}


def tag_payload(after: str, checkout: str | None, message: str | None) -> dict[str, Any]:
    p = push_payload(ZERO, after, "refs/tags/debian/1.0-1")
    p.update(object_kind="tag_push", event_name="tag_push", checkout_sha=checkout, message=message, commits=[],
             total_commits_count=0)
    return p


def test_push_gives_the_hooks_topics_and_keys(git: Git, hello_bundle: Path, tmp_path: Path) -> None:
    hook_route = tmp_path / "hello.git"
    git(tmp_path, "clone", "-q", "--bare", str(hello_bundle), str(hook_route))
    ctx = push.Context(repo="debian/hello", path=str(hook_route), agent="jane", web_url=WEB)
    from_hook = push.events(ctx, gather(Repository(hook_route), parse(f"{A} {C} refs/heads/master\n".encode()), 100))
    from_web = gitlab_events(push_payload())
    assert [(e.topic, e.key) for e in from_web] == [(e.topic, e.key) for e in from_hook]
    for ev in from_web:
        message_type(ev.topic).validate(ev.body)
    update, bump, fix = from_web
    assert (update.body["commits"], update.body["forced"], update.body["dropped"]) == (2, None, None)
    c = fix.body["commit"]
    assert (c["name"], c["username"], c["repo"], c["branch"], c["summary"]) == \
        ("Jane Maintainer", "jane", "debian/hello", "master", "Fix typo in changelog")
    assert c["stats"] == {"files": {"debian/changelog": {"additions": None, "deletions": None, "lines": None}},
                          "total": {"additions": None, "deletions": None, "lines": None, "files": 1}}
    assert message_for(fix.topic, fix.body).link() == f"{WEB}/-/commit/{C}"
    assert message_for(fix.topic, fix.body).packages() == ["hello"]
    # The same commit from both routes: one key, so one message on the bus.
    assert fix.key == from_hook[2].key == f"git.receive:debian/hello:master:{C}"


def test_more_commits_than_gitlab_sends() -> None:
    p = push_payload()
    p["total_commits_count"] = 2000
    update, *receives = gitlab_events(p, max_commits=1)
    assert (update.body["commits"], update.body["detailed"], len(receives)) == (2000, 1, 1)
    assert message_for(update.topic, update.body).summary() == \
        "jane pushed 2000 commits to debian/hello (master) (first 1 described)"


def test_branch_create_and_delete() -> None:
    create, *_ = gitlab_events(push_payload(ZERO, C))
    assert create.topic == "git.ref.create" and create.body["url"] == f"{WEB}/-/tree/master"
    [delete] = gitlab_events(push_payload(C, ZERO))
    assert delete.topic == "git.ref.delete" and delete.body["old"] == C


def test_tag_push_annotated_and_lightweight() -> None:
    [annotated] = gitlab_events(tag_payload(TAG, C, "hello Debian release 1.0-1\n"))
    assert annotated.topic == "git.tag.create"
    assert (annotated.body["annotated"], annotated.body["target"], annotated.body["message"]) == \
        (True, C, "hello Debian release 1.0-1\n")
    assert message_for(annotated.topic, annotated.body).summary() == \
        "jane tagged 93ba66d as debian/1.0-1 in debian/hello: hello Debian release 1.0-1"
    [light] = gitlab_events(tag_payload(C, C, ""))
    assert (light.body["annotated"], light.body["target"], light.body["message"]) == (False, C, None)
    [gone] = gitlab_events({**tag_payload(ZERO, None, None), "before": TAG})
    assert gone.topic == "git.ref.delete" and gone.body["kind"] == "tag"


@pytest.mark.parametrize("payload, reason", [
    ([], "not a JSON object"),
    ({"object_kind": "merge_request"}, "not a push"),
    ({**push_payload(), "project": None}, "project"),
    ({**push_payload(), "after": "HEAD"}, "object id"),
    ({**push_payload(), "commits": [{"id": C}]}, "author"),
    ({**push_payload(), "commits": "many"}, "not a list"),
    ({**push_payload(), "commits": [{**push_payload()["commits"][0], "id": "HEAD~1"}]}, "commits[0].id"),
    (tag_payload(TAG, "v1.0", "release"), "checkout_sha"),
])
def test_bad_payloads(payload: Any, reason: str) -> None:
    with pytest.raises(InputError) as exc:
        gitlab_events(payload)
    assert reason in exc.value.reason


# -- the HTTP receiver, as an admin runs it -------------------------------------

class Receiver:
    def __init__(self, url: str, state: Path) -> None:
        self.url = url
        self.rejected = state / "git-webhook" / "rejected"

    def post(self, body: bytes, token: str | None = TOKEN, event: str = "Push Hook",
             **headers: str) -> requests.Response:
        h = {"Content-Type": "application/json", "X-Gitlab-Event": event, **headers}
        if token is not None:
            h["X-Gitlab-Token"] = token
        return requests.post(self.url, data=body, headers=h, timeout=10)


@pytest.fixture
def receiver(bus, tmp_path: Path) -> Iterator[Receiver]:  # type: ignore[no-untyped-def]
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    port = free_port()
    proc = start_ready(  # READY=1 once it listens
        [sys.executable, "-m", "debpulse.adapters.scm.cli", "webhook", "--listen", f"127.0.0.1:{port}",
         "--token-file", str(token_file), "--max-body", "65536"],
        {**os.environ, **bus.env}, tmp_path / "webhook.log",
    )
    try:
        yield Receiver(f"http://127.0.0.1:{port}/", Path(bus.env["DEBPULSE_STATE_DIR"]))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


def test_receiver_publishes_a_push(bus, receiver: Receiver) -> None:  # type: ignore[no-untyped-def]
    sub = bus.subscriber()
    answer = receiver.post(json.dumps(push_payload()).encode())
    assert (answer.status_code, answer.text) == (200, "published 3 events\n")
    got = sub.wait(3)
    assert [r.topic.removeprefix("org.debian.dev.") for r in got] == ["git.ref.update", "git.receive", "git.receive"]
    assert all(r.verdict.ok for r in got)
    assert got[2].summary == "Jane Maintainer committed 93ba66d to debian/hello (master): Fix typo in changelog"
    # GitLab redelivering the same push publishes nothing new, and says so.
    again = receiver.post(json.dumps(push_payload()).encode())
    assert (again.status_code, again.text) == (200, "nothing new: 3 events published before\n")
    assert sub.wait(1, timeout=1.5) == []
    tag = receiver.post(json.dumps(tag_payload(TAG, C, "hello 1.0-1")).encode(), event="Tag Push Hook")
    assert (tag.status_code, tag.text) == (200, "published 1 event\n")
    [created] = sub.wait(1)
    assert created.topic.endswith("git.tag.create") and created.body["annotated"] is True


def test_webhook_help_says_where_the_token_comes_from() -> None:
    r = subprocess.run([sys.executable, "-m", "debpulse.adapters.scm.cli", "webhook", "--help"],
                       capture_output=True, text=True, timeout=30)
    text = " ".join(r.stdout.split())
    assert r.returncode == 0
    for source in ("--token-file", "[git] token_file", "DEBPULSE_GIT_WEBHOOK_TOKEN", "[git] token"):
        assert source in text, source


def test_receiver_refuses_bad_requests(bus, receiver: Receiver) -> None:  # type: ignore[no-untyped-def]
    sub = bus.subscriber()
    good = json.dumps(push_payload()).encode()
    assert receiver.post(good, token="wrong").status_code == 401
    assert receiver.post(good, token=TOKEN + "x").status_code == 401
    assert receiver.post(good, token=None).status_code == 401
    malformed = receiver.post(b'{"object_kind": "push", "before": ')
    assert malformed.status_code == 400 and "malformed JSON" in malformed.text
    oversized = receiver.post(b" " * 70000 + good)
    assert oversized.status_code == 413
    not_a_push = receiver.post(json.dumps({**push_payload(), "after": "zzz"}).encode())
    assert not_a_push.status_code == 400 and "object id" in not_a_push.text
    ignored = receiver.post(json.dumps({"object_kind": "merge_request"}).encode(), event="Merge Request Hook")
    assert ignored.status_code == 200 and "ignored" in ignored.text
    assert sub.wait(1, timeout=1.5) == []
    # The two bad payloads that came with the right token are kept with their reason.
    reasons = sorted(p.read_text() for p in receiver.rejected.glob("*.reason"))
    assert len(reasons) == 2 and any(r.startswith("not JSON") for r in reasons)
    assert receiver.post(good).status_code == 200 and len(sub.wait(3)) == 3


def test_upstream_import_is_shortened_to_what_the_bus_takes() -> None:
    from debpulse.adapters.scm.push import MAX_FILES, MAX_MESSAGE_CHARS
    from debpulse.emitters import envelope as env

    payload = push_payload()
    payload["commits"][1]["added"] = [f"upstream/dir{d:03}/file-{f:03}.c" for d in range(145) for f in range(100)]
    payload["commits"][1]["message"] = "New upstream version 1.0\n\n" + "x" * (2 * MAX_MESSAGE_CHARS)
    events = gitlab_events(payload)
    commit = events[2].body["commit"]
    assert commit["stats"]["total"]["files"] == 14501 and len(commit["stats"]["files"]) == MAX_FILES
    assert commit["stats"]["files_omitted"] == 14501 - MAX_FILES
    assert commit["message_truncated"] is True and len(commit["message"]) == MAX_MESSAGE_CHARS
    message_type(events[2].topic).validate(events[2].body)
    assert len(env.body_text(events[2].body)) < env.MAX_BODY_BYTES
