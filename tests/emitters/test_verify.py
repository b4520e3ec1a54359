"""Every rejection reason, each with a message built to trigger it, and the
real fedmsg fixtures (signed, tampered, topic-swapped)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from debpulse.emitters import envelope as env
from debpulse.emitters.policy import Policy
from debpulse.emitters.signing import GnuPGKeyring, SequoiaKeyring, SequoiaSigner
from debpulse.emitters.verify import Verifier

TOPIC = "org.debian.dev.dak.package.accept"


def signed(key, *, topic=TOPIC, scope=env.SCOPE_ENVELOPE, msg=None, timestamp=None, msg_id=None):
    e = env.build(topic=topic, msg=msg or {"source": "hello"}, msg_id=msg_id or env.new_msg_id(), i=1,
                  username="test", timestamp=timestamp, extra={"seq_id": 1, "publisher": "p"})
    sig = SequoiaSigner.from_file(key.secret_file).sign(env.signed_data(e, scope))
    return env.attach_signature(e, sig, scope)


@pytest.fixture
def verifier(gpg_key):
    return Verifier(SequoiaKeyring.from_files([gpg_key.public_file]))


def test_good_message_reports_scope_and_signer(verifier, gpg_key):
    v = verifier.check(signed(gpg_key))
    assert (v.ok, v.scope, v.signer) == (True, "envelope", gpg_key.fingerprint)


def test_unsigned(verifier):
    e = env.build(topic=TOPIC, msg={}, msg_id=env.new_msg_id(), i=1, username="u")
    assert verifier.check(e).reason == "unsigned"


def test_bad_signature(verifier, gpg_key):
    e = signed(gpg_key)
    e["msg"]["source"] = "evil"
    assert verifier.check(e).reason == "bad-signature"


def test_unknown_key(verifier, rsa_key):
    assert verifier.check(signed(rsa_key)).reason == "unknown-key"


def test_topic_not_allowed_for_that_key(gpg_key, rsa_key):
    policy = Policy.from_tables(
        [{"fingerprint": gpg_key.fingerprint, "topics": ["org.debian.*.git.#"]},
         {"fingerprint": rsa_key.fingerprint, "topics": ["org.debian.*.dak.#"]}], "test")
    v = Verifier(SequoiaKeyring.from_files([gpg_key.public_file, rsa_key.public_file]), policy)
    assert v.check(signed(gpg_key)).reason == "topic-not-allowed"
    assert v.check(signed(gpg_key, topic="org.debian.dev.git.receive")).ok
    assert v.check(signed(rsa_key)).ok


def test_duplicate_msg_id(verifier, gpg_key):
    e = signed(gpg_key)
    assert verifier.check(e).ok
    assert verifier.check(json.loads(json.dumps(e))).reason == "duplicate-msg-id"


def test_timestamp_outside_window(verifier, gpg_key):
    assert verifier.check(signed(gpg_key, timestamp=time.time() - 3600)).reason == "timestamp-outside-window"
    assert verifier.check(signed(gpg_key, timestamp=time.time() + 3600)).reason == "timestamp-outside-window"
    # A replayed message is old by nature: its order is checked by seq_id instead.
    assert verifier.check(signed(gpg_key, timestamp=time.time() - 3600), replayed=True).ok


def test_fedmsg_scope_is_refused_unless_accepted(gpg_key):
    e = signed(gpg_key, scope=env.SCOPE_FEDMSG)
    strict = Verifier(SequoiaKeyring.from_files([gpg_key.public_file]))
    assert strict.check(e).reason == "scope-not-accepted"
    lax = Verifier(SequoiaKeyring.from_files([gpg_key.public_file]), scopes=("envelope", "fedmsg"))
    v = lax.check(e)
    assert (v.ok, v.scope) == (True, "fedmsg")


def test_malformed_signature_field(verifier):
    e = env.build(topic=TOPIC, msg={}, msg_id=env.new_msg_id(), i=1, username="u")
    e.update(crypto="x509", signature="AAAA")
    assert verifier.check(e).reason == "malformed"
    e.update(crypto="openpgp-envelope", signature="*** not base64 ***")
    assert verifier.check(e).reason == "malformed"


# -- real fedmsg 1.1.7 messages ------------------------------------------------


@pytest.fixture(scope="module")
def fedmsg_gnupg_home(shared_fixtures):
    """A GnuPG home holding fedmsg's test keys; its agent is ended after."""
    home = tempfile.mkdtemp(prefix="gh-", dir="/tmp")
    env = {**os.environ, "GNUPGHOME": home}
    subprocess.run(["gpg", "--batch", "--import", str(shared_fixtures / "fedmsg" / "test-pubkeys.asc")], env=env,
                   capture_output=True, check=True)
    yield home
    subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, capture_output=True)
    shutil.rmtree(home, ignore_errors=True)


def fedmsg_verifier(fixtures, gnupg_home=None):
    """A verifier for fedmsg's test keys, in-process or with gpg (gnupg_home)."""
    if gnupg_home:
        ring = GnuPGKeyring(gnupg_home)
    else:
        ring = SequoiaKeyring.from_files([fixtures / "fedmsg" / "test-pubkeys.asc"])
    # Captured in the past: the window does not apply to these fixtures.
    return Verifier(ring, scopes=("envelope", "fedmsg"), window=0)


def load(fixtures, name):
    if name.endswith(".json"):
        return json.loads((fixtures / "fedmsg" / name).read_text())
    d = fixtures / "fedmsg"
    return env.from_frames([(d / f"{name}.frame0.bin").read_bytes(), (d / f"{name}.frame1.bin").read_bytes()])


@pytest.mark.parametrize("backend", ["sequoia", "gnupg"])
@pytest.mark.parametrize("name", ["gpg-signed-direct-1", "gpg-signed-direct-2", "gpg-signed-via-relay-1",
                                  "gpg-signed-via-relay-2"])
def test_real_fedmsg_signatures_verify(shared_fixtures, name, backend, request):
    home = request.getfixturevalue("fedmsg_gnupg_home") if backend == "gnupg" else None
    v = fedmsg_verifier(shared_fixtures, home).check(load(shared_fixtures, name))
    assert (v.ok, v.scope, v.signer) == (True, "fedmsg", "45248F2FD2A2DB545A7A4875DB6FD215362C18D4")


def test_tampered_fixture_is_rejected(shared_fixtures):
    assert fedmsg_verifier(shared_fixtures).check(load(shared_fixtures, "tampered.json")).reason == "bad-signature"


def test_topic_swapped_fixture_passes_fedmsg_scope_but_not_envelope_scope(shared_fixtures):
    swapped = load(shared_fixtures, "topic-swapped.json")
    # What fedmsg does: the signature covers msg only, so the swap goes unnoticed.
    assert fedmsg_verifier(shared_fixtures).check(swapped).ok
    # debpulse's default: only envelope-scope signatures count ...
    strict = Verifier(SequoiaKeyring.from_files([shared_fixtures / "fedmsg" / "test-pubkeys.asc"]), window=0)
    assert strict.check(swapped).reason == "scope-not-accepted"
    # ... and that signature checked over the envelope (with its swapped topic) fails.
    _, sig = env.signature_of(swapped)
    ring = SequoiaKeyring.from_files([shared_fixtures / "fedmsg" / "test-pubkeys.asc"])
    from debpulse.emitters.signing import BadSignature

    with pytest.raises(BadSignature):
        ring.verify(env.signed_data(swapped, env.SCOPE_ENVELOPE), sig)


def test_unsigned_real_fedmsg_is_reported_unsigned(shared_fixtures):
    assert fedmsg_verifier(shared_fixtures).check(load(shared_fixtures, "unsigned-direct-1")).reason == "unsigned"


@pytest.mark.parametrize("processes", [1, 2])
def test_a_burst_checked_together_gives_each_message_its_own_verdict(gpg_key, rsa_key, processes):
    """prepare() checks a burst's signatures at once (in two processes with
    processes = 2); each answer serves only the envelope it was made for:
    a copy carrying the same signature over other content is checked
    afresh, and every rejection keeps its reason."""
    keyring = SequoiaKeyring.from_files([gpg_key.public_file])
    keyring.processes = processes
    verifier = Verifier(keyring, scopes=(env.SCOPE_ENVELOPE,))
    burst = [signed(gpg_key, msg={"n": n}) for n in range(20)]
    tampered = dict(burst[5], msg={"n": "changed"})
    stranger = signed(rsa_key, msg={"n": "stranger"})
    fedmsg_scope = signed(gpg_key, scope=env.SCOPE_FEDMSG)
    burst[5], burst[12] = tampered, stranger
    burst.append(fedmsg_scope)
    try:
        verifier.prepare(burst)
        # The fedmsg-scope one is not for this verifier; one process checks each as it comes.
        assert len(verifier._prepared) == (20 if processes == 2 else 0)
        copy = dict(burst[0], msg={"n": "a copy under the same signature"}, msg_id=env.new_msg_id())
        assert verifier.check(copy).reason == "bad-signature"
        verdicts = [verifier.check(e) for e in burst]
        assert [v.reason for v in verdicts] == (
            ["ok"] * 5 + ["bad-signature"] + ["ok"] * 6 + ["unknown-key"] + ["ok"] * 7 + ["scope-not-accepted"])
        assert {v.signer for v in verdicts if v.ok} == {gpg_key.fingerprint}
        assert (keyring._halves.helper is not None) == (processes == 2)
        # Each answer is used once: the same envelope again is a duplicate, not a free pass.
        assert verifier.check(burst[0]).reason == "duplicate-msg-id"
        assert not verifier._prepared or all(id(e) != id(burst[0]) for e, _ in verifier._prepared.values())
    finally:
        keyring.close()


# -- hostile bursts: checked together, in two processes, each gets the verdict it gets alone

_MUTATIONS = ("good", "content", "signature-bytes", "signature-cut", "signature-b64", "stranger", "unsigned",
              "crypto", "swap")


@pytest.fixture(scope="module")
def signers(gpg_key, rsa_key):
    return SequoiaSigner.from_file(gpg_key.secret_file), SequoiaSigner.from_file(rsa_key.secret_file)


@pytest.fixture(scope="module")
def two_process_keyring(gpg_key):
    keyring = SequoiaKeyring.from_files([gpg_key.public_file])
    keyring.processes = 2
    yield keyring
    keyring.close()


def _mutated(kind: str, n: int, noise: bytes, signers):  # type: ignore[no-untyped-def]
    import base64

    mine, stranger = signers
    e = env.build(topic=TOPIC, msg={"n": n}, msg_id=env.new_msg_id(), i=n, username="t",
                  extra={"seq_id": n + 1, "publisher": "p"})
    signer = stranger if kind == "stranger" else mine
    env.attach_signature(e, signer.sign(env.signed_data(e, "envelope")), "envelope")
    raw = base64.b64decode(e["signature"])
    if kind == "content":
        e["msg"] = {"n": n, "added": noise.hex()}
    elif kind == "signature-bytes":
        at = noise[0] % len(raw) if noise else 0
        raw = raw[:at] + bytes([raw[at] ^ (noise[-1] | 1 if noise else 1)]) + raw[at + 1:]
        e["signature"] = base64.b64encode(raw).decode()
    elif kind == "signature-cut":
        e["signature"] = base64.b64encode(raw[:len(noise) % len(raw)] + noise).decode()
    elif kind == "signature-b64":
        e["signature"] = "not base64 " + noise.hex()
    elif kind == "unsigned":
        del e["signature"], e["crypto"]
    elif kind == "crypto":
        e["crypto"] = noise.hex() or "x"
    return e


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(_MUTATIONS), st.binary(max_size=40)), min_size=8, max_size=40))
def test_hostile_bursts_get_the_verdicts_each_gets_alone(gpg_key, signers, two_process_keyring, burst):
    envelopes: list[dict] = []
    # Eight good ones first: enough for the helper to take the second half,
    # where most of the hostile ones fall.
    kinds = [("good", b"")] * 8 + burst
    for n, (kind, noise) in enumerate(kinds):
        envelopes.append(_mutated(kind, n, noise, signers))
    for n, (kind, _) in enumerate(kinds[:-1]):
        if kind == "swap" and "signature" in envelopes[n + 1]:
            # A genuine signature over the next message, checked before it.
            envelopes[n]["signature"] = envelopes[n + 1]["signature"]
    alone = Verifier(SequoiaKeyring.from_files([gpg_key.public_file]), window=0)
    expected = [(v.reason, v.detail) for v in map(alone.check, envelopes)]
    together = Verifier(two_process_keyring, window=0)
    together.prepare(envelopes)
    assert [(v.reason, v.detail) for v in map(together.check, envelopes)] == expected
    assert two_process_keyring._halves.helper is not None  # the helper took its half and is still there
