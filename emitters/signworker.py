"""A second process that signs part of each batch for its publisher.

pysequoia holds Python's lock while it signs, so a thread cannot sign
beside the publisher; a process can.  The publisher (the relay) hands
this helper half of every large batch while it signs the other half
itself: on two cores, about twice the signatures per second of one.

Protocol, over the helper's stdin and stdout: the secret key first, then
batches both ways; each is a count then length-prefixed items (4-byte
big-endian integers).  The helper signs with the key it was given and
exits when its stdin closes (the publisher stopped or died).
"""

from __future__ import annotations

import logging
import os
import signal
import struct
import subprocess
import sys
from typing import BinaryIO

log = logging.getLogger(__name__)
_LENGTH = struct.Struct("!I")


def pack(items: list[bytes]) -> bytes:
    return b"".join([_LENGTH.pack(len(items)), *(_LENGTH.pack(len(i)) + i for i in items)])


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise EOFError("the other end closed the pipe")
    return data


def read_items(stream: BinaryIO) -> list[bytes]:
    (count,) = _LENGTH.unpack(_read_exactly(stream, 4))
    items = []
    for _ in range(count):
        (size,) = _LENGTH.unpack(_read_exactly(stream, 4))
        items.append(_read_exactly(stream, size))
    return items


class SigningHelper:
    """The publisher's end: start(items) hands them over, result() waits
    for their signatures.  Any failure raises OSError or EOFError; the
    caller then signs those items itself."""

    def __init__(self, secret_key: bytes) -> None:
        env = {k: v for k, v in os.environ.items() if k != "RUST_BACKTRACE"}
        self._proc = subprocess.Popen([sys.executable, "-m", "debpulse.emitters.signworker"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._in: BinaryIO = self._proc.stdin
        self._out: BinaryIO = self._proc.stdout
        self._in.write(pack([secret_key]))
        self._in.flush()

    def start(self, items: list[bytes]) -> None:
        self._in.write(pack(items))
        self._in.flush()

    def result(self, count: int) -> list[bytes]:
        signatures = read_items(self._out)
        if len(signatures) != count:
            raise EOFError(f"the signing helper answered {len(signatures)} signatures for {count} items")
        return signatures

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


def main() -> int:
    # Ctrl-C reaches the whole process group: the publisher decides when to
    # stop, and closing our stdin says so.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from .signing import SequoiaSigner

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    try:
        [key] = read_items(stdin)
        signer = SequoiaSigner(key)
        del key
        while True:
            items = read_items(stdin)
            stdout.write(pack([signer.sign(item) for item in items]))
            stdout.flush()
    except (EOFError, BrokenPipeError):
        return 0


if __name__ == "__main__":
    sys.exit(main())
