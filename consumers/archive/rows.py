"""A verified message as the row the archive stores (pure: no database).

Everything a row needs is worked out here, including what PostgreSQL
cannot hold as it is (a NUL character in a JSON string, a number past
bigint, a key too long for an index): such a message is either made
storable without losing anything (the original envelope text is kept
beside it) or refused with `Unstorable`, never allowed to fail a whole
batch in the database.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from debpulse.emitters import envelope as env
from debpulse.emitters.messages import message_for
from debpulse.emitters.topics import relative_topic

# Envelope keys with a column of their own; any other key is kept in
# `headers`, so that the signed envelope can be given back whole.
COLUMN_KEYS = frozenset({"topic", "msg", "timestamp", "msg_id", "i", "username", "crypto", "signature",
                         "seq_id", "publisher"})
RAW_HEADER = "debpulse_raw"     # the original envelope text, when the columns had to change it
MAX_KEY = 255                   # msg_id, topic, publisher: unique-indexed text
MAX_NAME = 200                  # a username, a package name, an agent
BIGINT = 2**63 - 1
UNCLASSIFIED = "unclassified"   # datanommer's category for a topic it cannot split


class Unstorable(Exception):
    """A verified message that cannot be stored; the reason is one line."""


@dataclass(frozen=True)
class Row:
    msg_id: str
    ts: datetime                        # the envelope's timestamp, in UTC
    topic: str
    category: str
    body: str                           # JSON text of the body, for the jsonb column
    publisher: str | None = None
    seq_id: int | None = None
    i: int | None = None
    username: str | None = None         # the envelope's: the publishing process's user
    agent: str | None = None            # who caused the event, as its message type says
    signer: str | None = None           # fingerprint of the good signature; None if unsigned
    scope: str | None = None            # what that signature covered: "envelope" or "fedmsg"
    crypto: str | None = None
    signature: str | None = None
    headers: dict[str, Any] = field(default_factory=dict)
    usernames: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()


def category_of(topic: str) -> str:
    """datanommer's category: the service part of the topic (`dak` in
    org.debian.dev.dak.package.accept, `bodhi` in org.fedoraproject.prod.bodhi...)."""
    relative = relative_topic(topic)
    if relative != topic:
        return relative.split(".", 1)[0]
    parts = topic.split(".")
    return parts[3] if len(parts) > 4 and parts[3] else UNCLASSIFIED


def to_row(envelope: Mapping[str, Any], *, signer: str | None = None, scope: str | None = None) -> Row:
    """The row for a verified envelope, or Unstorable with the reason."""
    try:
        envelope = env.check(dict(envelope))
    except env.MalformedFrame as exc:
        raise Unstorable(f"not an envelope: {exc}") from None
    msg_id = _key(envelope["msg_id"], "msg_id")
    topic = _key(envelope["topic"], "topic")
    ts = _timestamp(envelope["timestamp"])
    body = envelope["msg"]
    if not isinstance(body, dict):
        raise Unstorable("msg is not a JSON object")
    publisher = envelope.get("publisher")
    publisher = _key(publisher, "publisher") if isinstance(publisher, str) else None
    headers = {_clean(k): _clean(v) for k, v in envelope.items() if k not in COLUMN_KEYS}
    if type(envelope["timestamp"]) is not int:  # a float time is kept exactly, beside the column
        headers["timestamp"] = envelope["timestamp"]
    stored_body = _clean(body)
    message = message_for(topic, stored_body)
    row = Row(
        msg_id=msg_id,
        ts=ts,
        topic=topic,
        category=category_of(topic),
        body=_json(stored_body),
        publisher=publisher,
        seq_id=_bigint(envelope.get("seq_id")),
        i=_bigint(envelope.get("i")),
        username=_text(envelope.get("username")),
        agent=_name(_call(message.agent)),
        signer=signer,
        scope=scope,
        crypto=_text(envelope.get("crypto")),
        signature=_text(envelope.get("signature")),
        headers=headers,
        usernames=_names(_call(message.usernames)),
        packages=_names(_call(message.packages)),
    )
    # What the columns give back must be the envelope as received; where it
    # is not (a NUL replaced, a null or an odd type in a column), the
    # original text is kept too, so that nothing is lost.
    if _rebuilt(row, stored_body) != envelope:
        row.headers[RAW_HEADER] = _raw(envelope)
    return row


def _raw(envelope: Mapping[str, Any]) -> str:
    try:
        return env.canonical(envelope).decode("ascii")
    except ValueError:  # NaN or infinity: not JSON, but kept as Python writes it
        return json.dumps(envelope, sort_keys=True, separators=(",", ":"))


def _rebuilt(row: Row, body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"topic": row.topic, "msg": body, "msg_id": row.msg_id, "timestamp": int(row.ts.timestamp())}
    for key in ("i", "username", "crypto", "signature", "seq_id", "publisher"):
        value = getattr(row, key)
        if value is not None:
            out[key] = value
    out.update(row.headers)
    return out


def _call(method: Callable[[], Any]) -> Any:
    try:
        return method()
    except Exception:  # a message type's helper must not stop the archive
        return None


def _key(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise Unstorable(f"{what} is not a non-empty string")
    if "\x00" in value:
        raise Unstorable(f"{what} contains a NUL character")
    if len(value) > MAX_KEY:
        raise Unstorable(f"{what} is longer than {MAX_KEY} characters")
    return value


def _timestamp(value: Any) -> datetime:
    try:
        seconds = float(value)
        if not math.isfinite(seconds):
            raise ValueError
        return datetime.fromtimestamp(seconds, UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        raise Unstorable(f"timestamp {value!r} is not a time PostgreSQL can store") from None


def _bigint(value: Any) -> int | None:
    if type(value) is int and -BIGINT <= value <= BIGINT:
        return value
    return None  # absent, or not a number a bigint column holds (kept in the raw text then)


def _text(value: Any) -> str | None:
    return value.replace("\x00", "\ufffd") if isinstance(value, str) else None


def _name(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or len(value) > MAX_NAME or any(c < " " or c == "\x7f" for c in value):
        return None
    return value


def _names(values: Any) -> tuple[str, ...]:
    if not isinstance(values, Iterable) or isinstance(values, str | bytes):
        return ()
    return tuple(sorted({n for n in map(_name, values) if n}))


def _clean(value: Any) -> Any:
    """`value` with what jsonb refuses replaced: NUL in strings and keys
    (U+FFFD), and numbers jsonb would change (NaN, infinities)."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def envelope_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """The signed envelope back from a stored row (the columns as the web
    reads them: msg_id, topic, ts, body, ...); with it a client can check
    the signature itself."""
    headers = dict(row.get("headers") or {})
    raw = headers.pop(RAW_HEADER, None)
    if isinstance(raw, str):
        return json.loads(raw)
    out: dict[str, Any] = {"topic": row["topic"], "msg": row["body"], "msg_id": row["msg_id"],
                           "timestamp": int(row["ts"].timestamp())}
    for key in ("i", "username", "crypto", "signature", "seq_id", "publisher"):
        if row.get(key) is not None:
            out[key] = row[key]
    out.update(headers)
    return out
