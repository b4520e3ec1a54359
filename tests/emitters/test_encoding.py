"""The fast paths give the reference's answers: orjson's canonical bytes are
the standard library's (fedmsg's encoding, what signatures cover) byte for
byte, its decoding gives the same values and the same refusals, the
envelope the publisher writes from pieces is the canonical envelope, and
the compiled body schemas accept and refuse what jsonschema does.

Checked over every fixture (fedmsg captures, the adapters' real events)
and over generated values: non-ASCII, control characters, floats, big
integers, nesting up to and past the limits.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import pytest
from bridge.samples import git_events
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from debpulse.adapters.dak.changes import parse_changes
from debpulse.adapters.dak.events import accepted
from debpulse.adapters.dak.mail import parse_mail as parse_dak_mail
from debpulse.adapters.debbugs.mail import parse_mail as parse_debbugs_mail
from debpulse.adapters.wannabuild.rows import BuildResult, Transaction, row_event
from debpulse.emitters import envelope as env
from debpulse.emitters.config import Config
from debpulse.emitters.event import Event
from debpulse.emitters.messages import _compiled, _validator, load_message_types, message_type
from debpulse.emitters.options import BusOptions
from debpulse.emitters.publisher import Publisher
from debpulse.emitters.signing import SequoiaSigner

# -- values ---------------------------------------------------------------------

# Characters each encoder treats specially: controls (short and \u forms),
# DEL (the reference escapes it, orjson does not), the quote and backslash,
# past ASCII, past the BMP (a surrogate pair), and a lone surrogate (which
# orjson refuses).
SPECIAL = st.sampled_from(["\x00", "\x08", "\x1a", "\x1f", "\x7f", '"', "\\", "/", "\u00e9", "\u0142", "\u2028",
                           "\uffff", "\U0001f600", "\ud800", "\udfff"])
TEXT = st.text(st.one_of(st.characters(), SPECIAL), max_size=20)
SCALARS = st.one_of(
    st.none(), st.booleans(), TEXT,
    st.integers(),                                            # past 64 bits too
    st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**19, -(10**30)]),
    st.floats(),                                              # NaN and the infinities too
    st.sampled_from([0.0, -0.0, 1e16, 1e-5, 1e22, 1.5, 123456789.123, 5e-324, 1.7976931348623157e308]),
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(TEXT, inner, max_size=4)), max_leaves=30)
# What orjson is trusted with (no floats, no lone surrogates, 64-bit
# integers), so that its own path, not the fallback, meets the odd characters.
PLAIN_TEXT = st.one_of(
    st.text(st.characters(max_codepoint=127), max_size=20),  # ASCII alone: orjson's bytes are used as they are
    st.text(st.one_of(st.characters(), SPECIAL.filter(lambda c: not "\ud800" <= c <= "\udfff")), max_size=20))
PLAIN = st.recursive(
    st.one_of(st.none(), st.booleans(), PLAIN_TEXT, st.integers(-(2**63), 2**64 - 1)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(PLAIN_TEXT, inner, max_size=4)),
    max_leaves=30)


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for n in range(depth):
        value = {"a": value} if n % 2 else [value]
    return value


DEEP = st.integers(min_value=1, max_value=300).map(nested)


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (1 is not 1.0 nor True)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


def reference(value: Any) -> bytes | type[BaseException]:
    try:
        return env.reference_canonical(value)
    except (ValueError, TypeError, RecursionError, UnicodeEncodeError) as exc:
        return type(exc)


def fast(value: Any) -> bytes | type[BaseException]:
    try:
        return env.canonical(value)
    except (ValueError, TypeError, RecursionError, UnicodeEncodeError) as exc:
        return type(exc)


# -- the real events and envelopes ----------------------------------------------------


@pytest.fixture(scope="module")
def real_events(shared_fixtures: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Event]:
    events: list[Event] = []
    for mail in sorted((shared_fixtures / "dak" / "mails").iterdir()):
        events += parse_dak_mail(mail.read_bytes()).events
    for changes in sorted((shared_fixtures / "dak" / "changes").iterdir()):
        events.append(accepted(parse_changes(changes.read_bytes()), changes.name, "unstable", route="queue"))
    for mail in sorted((shared_fixtures / "debbugs" / "mails").iterdir()):
        events += parse_debbugs_mail(mail.read_bytes()).events
    events += git_events(shared_fixtures, tmp_path_factory.mktemp("git"), max_commits=50)
    from datetime import UTC, datetime

    when = datetime(2024, 12, 2, 14, 0, 0, 123456)
    events.append(row_event(Transaction, "amd64", (when, b"h\xc3\xa9llo", b"sid", b"2.10-3", b"--set-built",
                                                   b"Building", b"Built", b"buildd", b"buildd_amd64",
                                                   when.replace(tzinfo=UTC)), "d", 0))
    events.append(row_event(BuildResult, "amd64", (when, b"hello", b"sid", b"2.10-3", b"successful", 151,
                                                   123456789, b"buildd_amd64", when.replace(tzinfo=UTC)), "x", 0))
    topics = {e.topic for e in events}
    assert {"dak.package.accept", "debbugs.bug.followup", "git.receive",
            "wannabuild.package.build.complete"} <= topics, topics
    return events


def fedmsg_envelopes(fixtures: Path) -> list[Any]:
    return [json.loads(p.read_bytes()) for p in sorted((fixtures / "fedmsg").glob("*.frame1.bin"))]


def test_canonical_bytes_of_every_fixture_are_the_references(shared_fixtures, real_events):
    values: list[Any] = fedmsg_envelopes(shared_fixtures)
    values += [v["msg"] for v in values]
    values += [e.body for e in real_events]
    assert len(values) > 40
    for value in values:
        assert env.canonical(value) == env.reference_canonical(value)
    for event in real_events:
        assert env.body_bytes(event.body) == env.reference_canonical(event.body)


def test_decoding_every_fixture_gives_the_references_values(shared_fixtures):
    for path in sorted((shared_fixtures / "fedmsg").glob("*.frame1.bin")):
        raw = path.read_bytes()
        assert same(env.loads(raw), json.loads(raw))


@pytest.mark.parametrize("scope", ["none", "envelope", "fedmsg"])
def test_the_publishers_envelope_is_the_canonical_envelope(scope, gpg_key, real_events, tmp_path):
    """The wire bytes the publisher writes from pieces, for every real event."""
    pub = publisher(tmp_path, gpg_key, scope, name="pub-\u0142-\u00e9")
    try:
        stored = pub.store(real_events)
        # An ACCEPTED mail and its queue file report one upload: one message.
        assert sum(new for _, _, new in stored) == len({e.key or n for n, e in enumerate(real_events)})
        for envelope, wire, _ in stored:
            assert wire == env.reference_canonical(envelope)
            assert same(json.loads(wire), envelope)
            if scope != "none":
                signed = env.signed_data(json.loads(wire), scope)
                assert signed == (env.reference_canonical(envelope["msg"]) if scope == "fedmsg" else
                                  env.reference_canonical({k: v for k, v in envelope.items()
                                                           if k not in env.UNSIGNED_KEYS}))
    finally:
        pub.close()


def publisher(tmp_path: Path, key: Any, scope: str, name: str = "p") -> Publisher:
    args = argparse.Namespace(publish=f"ipc://{tmp_path}/pub.sock", signing_key=str(key.secret_file),
                              state_dir=str(tmp_path / "state"))
    opts = BusOptions.from_args(args, Config(), name=name)
    opts.scope, opts.username = scope, "us\u00e9r \"q\"\x7f"
    return Publisher(opts, signer=None if scope == "none" else SequoiaSigner.from_file(key.secret_file))


# -- generated values -----------------------------------------------------------------


@settings(max_examples=600, deadline=None)
@given(st.one_of(VALUES, PLAIN, DEEP))
def test_canonical_bytes_are_the_references(value):
    assert fast(value) == reference(value)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.dictionaries(TEXT, VALUES, max_size=6), st.dictionaries(PLAIN_TEXT, PLAIN, max_size=6),
                 DEEP.map(lambda v: {"v": v})))
def test_body_bytes_are_the_references_or_a_clear_refusal(body):
    try:
        out = env.body_bytes(body)
    except env.MalformedFrame as exc:
        assert exc.reason in ("too-deep", "not-json"), exc
        assert exc.reason == "not-json" or env.too_deep(body)
        assert exc.reason == "too-deep" or isinstance(reference(body), type)
    else:
        assert not env.too_deep(body)
        assert out == reference(body)


def reference_loads(text: bytes) -> Any:
    try:
        return env._reference_loads(text, "JSON")
    except env.MalformedFrame as exc:
        return exc.reason


def fast_loads(text: bytes) -> Any:
    try:
        return env.loads(text)
    except env.MalformedFrame as exc:
        return exc.reason


def texts_of(value: Any) -> st.SearchStrategy[bytes]:
    """Ways to write `value` as JSON that others write: spaced, escaped or not."""
    def write(ascii_: bool, spaced: bool) -> bytes:
        try:
            return json.dumps(value, ensure_ascii=ascii_, separators=(", ", ": ") if spaced else (",", ":"),
                              allow_nan=True).encode("utf-8", "surrogatepass")
        except (ValueError, RecursionError):
            return b"[]"
    return st.builds(write, st.booleans(), st.booleans())


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.one_of(VALUES, PLAIN, DEEP).flatmap(texts_of),
    st.binary(max_size=60),
    st.lists(st.sampled_from([b"{", b"}", b"[", b"]", b'"a"', b":", b",", b"1", b"-0", b"1e400", b"NaN", b"Infinity",
                              b"18446744073709551616", b"-9223372036854775809", b"1.5", b"true", b"null", b" ",
                              b'"\\ud800"', b'"\\u00e9"', b"\xc3\xa9", b"\xff", b"\xef\xbb\xbf"]), max_size=30)
    .map(b"".join),
))
def test_decoding_gives_the_references_values_and_refusals(text):
    assert same(fast_loads(text), reference_loads(text))


def test_hostile_texts_are_refused_the_same_way():
    for text in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 1500 + b"1" + b"}" * 1500,
                 b'{"a":' * 65 + b"1" + b"}" * 65, b"1" + b"0" * 5000, b"[" + b"9" * 40 + b"]", b"[1e400]",
                 b'{"t":NaN}', b"\xff\xfe", b'"\\ud800"'):
        assert same(fast_loads(text), reference_loads(text)), text[:40]


# -- schemas ----------------------------------------------------------------------------


def schema_answers(topic: str, body: Any) -> tuple[bool, bool]:
    cls = message_type(topic)
    try:
        _compiled(cls)(body)
        compiled = True
    except Exception:
        compiled = False
    return compiled, _validator(cls).is_valid(body)


def test_compiled_schemas_answer_as_jsonschema_on_real_events(real_events):
    for event in real_events:
        assert schema_answers(event.topic, event.body) == (True, True), event.topic


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_compiled_schemas_answer_as_jsonschema_on_mutated_bodies(real_events, data):
    """Every registered type: its real bodies with a field dropped, replaced
    by another value, given a new field, or a body made of nothing real."""
    load_message_types()
    from debpulse.emitters.messages import _REGISTRY

    topic = data.draw(st.sampled_from(sorted(_REGISTRY)))
    bases = [e.body for e in real_events if e.topic == topic] or [{}]
    body = dict(data.draw(st.sampled_from(bases)))
    how = data.draw(st.sampled_from(["drop", "replace", "add", "item", "generated"]))
    mutant_value = data.draw(st.one_of(VALUES, st.sampled_from([1.0, 2.5, -1, 0, True, "", "x", [], {}, None,
                                                                  "0" * 64, "A" * 40, "a.changes", ["x"], [1]])))
    if how == "drop" and body:
        body.pop(data.draw(st.sampled_from(sorted(body))))
    elif how == "replace" and body:
        body[data.draw(st.sampled_from(sorted(body)))] = mutant_value
    elif how == "item" and any(isinstance(v, list) and v for v in body.values()):
        key = data.draw(st.sampled_from(sorted(k for k, v in body.items() if isinstance(v, list) and v)))
        items = list(body[key])
        items[data.draw(st.integers(0, len(items) - 1))] = mutant_value
        body[key] = items
    elif how == "generated":
        body = data.draw(st.dictionaries(st.sampled_from([*sorted(body), "x"]), VALUES, max_size=8))
    else:
        body[data.draw(TEXT)] = mutant_value
    compiled, reference_answer = schema_answers(topic, body)
    assert compiled == reference_answer, (topic, body)
    # And the one entry point: a refusal is jsonschema's, with its message.
    try:
        message_type(topic).validate(body)
        accepted = True
    except Exception:
        accepted = False
    assert accepted == reference_answer


@settings(max_examples=200, deadline=None)
@given(TEXT.filter(bool).filter(lambda k: not any("\ud800" <= c <= "\udfff" for c in k)))
def test_msg_ids_are_still_the_uuids_they_were(key):
    """Made by hand now: uuid5 of the idempotency key, or a random uuid4."""
    import uuid

    assert env.new_msg_id(key, 1_700_000_000) == f"2023-{uuid.uuid5(env._MSG_ID_NS, key)}"
    random_id = uuid.UUID(env.new_msg_id(now=1_704_067_200)[5:])
    assert (random_id.version, random_id.variant) == (4, uuid.RFC_4122)
    assert env.new_msg_id(now=1_704_067_199.9).startswith("2023-")
