"""fedmsg's wire format: two ZeroMQ frames, the topic and a JSON envelope.

Pure functions only.  Verifiers re-canonicalise the parsed envelope and
never hash wire bytes: fedmsg-relay re-serialises with other separators.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

import orjson

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

# The fast encoder is orjson, used only where its bytes are provably the
# reference encoder's (the tests compare both over every fixture and over
# generated values): exact JSON types without floats (orjson writes NaN as
# null where the reference refuses it), integers within 64 bits (orjson
# refuses larger ones), and every character the reference escapes but
# orjson leaves raw (DEL and everything past ASCII) escaped afterwards the
# reference's way.  Anything else goes to the reference encoder.
_PLAIN, _OTHER, _DEEP = 0, 1, 2
_SCALARS = frozenset((str, int, bool, type(None)))
_ORJSON_DEPTH = 200  # orjson's own limit is 255 levels
_RAW_IN_ORJSON = re.compile("[\x7f-\U0010ffff]+")


def _shape(value: Any, limit: int) -> int:
    """_PLAIN when `value` holds only dicts, lists, strings, integers,
    booleans and None, at most `limit` levels deep; _DEEP when deeper;
    _OTHER otherwise (floats, subclasses, other types).  Level by level,
    without recursion, so that a hostile value cannot overflow it."""
    level = [value]
    depth = 0
    other = False
    while level:
        depth += 1
        if depth > limit:
            return _DEEP
        below: list[Any] = []
        for item in level:
            kind = type(item)
            if kind is dict:
                children: Any = item.values()
            elif kind is list:
                children = item
            else:
                other = True
                continue
            for child in children:
                kind = type(child)
                if kind is dict or kind is list:
                    below.append(child)
                elif kind not in _SCALARS:
                    other = True
        level = below
    return _OTHER if other else _PLAIN


def _escape_raw(match: re.Match[str]) -> str:
    return encode_basestring_ascii(match.group())[1:-1]


def _orjson_canonical(value: Any) -> bytes | None:
    """orjson's sorted encoding made ASCII the reference's way, or None when
    orjson refuses the value (integers past 64 bits, keys that are not
    strings, lone surrogates): the caller then uses the reference."""
    try:
        out = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return None
    if out.isascii() and b"\x7f" not in out:
        return out
    # Such characters occur only inside strings (keys included), where the
    # reference writes each as \uXXXX (a surrogate pair past the BMP).
    return _RAW_IN_ORJSON.sub(_escape_raw, out.decode("utf-8")).encode("ascii")


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


# For the checks on a text orjson has parsed, in one pass: brackets become
# "[" (nesting), digits "0" (integers orjson reads past 64 bits), the rest " ".
_SCAN = bytes(ord("[") if c in b"[{" else ord("0") if c in b"0123456789" else ord(" ") for c in range(256))
_LONG_NUMBER = b"0" * 19  # 2**63 has 19 digits: shorter integers are exact in orjson


def loads(text: str | bytes, what: str = "JSON") -> Any:
    """Parse untrusted JSON: strict (no NaN or Infinity) and at most MAX_DEPTH
    deep.  Raises MalformedFrame("not-json" or "too-deep").

    orjson parses; what it refuses, and texts with integers of 19 digits or
    more (which it reads as floats), go to the standard library's decoder,
    so that the value and the errors are the standard library's."""
    if isinstance(text, str):
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: only the reference reads them
            return _reference_loads(text, what)
    else:
        data = bytes(text)
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return _reference_loads(data, what)
    scan = data.translate(_SCAN)
    if _LONG_NUMBER in scan:
        return _reference_loads(data, what)
    # Counting brackets is cheap; only a text with many of them (possibly
    # inside strings) needs the exact walk.
    if scan.count(b"[") > MAX_DEPTH and too_deep(value):
        raise MalformedFrame("too-deep", f"{what} nests more than {MAX_DEPTH} levels")
    return value


def _reference_loads(text: str | bytes, what: str) -> Any:
    if not isinstance(text, str):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedFrame("bad-utf8", what) from None
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        raise MalformedFrame("too-deep", f"{what} nests too deep") from None
    except ValueError as exc:
        raise MalformedFrame("not-json", f"{what}: {str(exc)[:100]}") from None
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


def reference_canonical(obj: Any) -> bytes:
    """fedmsg's encoding by the standard library: what `canonical` must equal."""
    return _CANONICAL.encode(obj).encode("ascii")


def canonical(obj: Any) -> bytes:
    """fedmsg's encoding: keys sorted, no spaces, ASCII escapes."""
    if _shape(obj, _ORJSON_DEPTH) == _PLAIN:
        out = _orjson_canonical(obj)
        if out is not None:
            return out
    return _CANONICAL.encode(obj).encode("ascii")


def body_bytes(body: Any) -> bytes:
    """The canonical bytes of a body that every subscriber can take, or
    MalformedFrame("too-deep" / "oversized" / "not-json") saying why not."""
    if not isinstance(body, dict):
        raise MalformedFrame("bad-types", "the body must be an object")
    shape = _shape(body, MAX_DEPTH)
    if shape == _DEEP:
        raise MalformedFrame("too-deep", f"the body nests more than {MAX_DEPTH} levels")
    out = _orjson_canonical(body) if shape == _PLAIN else None
    if out is None:
        if too_deep(body):  # through dict and list subclasses, which _shape does not enter
            raise MalformedFrame("too-deep", f"the body nests more than {MAX_DEPTH} levels")
        try:
            out = _CANONICAL.encode(body).encode("ascii")
        except (ValueError, TypeError) as exc:  # NaN, Infinity, a value JSON has no form for
            raise MalformedFrame("not-json", str(exc)[:100]) from None
    if len(out) > MAX_BODY_BYTES:
        raise MalformedFrame("oversized", f"the body is {len(out)} bytes, more than the bus takes ({MAX_BODY_BYTES})")
    return out


def body_text(body: Any) -> str:
    """body_bytes as text."""
    return body_bytes(body).decode("ascii")


def new_msg_id(key: str | None = None, now: float | None = None) -> str:
    """`<year>-<uuid>`: random (uuid4), or derived from an idempotency key
    (uuid5) so that every route (and every publisher) reporting one fact
    gives one msg_id.  Made by hand: the uuid module's objects cost more
    than the rest of an envelope."""
    ident = bytearray(hashlib.sha1(_MSG_ID_NS.bytes + key.encode("utf-8")).digest()[:16] if key else os.urandom(16))
    ident[6] = ident[6] & 0x0F | (0x50 if key else 0x40)  # the version
    ident[8] = ident[8] & 0x3F | 0x80  # the RFC 4122 variant
    h = ident.hex()
    return f"{_year(time.time() if now is None else now)}-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_year_of_hour: tuple[int, int] = (-1, 0)


def _year(now: float) -> int:
    # A year starts on the hour (UTC): one gmtime per hour, not per message.
    global _year_of_hour
    hour = int(now // 3600)
    if _year_of_hour[0] != hour:
        _year_of_hour = (hour, time.gmtime(hour * 3600).tm_year)
    return _year_of_hour[1]


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
