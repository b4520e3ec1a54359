"""Keyset cursors: where the next page starts, so that page 1,000 costs
what page 1 costs (no OFFSET), and rows arriving meanwhile neither shift
nor repeat what a client pages through (pure).

A cursor is the (time, id) of the last row of a page and the order it was
read in, base64url-encoded: opaque to clients, checked when it comes back.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_VERSION = 1


class CursorError(ValueError):
    pass


@dataclass(frozen=True)
class Cursor:
    ts: datetime        # the last row's time (UTC, microseconds)
    id: int             # and its id: (ts, id) orders every listing
    order: str = "desc"


def encode(cursor: Cursor) -> str:
    if cursor.ts.tzinfo is None:
        raise ValueError("cursor times are aware (UTC)")
    # Exact: whole microseconds from the datetime's own fields, not a float.
    delta = cursor.ts.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    micros = (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
    text = json.dumps([_VERSION, micros, cursor.id, cursor.order], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode(token: str) -> Cursor:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        version, micros, ident, order = json.loads(raw)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise CursorError("not a cursor this server made") from None
    if version != _VERSION or type(micros) is not int or type(ident) is not int or order not in ("asc", "desc"):
        raise CursorError("not a cursor this server made")
    try:
        ts = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    except OverflowError:
        raise CursorError("not a cursor this server made") from None
    return Cursor(ts, ident, order)
