"""A bound on a mail's header before any parser reads it.

Python's email package slows down sharply on very long headers (a header
of a few hundred kilobytes takes it minutes), so one hostile mail could
stall an adapter.  Real headers, Received chains included, stay far below
the bound.
"""

from __future__ import annotations

import re

from debpulse.emitters.errors import InputError

MAX_HEADER_BYTES = 64 * 1024
_END_OF_HEADER = re.compile(rb"\r?\n\r?\n")


def check_header_size(data: bytes, limit: int = MAX_HEADER_BYTES) -> None:
    """InputError when the header (up to the first empty line) is larger than `limit`."""
    end = _END_OF_HEADER.search(data, 0, limit + 4)
    size = end.start() if end else len(data)
    if size > limit:
        raise InputError(f"a mail header of more than {limit // 1024} KiB: not a mail from the service")
