"""Hostile input for the bus tests: frames and submissions built to break a
component, and a publisher socket of the attacker's own."""

from __future__ import annotations

import time
from collections.abc import Callable

import zmq
from testbus import free_port

from debpulse.emitters import envelope as env
from debpulse.emitters.signing import SequoiaSigner

TOPIC = "org.debian.dev.logger.log"


def nested_text(depth: int) -> str:
    """The canonical text of {"a": {"a": ... 1}}, `depth` objects deep,
    written out directly: Python's own encoder gives up near 1,000."""
    return '{"a":' * depth + "1" + "}" * depth


def signed_frames(signer: SequoiaSigner, msg_json: str, *, topic: str = TOPIC, scope: str = "envelope",
                  **extra: object) -> list[bytes]:
    """A correctly signed envelope whose body is the given canonical text
    (which may be anything, a poison included)."""
    envelope = env.build(topic=topic, msg={"placeholder": True}, msg_id=env.new_msg_id(), i=1,
                         username="mallory", extra=extra)
    signature = signer.sign(env.signed_data(envelope, scope, msg_json))
    env.attach_signature(envelope, signature, scope)
    return [topic.encode(), env.encode(envelope, msg_json)]


def good_frames(signer: SequoiaSigner, text: str, topic: str = TOPIC) -> list[bytes]:
    return signed_frames(signer, env.canonical({"log": text}).decode(), topic=topic)


def hostile_frames(signer: SequoiaSigner) -> dict[str, list[bytes]]:
    """Frame sets that each killed or fooled a subscriber once, by name."""
    t = TOPIC.encode()

    def envelope_with(timestamp: str) -> bytes:
        return (b'{"i":1,"msg":{"log":"x"},"msg_id":"2026-x","timestamp":' + timestamp.encode()
                + b',"topic":"' + t + b'","username":"m"}')

    return {
        "json nested 5,000 deep": [t, b"[" * 5000 + b"]" * 5000],
        "body nested 5,000 deep": [t, b'{"msg":' + b'{"a":' * 5000 + b"1" + b"}" * 5000
                                   + b',"msg_id":"x","timestamp":1,"topic":"' + t + b'"}'],
        "signed body nested 1,000 deep": signed_frames(signer, nested_text(1000)),
        "timestamp NaN": [t, envelope_with("NaN")],
        "timestamp Infinity": [t, envelope_with("-Infinity")],
        "timestamp 1e300": [t, envelope_with("1e300")],
        "timestamp 10**400": [t, envelope_with("1" + "0" * 400)],
        "huge integer": [t, envelope_with("1" + "0" * 5000)],
        "oversized": [t, envelope_with("1")[:-1] + b',"pad":"' + b"x" * (env.MAX_FRAME_BYTES + 1) + b'"}'],
        "seq_id 2**70": [t, envelope_with("1")[:-1] + b',"seq_id":' + str(2**70).encode() + b"}"],
        "publisher not a string": [t, envelope_with("1")[:-1] + b',"publisher":[1],"seq_id":3}'],
    }


class AttackerSocket:
    """A PUB socket bound by the attacker, which the component under test
    is told to connect to alongside the real relay."""

    def __init__(self) -> None:
        self.endpoint = f"tcp://127.0.0.1:{free_port()}"
        self.sock = zmq.Context.instance().socket(zmq.PUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(self.endpoint)

    def send_until(self, frames: list[list[bytes]], probe: Callable[[int], list[bytes]],
                   seen: Callable[[], bool], timeout: float = 30.0) -> None:
        """Send `frames` and then a valid probe, again and again, until
        `seen()` says a probe arrived: everything sent before it has been
        through the component too (one socket keeps the order)."""
        deadline = time.monotonic() + timeout
        n = 0
        while time.monotonic() < deadline:
            n += 1
            for f in frames:
                self.sock.send_multipart(f)
            self.sock.send_multipart(probe(n))
            end = time.monotonic() + 0.5
            while time.monotonic() < end:
                if seen():
                    return
                time.sleep(0.02)
        raise AssertionError("the component never received the attacker's socket")

    def close(self) -> None:
        self.sock.close(0)


class Lines:
    """The stdout of a running process, line by line, read by a thread."""

    def __init__(self, proc) -> None:  # type: ignore[no-untyped-def]
        import threading

        self.proc = proc
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def finish(self) -> list[str]:
        """Every line, once the process has ended."""
        self._thread.join(30)
        return self.lines

    def wait(self, check: Callable[[list[str]], bool], timeout: float = 30.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while not check(self.lines):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; lines so far: {self.lines[-20:]}")
            if self.proc.poll() is not None and not self._thread.is_alive():
                raise AssertionError(f"exited with {self.proc.returncode}; lines: {self.lines[-20:]}")
            time.sleep(0.02)
        return self.lines
