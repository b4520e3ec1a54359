"""A second process that signs part of each batch for its publisher.

With `[bus] signing_processes = 2` the publisher (the relay) hands this
helper half of every large batch while it signs the other half itself:
on two cores, about twice the signatures per second of one.  The helper
gets the secret key first, then batches of data to sign; it answers each
with the detached signatures (framing in `helper`, the publisher's end in
`signing`).
"""

from __future__ import annotations

import signal
import sys

from .helper import pack, read_items
from .signing import SequoiaSigner


def main() -> int:
    # Ctrl-C reaches the whole process group: the publisher decides when to
    # stop, and closing our stdin says so.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
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
