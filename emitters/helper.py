"""A helper process that takes half of each large batch of cryptography.

pysequoia holds Python's lock while it signs or verifies, so a thread
cannot work beside the main one; a process can.  `Halves` hands the
second half of a batch to a helper (signworker, verifyworker) while this
process does the first, and gives the helper up for good when it fails:
the work is then done here, and nothing is lost.

The protocol, over the helper's stdin and stdout: what the helper needs
first (a key, certificates), then batches both ways; each is a count then
length-prefixed items (4-byte big-endian integers).  A helper exits when
its stdin closes (its owner stopped or died).
"""

from __future__ import annotations

import logging
import os
import struct
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import BinaryIO, Generic, TypeVar

log = logging.getLogger(__name__)
_LENGTH = struct.Struct("!I")
# Below this many items a batch is done here alone: handing it over costs
# more than it saves.
PARALLEL_FROM = 8

Item = TypeVar("Item")
Result = TypeVar("Result")


def pack(items: Sequence[bytes]) -> bytes:
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


class Helper(Generic[Item, Result]):
    """The owner's end of a helper process (`python -m module`), given
    `first` on start.  start(items) hands a batch over, result(count)
    waits for its answers.  Any failure raises OSError, EOFError or
    ValueError; the owner then does those items itself."""

    def __init__(self, module: str, first: list[bytes]) -> None:
        env = {k: v for k, v in os.environ.items() if k != "RUST_BACKTRACE"}
        self._proc = subprocess.Popen([sys.executable, "-m", module], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      env=env)
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._in: BinaryIO = self._proc.stdin
        self._out: BinaryIO = self._proc.stdout
        self._in.write(pack(first))
        self._in.flush()

    def encode(self, items: list[Item]) -> list[bytes]:
        raise NotImplementedError

    def decode(self, answer: bytes) -> Result:
        raise NotImplementedError

    def start(self, items: list[Item]) -> None:
        self._in.write(pack(self.encode(items)))
        self._in.flush()

    def result(self, count: int) -> list[Result]:
        answers = read_items(self._out)
        if len(answers) != count:
            raise EOFError(f"the helper answered {len(answers)} items of {count}")
        return [self.decode(a) for a in answers]

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


class Halves(Generic[Item, Result]):
    """Does a batch here, or half here and half in a helper process when
    `processes` is 2 and the batch is large enough.  `start_helper` makes
    the helper; `what` names it in the warning when it fails."""

    def __init__(self, start_helper: Callable[[], Helper[Item, Result]], what: str) -> None:
        self._start_helper = start_helper
        self._what = what
        self.helper: Helper[Item, Result] | None = None
        self._failed = False

    def map(self, here: Callable[[Item], Result], items: list[Item], processes: int) -> list[Result]:
        helper = self._helper_for(len(items), processes)
        if helper is None:
            return [here(i) for i in items]
        half = len(items) // 2
        mine, theirs = items[:half], items[half:]
        try:
            helper.start(theirs)
        except OSError as exc:
            self._drop(exc)
            return [here(i) for i in items]
        done = [here(i) for i in mine]
        try:
            return done + helper.result(len(theirs))
        except (OSError, EOFError, ValueError) as exc:
            self._drop(exc)
            return done + [here(i) for i in theirs]

    def _helper_for(self, count: int, processes: int) -> Helper[Item, Result] | None:
        if processes < 2 or count < PARALLEL_FROM or self._failed:
            return None
        if self.helper is None:
            try:
                self.helper = self._start_helper()
            except OSError as exc:
                self._drop(exc)
        return self.helper

    def _drop(self, why: BaseException) -> None:
        log.warning("the %s helper process failed (%s); working in one process from now on", self._what, why)
        self._failed = True
        self.close()

    def close(self) -> None:
        if self.helper is not None:
            helper, self.helper = self.helper, None
            helper.close()
