"""Inputs the fuzzer (tests/fuzz) found that made the git parsers fail in a
way other than InputError, or return events the Emitter refuses; each is
the smallest such input, and now gives InputError."""

from __future__ import annotations

import json
from typing import Any

import pytest

from debpulse.adapters.scm import messages  # noqa: F401  (registers the types)
from debpulse.adapters.scm.gitobjects import parse_commit
from debpulse.adapters.scm.refs import parse
from debpulse.adapters.scm.webhook import decode_body, gitlab_events
from debpulse.emitters.errors import InputError
from debpulse.emitters.messages import message_type

from .test_webhook import Receiver, receiver  # noqa: F401  (the real `debpulse-git webhook` as a fixture)

A, B = "a7e336ab45d3934e789c412e0ec08763ef7ea06c", "93ba66dd334cba69476228a1d85c3bdc4290798b"
ZERO = "0" * 40
PROJECT = {"path_with_namespace": "debian/hello", "web_url": "https://salsa.debian.org/debian/hello"}


def _push(**fields: Any) -> dict[str, Any]:
    return {"object_kind": "push", "before": A, "after": B, "ref": "refs/heads/master", "project": PROJECT,
            "user_username": "jane", "commits": [], **fields}


@pytest.mark.parametrize("kind", [[], {}])
def test_an_object_kind_that_is_not_a_string(kind: Any) -> None:
    # was: TypeError (unhashable type) from `kind not in KINDS`
    with pytest.raises(InputError, match="is not a push"):
        gitlab_events(_push(object_kind=kind))


@pytest.mark.parametrize("ref", ["refs/heads/", "refs/tags/"])
def test_a_ref_without_a_name(ref: str) -> None:
    # was: events whose name (or tag) is "", which the Emitter refuses
    with pytest.raises(InputError, match="not a ref name"):
        gitlab_events(_push(ref=ref))
    with pytest.raises(InputError, match="not a ref name"):
        parse(f"{A} {B} {ref}\n".encode())


def test_a_tag_push_for_a_branch() -> None:
    # was: a git.tag.create whose ref is refs/heads/..., which the Emitter refuses
    with pytest.raises(InputError, match="which is not a tag"):
        gitlab_events(_push(object_kind="tag_push", before=ZERO, ref="refs/heads/master"))


@pytest.mark.parametrize("fields", [{"ref": "refs/heads/\ud800"},
                                    {"commits": [{"id": B[:36] + "\ud800" + B[36:], "message": "m",
                                                  "author": {"name": "Jane", "email": "jane@example.org"}}]}])
def test_a_lone_surrogate_where_an_id_or_ref_goes(fields: dict[str, Any]) -> None:
    # was: UnicodeEncodeError (JSON's "\ud800" decodes to a lone surrogate, which UTF-8 cannot encode)
    with pytest.raises(InputError, match="not text|not an object id"):
        gitlab_events(decode_body(json.dumps(_push(**fields)).encode()))


def test_changed_paths_that_are_not_a_list() -> None:
    # was: TypeError ('int' object is not iterable)
    commit = {"id": B, "message": "m", "author": {"name": "Jane", "email": "jane@example.org"}, "added": 1}
    with pytest.raises(InputError, match=r"commits\[0\].added is not a list"):
        gitlab_events(_push(commits=[commit]))


def test_a_deeply_nested_body() -> None:
    # was: RecursionError from json.loads
    with pytest.raises(InputError, match="nested too deeply"):
        decode_body(b"[" * 100_000)


@pytest.mark.parametrize("encoding", [b"x\x00y", b"undefined"])
def test_a_commit_that_declares_an_encoding_python_cannot_use(encoding: bytes) -> None:
    # was: ValueError (a NUL in the codec name) and UnicodeError (a codec that refuses everything)
    raw = (b"tree " + A.encode() + b"\nauthor J\xc3\xa9 <j@example.org> 1 +0000\nencoding " + encoding
           + b"\n\nm\xc3\xa9\n")
    commit = parse_commit(B, raw)
    assert (commit.author.name, commit.message) == ("J\u00e9", "m\u00e9\n")


def test_a_good_push_still_gives_events() -> None:
    commit = {"id": B, "message": "m", "author": {"name": "Jane", "email": "jane@example.org"},
              "added": ["a"], "modified": [], "removed": []}
    events = gitlab_events(decode_body(json.dumps(_push(commits=[commit])).encode()))
    assert [e.topic for e in events] == ["git.ref.update", "git.receive"]
    for event in events:
        message_type(event.topic).validate(event.body)


def test_the_receiver_answers_an_object_kind_that_is_not_a_string(receiver: Receiver) -> None:  # noqa: F811
    # was: TypeError in the request handler, which dropped the connection without an answer
    answer = receiver.post(b'{"object_kind": []}')
    assert answer.status_code == 200 and "ignored" in answer.text
    deep = receiver.post(b"[" * 60_000)
    assert deep.status_code == 400 and "malformed JSON" in deep.text
