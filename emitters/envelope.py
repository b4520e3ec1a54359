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

# One size bound for the whole bus: publishers refuse to sign an envelope
# larger than this, the relay refuses such a submission, and subscribers
# drop a larger frame.  libzmq's own limit on the SUB socket
# (transport.MAX_WIRE_BYTES) sits above it, so that an oversized frame from
# a foreign publisher is counted here instead of cutting the connection.
MAX_FRAME_BYTES = 1 << 20
# Room left for the envelope around the body (keys, signature, replay URL).
ENVELOPE_OVERHEAD = 16 << 10
MAX_BODY_BYTES = MAX_FRAME_BYTES - ENVELOPE_OVERHEAD
# Nesting deeper than any real message: Python's JSON encoder and decoder
# recurse, and a body nested a thousand levels deep kills whoever encodes it.
MAX_DEPTH = 64
# Seconds since the epoch up to the end of year 9999: what time functions
# can format; anything larger is not a time.
MAX_TIMESTAMP = 253402300799
MAX_SEQ = (1 << 63) - 1
_MSG_ID_NS = uuid.UUID("5a0a9d2e-4f7d-4a55-9d8b-1f3c2e6b7a10")


class MalformedFrame(Exception):
    """A frame set that is not a fedmsg message; `reason` is a short label."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


# One encoder for all: json.dumps with keyword arguments builds a new
# encoder on every call, which costs more than encoding a small value.
# allow_nan=False: NaN and Infinity are not JSON, and other parsers refuse them.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), allow_nan=False)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_no_constants)


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """True when `value` nests more than `limit` arrays or objects deep.
    Iterative, so that checking a hostile value cannot itself overflow."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def loads(text: str | bytes, what: str = "JSON") -> Any:
    """Parse untrusted JSON: strict (no NaN or Infinity) and at most MAX_DEPTH
    deep.  Raises MalformedFrame("not-json" or "too-deep")."""
    if isinstance(text, bytes | bytearray | memoryview):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedFrame("bad-utf8", what) from None
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        raise MalformedFrame("too-deep", f"{what} nests too deep") from None
    except ValueError as exc:
        raise MalformedFrame("not-json", f"{what}: {str(exc)[:100]}") from None
    # Counting brackets is cheap; only a text with many of them (possibly
    # inside strings) needs the exact walk.
    if text.count("[") + text.count("{") > MAX_DEPTH and too_deep(value):
        raise MalformedFrame("too-deep", f"{what} nests more than {MAX_DEPTH} levels")
    return value


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


def body_text(body: Any) -> str:
    """The canonical text of a body that every subscriber can take, or
    MalformedFrame("too-deep" / "oversized" / "not-json") saying why not."""
    if not isinstance(body, dict):
        raise MalformedFrame("bad-types", "the body must be an object")
    if too_deep(body):
        raise MalformedFrame("too-deep", f"the body nests more than {MAX_DEPTH} levels")
    try:
        text = _CANONICAL.encode(body)
    except (ValueError, TypeError) as exc:  # NaN, Infinity, a value JSON has no form for
        raise MalformedFrame("not-json", str(exc)[:100]) from None
    if len(text) > MAX_BODY_BYTES:
        raise MalformedFrame("oversized", f"the body is {len(text)} bytes, more than the bus takes ({MAX_BODY_BYTES})")
    return text


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
    except UnicodeDecodeError:
        raise MalformedFrame("bad-utf8", "topic frame") from None
    envelope = loads(frames[1], "envelope")
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
    ts = envelope["timestamp"]
    if not isinstance(ts, int | float) or isinstance(ts, bool):
        raise MalformedFrame("bad-types", "timestamp must be a number")
    # NaN fails both comparisons; 10**400 and 1e300 fail the second.
    if not 0 <= ts <= MAX_TIMESTAMP:
        shown = "NaN" if ts != ts else "a huge number" if abs(ts) > 1e15 else repr(ts)
        raise MalformedFrame("bad-timestamp", f"timestamp {shown} is not a time")
    if not isinstance(envelope["msg"], dict):
        raise MalformedFrame("bad-types", "msg must be an object")
    if topic is not None and topic != envelope["topic"]:
        # The frame topic is what SUB filters on; an envelope that says
        # otherwise is an attempt to slip past a subscription filter.
        raise MalformedFrame("topic-mismatch", f"{topic!r} != {envelope['topic']!r}")
    seq = envelope.get("seq_id")
    if seq is not None and (not isinstance(seq, int) or isinstance(seq, bool) or not 1 <= seq <= MAX_SEQ):
        raise MalformedFrame("bad-types", "seq_id must be a positive 63-bit integer")
    for key in ("publisher", "replay"):
        if key in envelope and not isinstance(envelope[key], str):
            raise MalformedFrame("bad-types", f"{key} must be a string")
    return envelope
