"""A second process that checks part of each burst's signatures for its
subscriber.

Checking a signature costs more than making one (about 67 against 51 us
for an ed25519 key here): a busy subscriber is bound by verification on
one core.  With `[subscribe] verifying_processes = 2` this helper checks
half of every large burst while the subscriber checks the other half.

The helper gets the certificates first, then batches of (signed data,
signature) pairs.  It answers each with the fingerprint of a good
signature's certificate, or with why it is not good (unknown key, bad
signature, and the detail), so that the subscriber rejects it with the
same reason as if it had checked it itself (framing in `helper`, the
subscriber's end in `signing`).
"""

from __future__ import annotations

import signal
import sys

from .helper import pack, read_items
from .signing import SequoiaKeyring, answer_to_bytes


def main() -> int:
    # Ctrl-C reaches the whole process group: the subscriber decides when
    # to stop, and closing our stdin says so.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import pysequoia

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    try:
        keyring = SequoiaKeyring([pysequoia.Cert.from_bytes(c) for c in read_items(stdin)])
        while True:
            items = read_items(stdin)
            answers = [answer_to_bytes(keyring.check(items[k], items[k + 1])) for k in range(0, len(items), 2)]
            stdout.write(pack(answers))
            stdout.flush()
    except (EOFError, BrokenPipeError):
        return 0


if __name__ == "__main__":
    sys.exit(main())
