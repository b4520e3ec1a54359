"""The pure part of the bridge: a verified bus message -> AMQP routing key,
body and headers, and the signed envelope back from them."""

from __future__ import annotations

import datetime
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from debpulse.consumers.bridge.amqp import ENVELOPE_HEADER, SCHEMA_NAME, envelope_from_amqp, to_amqp
from debpulse.emitters import envelope as env
from debpulse.emitters.signing import SequoiaKeyring, SequoiaSigner
from debpulse.emitters.subscriber import Received
from debpulse.emitters.topics import full_topic
from debpulse.emitters.verify import Verifier

from .samples import dak_events, debbugs_events


def received(key, event, seq_id: int = 7) -> Received:  # type: ignore[no-untyped-def]
    """What the subscriber hands over: a signed envelope and its verdict."""
    e = env.build(topic=full_topic("dev", event.topic), msg=event.body, msg_id=env.new_msg_id(event.key), i=3,
                  username="dak", timestamp=1_600_000_000,
                  extra={"seq_id": seq_id, "publisher": "dak@ftp-master", "replay": "tcp://127.0.0.1:9941"})
    e = env.attach_signature(e, SequoiaSigner.from_file(key.secret_file).sign(env.signed_data(e, "envelope")),
                             "envelope")
    verdict = Verifier(SequoiaKeyring.from_files([key.public_file])).check(e, replayed=True)
    assert verdict.ok
    return Received(e, verdict)


@pytest.fixture
def accept(gpg_key, shared_fixtures):  # type: ignore[no-untyped-def]
    [event] = dak_events(shared_fixtures)
    return received(gpg_key, event)


def test_routing_key_body_and_fedora_messaging_headers(accept):
    m = to_amqp(accept)
    assert m.routing_key == "org.debian.dev.dak.package.accept"
    assert json.loads(m.body) == accept.body
    assert m.body == env.canonical(accept.body)  # ASCII, so utf-8 is right whatever the names hold
    h = m.headers
    assert h["fedora_messaging_schema"] == SCHEMA_NAME == "base.message"
    assert h["fedora_messaging_severity"] == 20
    assert h["priority"] == 0 == m.priority
    # The time of the event, not of the bridging (a catch-up keeps it).
    assert datetime.datetime.fromisoformat(h["sent-at"]).timestamp() == 1_600_000_000
    assert h["sent-at"].endswith("+00:00")
    assert (m.message_id, m.timestamp, m.delivery_mode) == (accept.msg_id, 1_600_000_000, 2)
    assert (m.content_type, m.content_encoding) == ("application/json", "utf-8")


def test_user_and_package_headers_come_from_the_message_type(accept):
    h = to_amqp(accept).headers
    # The uploader by Debian login, the maintainer (a team) by address.
    assert accept.message.usernames() == ["nathans", "linux-xfs@vger.kernel.org"]
    assert accept.message.packages() == ["xfsprogs"]
    assert h["fedora_messaging_user_nathans"] is True
    assert h["fedora_messaging_rpm_xfsprogs"] is True
    assert [k for k in h if k.startswith(("fedora_messaging_user_", "fedora_messaging_rpm_"))] == [
        "fedora_messaging_user_nathans", "fedora_messaging_user_linux-xfs@vger.kernel.org",
        "fedora_messaging_rpm_xfsprogs"]


def test_a_sender_without_a_debian_account_is_named_by_address(gpg_key, shared_fixtures):
    [event] = debbugs_events(shared_fixtures)
    h = to_amqp(received(gpg_key, event)).headers
    assert [k for k in h if k.startswith("fedora_messaging_user_")] == ["fedora_messaging_user_sandeen@sandeen.net"]
    assert h["fedora_messaging_rpm_xfsprogs"] is True


def test_priority_is_header_and_property(accept):
    m = to_amqp(accept, priority=3)
    assert (m.priority, m.headers["priority"]) == (3, 3)


def test_signed_envelope_comes_back_and_verifies(accept, gpg_key):
    m = to_amqp(accept)
    assert "msg" not in json.loads(m.headers[ENVELOPE_HEADER])  # the body is not sent twice
    back = envelope_from_amqp(m.headers, m.body)
    assert back == accept.envelope
    v = Verifier(SequoiaKeyring.from_files([gpg_key.public_file])).check(back, replayed=True)
    assert (v.ok, v.signer) == (True, gpg_key.fingerprint)


def test_a_body_changed_after_the_bridge_does_not_verify(accept, gpg_key):
    m = to_amqp(accept)
    body = json.loads(m.body)
    body["version"] = "6.6.6-1"
    back = envelope_from_amqp(m.headers, json.dumps(body).encode())
    assert Verifier(SequoiaKeyring.from_files([gpg_key.public_file])).check(back, replayed=True).reason \
        == "bad-signature"


def test_envelope_header_missing_or_broken(accept):
    m = to_amqp(accept)
    with pytest.raises(env.MalformedFrame, match="debpulse_envelope"):
        envelope_from_amqp({}, m.body)
    with pytest.raises(env.MalformedFrame, match="not-json"):
        envelope_from_amqp({ENVELOPE_HEADER: b"{"}, m.body)


def test_names_unfit_for_a_header_key_are_left_out(gpg_key, shared_fixtures):
    [event] = dak_events(shared_fixtures)
    body = {**event.body, "source": "has space"}
    h = to_amqp(received(gpg_key, type(event)(event.topic, body, event.key))).headers
    assert not [k for k in h if k.startswith("fedora_messaging_rpm_")]


# Any body a trusted publisher could have signed and a subscriber accepted:
# JSON at most 64 deep (what the bus takes), any text, any integer size.
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30,
)
_topics = st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=300)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.dictionaries(st.text(max_size=12), _json, max_size=6), topic=_topics)
def test_any_verified_message_is_bridged_or_refused_with_a_reason(gpg_key, body, topic):
    envelope = env.check(env.loads(env.canonical({"topic": topic, "msg": body, "timestamp": 1_600_000_000,
                                                  "msg_id": "2026-x", "i": 1, "username": "u"})))
    item = Received(envelope, Verifier(SequoiaKeyring.from_files([])).check(envelope, replayed=True))
    try:
        m = to_amqp(item)
    except ValueError as exc:
        assert len(topic.encode()) > 255 and "255" in str(exc)
        return
    assert m.routing_key == topic and json.loads(m.body) == body
    back = envelope_from_amqp(m.headers, m.body)
    assert back["msg"] == body and back["topic"] == topic
