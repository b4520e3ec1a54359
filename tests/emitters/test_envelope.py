"""The wire format, on frames captured from real fedmsg 1.1.7."""

from __future__ import annotations

import json

import pytest

from debpulse.emitters import envelope as env


def frames(fixtures, name):
    base = fixtures / "fedmsg" / name
    return [base.with_name(name + ".frame0.bin").read_bytes(), base.with_name(name + ".frame1.bin").read_bytes()]


@pytest.mark.parametrize("name", [
    "unsigned-direct-1", "unsigned-direct-2", "unsigned-via-relay-1", "unsigned-via-relay-2",
    "unsigned-via-relay-3", "gpg-signed-direct-1", "gpg-signed-direct-2", "gpg-signed-via-relay-1",
    "gpg-signed-via-relay-2",
])
def test_real_fedmsg_frames_parse(shared_fixtures, name):
    envelope = env.from_frames(frames(shared_fixtures, name))
    assert envelope["topic"].startswith("org.debian.dev.")
    assert envelope["msg_id"].startswith("2026-")
    assert isinstance(envelope["msg"], dict)


def test_canonical_is_fedmsgs_encoding(shared_fixtures):
    # A direct capture is exactly fedmsg's canonical JSON: re-encoding gives the same bytes.
    raw = frames(shared_fixtures, "unsigned-direct-2")[1]
    assert env.canonical(json.loads(raw)) == raw


def test_relay_reserialised_frames_canonicalise_to_the_same_signed_data(shared_fixtures):
    direct = env.from_frames(frames(shared_fixtures, "gpg-signed-direct-1"))
    data = (shared_fixtures / "fedmsg" / "gpg-signed-direct-1.signed-data.txt").read_bytes()
    assert env.signed_data(direct, env.SCOPE_FEDMSG) == data


def test_build_sign_round_trip():
    e = env.build(topic="org.debian.dev.logger.log", msg={"log": "ü"}, msg_id=env.new_msg_id(), i=1,
                  username="u", extra={"seq_id": 3})
    env.attach_signature(e, b"\x01\x02", env.SCOPE_ENVELOPE)
    parsed = env.from_frames(env.to_frames(e))
    assert parsed == e
    assert env.signature_of(parsed) == (env.SCOPE_ENVELOPE, b"\x01\x02")
    # The envelope scope covers everything but the signature itself.
    covered = json.loads(env.signed_data(parsed, env.SCOPE_ENVELOPE))
    assert set(covered) == set(e) - {"signature", "crypto"}


def test_msg_id_from_key_is_stable_and_fedmsg_shaped():
    a, b = env.new_msg_id("dak:hello_1.0_source.changes:accept:unstable"), env.new_msg_id(
        "dak:hello_1.0_source.changes:accept:unstable")
    assert a == b and a[:4].isdigit() and a[4] == "-" and len(a) == 41
    assert env.new_msg_id() != env.new_msg_id()


GOOD = env.canonical({"topic": "t.a", "msg": {}, "timestamp": 1, "msg_id": "x"})


@pytest.mark.parametrize("frames_, reason", [
    ([b"t.a"], "frame-count"),
    ([b"t.a", GOOD, b"x"], "frame-count"),
    ([b"\xff", GOOD], "bad-utf8"),
    ([b"t.a", b"\xff\xfe"], "bad-utf8"),
    ([b"t.a", b"{not json"], "not-json"),
    ([b"t.a", b"[1,2]"], "not-an-object"),
    ([b"t.a", b'{"topic":"t.a","msg":{}}'], "missing-keys"),
    ([b"t.b", GOOD], "topic-mismatch"),
    ([b"t.a", b'{"topic":"t.a","msg":{},"timestamp":"now","msg_id":"x"}'], "bad-types"),
    ([b"t.a", b'{"topic":"t.a","msg":{},"timestamp":1,"msg_id":"x","seq_id":0}'], "bad-types"),
    ([b"t.a", b'{"x":"' + b"a" * (env.MAX_FRAME_BYTES + 1) + b'"}'], "oversized"),
])
def test_malformed_frames_have_a_reason(frames_, reason):
    with pytest.raises(env.MalformedFrame) as exc:
        env.from_frames(frames_)
    assert exc.value.reason == reason


def test_encode_with_the_body_text_is_canonical():
    e = env.build(topic="t.a", msg={"z": [1, {"b": "ü", "a": None}], "a": 1.5}, msg_id="x", i=1, username="u",
                  extra={"seq_id": 2, "publisher": "p\"q"})
    msg_json = env.canonical(e["msg"]).decode()
    assert env.encode(e, msg_json) == env.canonical(e)
    assert env.signed_data(e, env.SCOPE_ENVELOPE, msg_json) == env.signed_data(e, env.SCOPE_ENVELOPE)
    assert env.signed_data(e, env.SCOPE_FEDMSG, msg_json) == env.canonical(e["msg"])
