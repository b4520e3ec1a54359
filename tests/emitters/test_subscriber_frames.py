"""A subscriber never dies on a bad frame: real sockets, frames built to be
wrong, each dropped with a counted reason, and the good message after them
still delivered."""

from __future__ import annotations

import time

import zmq
from testbus import free_port

from debpulse.emitters import envelope as env
from debpulse.emitters.signing import SequoiaKeyring, SequoiaSigner
from debpulse.emitters.subscriber import Received, Subscriber
from debpulse.emitters.verify import Verifier

TOPIC = b"org.debian.dev.logger.log"


def test_malformed_frames_are_counted_and_the_stream_goes_on(gpg_key):
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    pub = zmq.Context.instance().socket(zmq.PUB)
    pub.bind(endpoint)
    sub = Subscriber([endpoint], verifier=Verifier(SequoiaKeyring.from_files([gpg_key.public_file])),
                     catchup_interval=3600)
    signer = SequoiaSigner.from_file(gpg_key.secret_file)

    def good(n: int) -> list[bytes]:
        e = env.build(topic=TOPIC.decode(), msg={"log": f"good {n}"}, msg_id=env.new_msg_id(), i=n, username="t")
        return env.to_frames(env.attach_signature(e, signer.sign(env.signed_data(e, "envelope")), "envelope"))

    bad = [
        [TOPIC],                                            # one frame
        [TOPIC, b"{}", b"extra"],                           # three frames
        [TOPIC, b"\xff\xfe not utf-8"],
        [TOPIC, b"{not json"],
        [TOPIC, b'{"topic": "org.debian.dev.logger.log"}'],  # missing keys
        [TOPIC, b'{"topic":"org.debian.dev.other","msg":{},"timestamp":1,"msg_id":"x"}'],  # topic mismatch
        [TOPIC, b'{"log":"' + b"x" * (env.MAX_FRAME_BYTES + 10) + b'"}'],  # oversized
    ]
    reasons = ("frame-count", "bad-utf8", "not-json", "missing-keys", "topic-mismatch", "oversized")
    try:
        got: list[Received] = []
        deadline = time.monotonic() + 20
        n = 0
        # Until the SUB socket has joined and a whole round came through: the
        # socket may join between a round's bad frames and its good message.
        while not (got and all(sub.counts.get(r) for r in reasons)) and time.monotonic() < deadline:
            n += 1
            for frames in bad:
                pub.send_multipart(frames)
            pub.send_multipart(good(n))
            item = sub.receive(timeout=0.3)
            while item is not None:
                got.append(item)  # type: ignore[arg-type]
                item = sub.receive(timeout=0.05)
        assert got and all(isinstance(m, Received) and m.verdict.ok for m in got)
        assert all(m.body["log"].startswith("good") for m in got)
        for reason in reasons:
            assert sub.counts.get(reason, 0) >= 1, (reason, sub.counts)
    finally:
        sub.close()
        pub.close(0)


def test_a_burst_checked_in_two_processes_delivers_the_good_and_counts_the_bad(gpg_key):
    """verifying_processes = 2 over a real socket: a queued burst is
    checked together, half in a helper process; the good messages arrive
    in order, the tampered one is counted, and closing the subscriber ends
    the helper."""
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    pub = zmq.Context.instance().socket(zmq.PUB)
    pub.bind(endpoint)
    keyring = SequoiaKeyring.from_files([gpg_key.public_file])
    keyring.processes = 2
    sub = Subscriber([endpoint], verifier=Verifier(keyring), catchup_interval=3600)
    signer = SequoiaSigner.from_file(gpg_key.secret_file)

    def frames(n: int, tamper: bool = False) -> list[bytes]:
        e = env.build(topic=TOPIC.decode(), msg={"log": f"m {n}"}, msg_id=env.new_msg_id(), i=n, username="t")
        e = env.attach_signature(e, signer.sign(env.signed_data(e, "envelope")), "envelope")
        if tamper:
            e["msg"] = {"log": "tampered"}
        return env.to_frames(e)

    try:
        # Until the socket has joined: one message through.
        n, joined = 0, None
        deadline = time.monotonic() + 20
        while joined is None and time.monotonic() < deadline:
            n += 1
            pub.send_multipart(frames(-n))
            joined = sub.receive(timeout=0.3)
        assert joined is not None
        while sub.receive(timeout=0.3) is not None:
            pass
        for k in range(60):
            pub.send_multipart(frames(k, tamper=k == 33))
        got = []
        while len(got) < 59:
            item = sub.receive(timeout=10)
            assert item is not None, f"{len(got)} of 59 arrived"
            got.append(item)
        assert [m.body["log"] for m in got] == [f"m {k}" for k in range(60) if k != 33]
        assert all(m.verdict.ok for m in got) and sub.counts.get("bad-signature") == 1
    finally:
        sub.close()
        pub.close(0)
    assert keyring._halves.helper is None  # closed with the subscriber, if a burst started it
