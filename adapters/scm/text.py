"""Bytes from git -> text, never failing.

git stores names and messages as bytes.  A commit may declare its encoding
in an `encoding` header; most don't, and old or careless ones hold Latin-1 or
Windows-1252 bytes without saying so.  The fallback order is: the declared
encoding, UTF-8, Windows-1252, then Latin-1 (which maps every byte, so the
chain always ends in text).  Windows-1252 comes before Latin-1 because bytes
0x80-0x9f are quotes and dashes there and unprintable controls in Latin-1.
"""

from __future__ import annotations

import codecs


def decode(data: bytes, declared: str | None = None) -> str:
    if declared:
        try:
            codecs.lookup(declared)
            return data.decode(declared)
        except (LookupError, ValueError):  # ValueError: UnicodeError, or a NUL in the name
            pass
    for encoding in ("utf-8", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")
