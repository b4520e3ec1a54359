"""A second process that checks part of each burst's signatures for its
subscriber.

Checking a signature costs more than making one (about 67 against 51 us
for an ed25519 key here), and pysequoia holds Python's lock while it
checks: a busy subscriber is bound by verification on one core.  With
`[subscribe] verifying_processes = 2` this helper checks half of every
large burst while the subscriber checks the other half.

Protocol, over the helper's stdin and stdout, framed as signworker's: the
certificates first, then batches of (signed data, signature) pairs; the
answer to each is "+" and the fingerprint of a good signature's
certificate, "U" and the issuer of a signature by a key not in the
keyring, or "B" and what is wrong with a bad one.  The helper exits when
its stdin closes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import BinaryIO

from .signing import BadSignature, SequoiaKeyring, UnknownKey
from .signworker import pack, read_items


class VerifyingHelper:
    """The subscriber's end: start(pairs) hands them over, result() waits
    for their answers.  Any failure raises OSError or EOFError; the caller
    then checks those signatures itself."""

    def __init__(self, certificates: list[bytes]) -> None:
        env = {k: v for k, v in os.environ.items() if k != "RUST_BACKTRACE"}
        self._proc = subprocess.Popen([sys.executable, "-m", "debpulse.emitters.verifyworker"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._in: BinaryIO = self._proc.stdin
        self._out: BinaryIO = self._proc.stdout
        self._in.write(pack(certificates))
        self._in.flush()

    def start(self, pairs: list[tuple[bytes, bytes]]) -> None:
        self._in.write(pack([item for pair in pairs for item in pair]))
        self._in.flush()

    def result(self, count: int) -> list[str | BadSignature | UnknownKey]:
        answers = read_items(self._out)
        if len(answers) != count:
            raise EOFError(f"the verifying helper answered {len(answers)} of {count} signatures")
        return [decode(a) for a in answers]

    def close(self) -> None:
        try:
            self._in.close()
        except OSError:
            pass
        try:
            self._proc.wait(5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(5)
        self._out.close()


def encode(answer: str | BadSignature | UnknownKey) -> bytes:
    if isinstance(answer, str):
        return b"+" + answer.encode("ascii")
    return (b"U" if isinstance(answer, UnknownKey) else b"B") + str(answer).encode("utf-8", "replace")


def decode(answer: bytes) -> str | BadSignature | UnknownKey:
    kind, text = answer[:1], answer[1:].decode("utf-8", "replace")
    if kind == b"+":
        return text
    if kind == b"U":
        return UnknownKey(text)
    if kind == b"B":
        return BadSignature(text)
    raise ValueError(f"the verifying helper answered {answer[:40]!r}")


def main() -> int:
    # Ctrl-C reaches the whole process group: the subscriber decides when
    # to stop, and closing our stdin says so.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import pysequoia

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    try:
        certs = [pysequoia.Cert.from_bytes(c) for c in read_items(stdin)]
        keyring = SequoiaKeyring(certs)
        while True:
            items = read_items(stdin)
            answers = [encode(keyring.check(items[k], items[k + 1])) for k in range(0, len(items), 2)]
            stdout.write(pack(answers))
            stdout.flush()
    except (EOFError, BrokenPipeError):
        return 0


if __name__ == "__main__":
    sys.exit(main())
