"""fedmsg's wire format: two ZeroMQ frames, the topic and a JSON envelope.

Pure functions only.  Verifiers re-canonicalise the parsed envelope and
never hash wire bytes: fedmsg-relay re-serialises with other separators.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

# fedmsg's keys, then debpulse's own.  Unknown keys are kept and, under the
# envelope scope, signed: nothing in a message escapes the signature.
FEDMSG_KEYS = ("topic", "msg", "timestamp", "msg_id", "i", "username")
UNSIGNED_KEYS = ("signature", "crypto")
REQUIRED_KEYS = ("topic", "msg", "timestamp", "msg_id")

# `crypto` says what the signature covers.  "gpg" is fedmsg's GnuPG backend
# (canonical `msg` only); real fedmsg consumers validate it.
SCOPE_ENVELOPE = "envelope"
SCOPE_FEDMSG = "fedmsg"
CRYPTO_FOR_SCOPE = {SCOPE_ENVELOPE: "openpgp-envelope", SCOPE_FEDMSG: "gpg"}
SCOPE_FOR_CRYPTO = {v: k for k, v in CRYPTO_FOR_SCOPE.items()}

MAX_FRAME_BYTES = 1 << 20
_MSG_ID_NS = uuid.UUID("5a0a9d2e-4f7d-4a55-9d8b-1f3c2e6b7a10")


class MalformedFrame(Exception):
    """A frame set that is not a fedmsg message; `reason` is a short label."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


# One encoder for all: json.dumps with keyword arguments builds a new
# encoder on every call, which costs more than encoding a small value.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def _scalar(value: Any) -> str:
    """Canonical text of an envelope field; the common scalars without the
    encoder's set-up cost, anything else through it."""
    if type(value) is str:
        return encode_basestring_ascii(value)
    if type(value) is int:
        return int.__repr__(value)
    return _CANONICAL.encode(value)


def canonical(obj: Any) -> bytes:
    """fedmsg's encoding: keys sorted, no spaces, ASCII escapes."""
    return _CANONICAL.encode(obj).encode("ascii")


def new_msg_id(key: str | None = None, now: float | None = None) -> str:
    """`<year>-<uuid>`: random, or derived from an idempotency key so that
    every route (and every publisher) reporting one fact gives one msg_id."""
    year = time.gmtime(now if now is not None else time.time()).tm_year
    ident = uuid.uuid5(_MSG_ID_NS, key) if key else uuid.uuid4()
    return f"{year}-{ident}"


def build(
    *,
    topic: str,
    msg: Mapping[str, Any],
    msg_id: str,
    i: int,
    username: str,
    timestamp: float | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An unsigned envelope."""
    env: dict[str, Any] = {
        "topic": topic,
        "msg": dict(msg),
        "timestamp": int(timestamp if timestamp is not None else time.time()),
        "msg_id": msg_id,
        "i": i,
        "username": username,
    }
    if extra:
        env.update(extra)
    return env


def signed_data(envelope: Mapping[str, Any], scope: str, msg_json: str | None = None) -> bytes:
    """The bytes a signature of `scope` covers.  `msg_json`, the canonical
    text of `msg` when the caller has it, saves encoding the body again."""
    if scope == SCOPE_FEDMSG:
        return msg_json.encode("ascii") if msg_json is not None else canonical(envelope["msg"])
    return encode(envelope, msg_json, skip=UNSIGNED_KEYS)


def encode(envelope: Mapping[str, Any], msg_json: str | None = None, skip: tuple[str, ...] = ()) -> bytes:
    """canonical(envelope), with the body's canonical text given: the body is
    most of the bytes, and the publisher needs the same text three times
    (signed data, wire frame, outbox)."""
    if msg_json is None:
        return canonical({k: v for k, v in envelope.items() if k not in skip})
    parts = [_scalar(k) + ":" + (msg_json if k == "msg" else _scalar(envelope[k]))
             for k in sorted(envelope) if k not in skip]
    return ("{" + ",".join(parts) + "}").encode("ascii")


def attach_signature(envelope: dict[str, Any], signature: bytes, scope: str) -> dict[str, Any]:
    envelope["crypto"] = CRYPTO_FOR_SCOPE[scope]
    envelope["signature"] = base64.b64encode(signature).decode("ascii")
    return envelope


def signature_of(envelope: Mapping[str, Any]) -> tuple[str, bytes] | None:
    """(scope, binary signature), or None when the envelope is unsigned.
    Raises MalformedFrame for a signature we cannot even decode."""
    sig = envelope.get("signature")
    crypto = envelope.get("crypto")
    if sig is None and crypto is None:
        return None
    scope = SCOPE_FOR_CRYPTO.get(crypto) if isinstance(crypto, str) else None
    if scope is None:
        raise MalformedFrame("unknown-crypto", repr(crypto))
    if not isinstance(sig, str):
        raise MalformedFrame("bad-signature-encoding", "signature is not a string")
    try:
        # x509-era fedmsg wraps base64 every 76 characters.
        return scope, base64.b64decode("".join(sig.split()), validate=True)
    except ValueError:
        raise MalformedFrame("bad-signature-encoding", "signature is not base64") from None


def to_frames(envelope: Mapping[str, Any]) -> list[bytes]:
    return [envelope["topic"].encode("utf-8"), canonical(envelope)]


def from_frames(frames: Sequence[bytes], max_bytes: int = MAX_FRAME_BYTES) -> dict[str, Any]:
    """Parse a received frame set, or raise MalformedFrame with a reason."""
    if len(frames) != 2:
        raise MalformedFrame("frame-count", f"{len(frames)} frames")
    if len(frames[1]) > max_bytes:
        raise MalformedFrame("oversized", f"{len(frames[1])} bytes")
    try:
        topic = bytes(frames[0]).decode("utf-8")
        text = bytes(frames[1]).decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedFrame("bad-utf8") from None
    try:
        envelope = json.loads(text)
    except ValueError:
        raise MalformedFrame("not-json") from None
    return check(envelope, topic)


def check(envelope: Any, topic: str | None = None) -> dict[str, Any]:
    """Validate the shape of a parsed envelope (from the wire or a replay)."""
    if not isinstance(envelope, dict):
        raise MalformedFrame("not-an-object")
    missing = [k for k in REQUIRED_KEYS if k not in envelope]
    if missing:
        raise MalformedFrame("missing-keys", ",".join(missing))
    if not isinstance(envelope["topic"], str) or not isinstance(envelope["msg_id"], str):
        raise MalformedFrame("bad-types", "topic and msg_id must be strings")
    if not isinstance(envelope["timestamp"], int | float) or isinstance(envelope["timestamp"], bool):
        raise MalformedFrame("bad-types", "timestamp must be a number")
    if topic is not None and topic != envelope["topic"]:
        # The frame topic is what SUB filters on; an envelope that says
        # otherwise is an attempt to slip past a subscription filter.
        raise MalformedFrame("topic-mismatch", f"{topic!r} != {envelope['topic']!r}")
    seq = envelope.get("seq_id")
    if seq is not None and (not isinstance(seq, int) or isinstance(seq, bool) or seq < 1):
        raise MalformedFrame("bad-types", "seq_id must be a positive integer")
    return envelope
