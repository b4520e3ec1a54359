"""Stored rows in datagrepper's JSON shapes, and the `meta` it adds (pure).

- v1 (`/raw`, `/id`): datanommer's `Message.as_dict` keys (`i, msg_id,
  topic, timestamp, certificate, signature, agent_name, username, crypto,
  msg, headers, source_name, source_version, users, packages`), plus what
  debpulse knows beyond: `seq_id`, `publisher`, and `verification`
  (`signer`, `scope`: the signature that was checked when it was stored).
- v2 (`/v2/search`, `/v2/id`): fedora-messaging's serialised message
  (`body, headers, id, priority, queue, topic`), what its `replay`
  command reads.

Times are UTC: `timestamp` is epoch seconds, `meta.date` ISO 8601 with Z.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from debpulse.consumers.archive.rows import envelope_of
from debpulse.emitters.messages import message_for

SOURCE_NAME = "debpulse"
SCHEMA_NAME = "base.message"  # fedora-messaging's base schema: every consumer knows it
SEVERITY_INFO = 20

try:
    SOURCE_VERSION = version("debpulse")
except PackageNotFoundError:  # running from a checkout
    SOURCE_VERSION = "0"


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def meta(row: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    message = message_for(row["topic"], row["body"])
    out: dict[str, Any] = {}
    for name in names:
        if name == "summary":
            out[name] = _safe(message.summary, row["topic"])
        elif name == "url":
            out[name] = _safe(message.link, None)
        elif name == "usernames":
            out[name] = sorted(row["usernames"])
        elif name == "packages":
            out[name] = sorted(row["packages"])
        elif name == "date":
            out[name] = iso(row["ts"])
        elif name == "agent":
            out[name] = row["agent"]
        else:  # app_icon, agent_avatar: datagrepper's widget asks; debpulse has no icons
            out[name] = None
    return out


def _safe(method: Any, default: Any) -> Any:
    try:
        return method()
    except Exception:  # a message type's helper must not break a listing
        return default


def v1(row: Mapping[str, Any], meta_names: Iterable[str] = (), *, envelope: bool = False) -> dict[str, Any]:
    """`envelope`: add the signed envelope as received, for a client that
    checks the signature itself (/id gives it)."""
    out: dict[str, Any] = {
        "i": row["i"] if row["i"] is not None else 0,
        "msg_id": row["msg_id"],
        "topic": row["topic"],
        "timestamp": row["ts"].timestamp(),
        "certificate": None,
        "signature": row["signature"],
        "crypto": row["crypto"],
        "agent_name": row["agent"],
        "username": row["username"],
        "msg": row["body"],
        "headers": headers(row),
        "source_name": SOURCE_NAME,
        "source_version": SOURCE_VERSION,
        "users": sorted(row["usernames"]),
        "packages": sorted(row["packages"]),
        "category": row["category"],
        "seq_id": row["seq_id"],
        "publisher": row["publisher"],
        "verification": {"signer": row["signer"], "scope": row["scope"]},
    }
    if envelope:
        out["envelope"] = envelope_of(row)
    names = list(meta_names)
    if names:
        out["meta"] = meta(row, names)
    return out


def headers(row: Mapping[str, Any]) -> dict[str, Any]:
    """fedora-messaging's headers for a stored message (as the bridge sends them)."""
    out: dict[str, Any] = {
        "fedora_messaging_schema": SCHEMA_NAME,
        "sent-at": row["ts"].astimezone(UTC).isoformat(),
        "fedora_messaging_severity": SEVERITY_INFO,
        "priority": 0,
    }
    for prefix, names in (("user", row["usernames"]), ("rpm", row["packages"])):
        for name in names:
            out[f"fedora_messaging_{prefix}_{name}"] = True
    return out


def v2(row: Mapping[str, Any], meta_names: Iterable[str] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {
        "body": row["body"],
        "headers": headers(row),
        "id": row["msg_id"],
        "priority": 0,
        "queue": None,
        "topic": row["topic"],
    }
    names = list(meta_names)
    if names:
        out["meta"] = meta(row, names)
    return out
