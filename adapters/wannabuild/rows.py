"""wanna-build rows in, Events out (pure: no database, no files).

Two kinds of rows, read from the public per-architecture views:
- `"<arch>_public".transactions`: one row per state change, written by
  wanna-build's `log_ta()` with `time = now()`;
- `"<arch>_public".pkg_history`: one row per finished build.

Each kind says which columns to select (in that order), which of them
identify a row (for the high-water mark's boundary set) and how a row
becomes an Event.  A wanna-build database is usually SQL_ASCII, so text
columns may arrive as bytes; they must be UTF-8, otherwise the row is bad
input.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from debpulse.emitters.errors import InputError
from debpulse.emitters.event import Event

STATE_UPDATE = "wannabuild.package.state.update"
BUILD_COMPLETE = "wannabuild.package.build.complete"

# prevstate of a package wanna-build had not seen before (log_ta).
NO_STATE = "(none)"

Row = Sequence[Any]


def _text(value: Any, column: str, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise InputError(f"{column} is NULL")
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"{column} is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    if not isinstance(value, str):
        raise InputError(f"{column} is {type(value).__name__}, not text")
    if required and not value.strip():
        raise InputError(f"{column} is empty")
    return value


def _utc(value: Any, column: str) -> str:
    """The row's time as RFC 3339 UTC; the database converted the naive
    timestamp with its TimeZone, which is the clock wanna-build wrote with."""
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InputError(f"{column} is not a timestamp")
    try:
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    except OverflowError:  # the first or last day Python knows, in another zone
        raise InputError(f"{column} {value.isoformat()} is out of range in UTC") from None


def identity_digest(identity: Sequence[Any]) -> str:
    """A short stable digest of a row's identifying values.

    Bytes and str with the same content give the same digest, so a change of
    client encoding does not make old rows look new.
    """
    parts = []
    for value in identity:
        if value is None:
            part = b"\x00"
        elif isinstance(value, bytes):
            part = b"b" + value
        elif isinstance(value, str):
            part = b"b" + value.encode("utf-8", "surrogateescape")
        elif isinstance(value, datetime):
            part = b"t" + value.isoformat().encode()
        else:
            part = b"v" + str(value).encode()
        parts.append(len(part).to_bytes(4, "big") + part)
    return hashlib.sha256(b"".join(parts)).hexdigest()[:24]


@dataclass(frozen=True)
class Transaction:
    """One state change of one source package on one architecture."""

    architecture: str
    package: str
    distribution: str
    version: str | None
    action: str | None
    prevstate: str | None
    state: str
    real_user: str | None
    set_user: str | None
    time: str  # RFC 3339, UTC

    COLUMNS: ClassVar[tuple[str, ...]] = (
        '"time"', 'package', 'distribution', 'version::text', 'action', 'prevstate', 'state',
        'real_user', 'set_user', '"time"::timestamptz AS time_utc',
    )
    TIME_COLUMN: ClassVar[str] = '"time"'
    KIND: ClassVar[str] = "transactions"

    @staticmethod
    def identity(row: Row) -> tuple[Any, ...]:
        # Every column: the table has no key, and identical rows are counted.
        return tuple(row[:9])

    @classmethod
    def from_row(cls, architecture: str, row: Row) -> Transaction:
        if len(row) != len(cls.COLUMNS):
            raise InputError(f"expected {len(cls.COLUMNS)} columns, got {len(row)}")
        _, package, dist, version, action, prev, state, real_user, set_user, when = row
        return cls(
            architecture=architecture,
            package=_text(package, "package", required=True),  # type: ignore[arg-type]
            distribution=_text(dist, "distribution", required=True),  # type: ignore[arg-type]
            version=_text(version, "version"),
            action=_text(action, "action"),
            prevstate=_text(prev, "prevstate"),
            state=_text(state, "state", required=True),  # type: ignore[arg-type]
            real_user=_text(real_user, "real_user"),
            set_user=_text(set_user, "set_user"),
            time=_utc(when, "time"),
        )

    def event(self, digest: str, occurrence: int) -> Event:
        """`occurrence` numbers identical rows (same digest): wanna-build can
        log the very same change twice in one database transaction."""
        old = None if self.prevstate in (None, NO_STATE) else self.prevstate
        body = {
            "architecture": self.architecture,
            "package": self.package,
            "version": self.version,
            "suite": self.distribution,
            "old_state": old,
            "new_state": self.state,
            "action": self.action,
            "user": self.set_user or self.real_user,
            "real_user": self.real_user,
            "time": self.time,
        }
        return Event(
            topic=STATE_UPDATE,
            body=body,
            key=f"wannabuild:{self.architecture}:transaction:{digest}:{occurrence}",
            origin=f'"{self.architecture}_public".transactions {self.package} {self.time}',
        )


@dataclass(frozen=True)
class BuildResult:
    """One finished build (a pkg_history row)."""

    architecture: str
    package: str
    distribution: str
    version: str
    result: str
    build_time: int | None
    disk_space: int | None
    builder: str | None
    time: str  # RFC 3339, UTC

    COLUMNS: ClassVar[tuple[str, ...]] = (
        '"timestamp"', 'package', 'distribution', 'version::text', 'result', 'build_time', 'disk_space',
        'builder', '"timestamp"::timestamptz AS timestamp_utc',
    )
    TIME_COLUMN: ClassVar[str] = '"timestamp"'
    KIND: ClassVar[str] = "pkg_history"

    @staticmethod
    def identity(row: Row) -> tuple[Any, ...]:
        # The table's primary key (architecture is the stream's).
        return tuple(row[:4])

    @classmethod
    def from_row(cls, architecture: str, row: Row) -> BuildResult:
        if len(row) != len(cls.COLUMNS):
            raise InputError(f"expected {len(cls.COLUMNS)} columns, got {len(row)}")
        _, package, dist, version, result, build_time, disk_space, builder, when = row
        for name, value in (("build_time", build_time), ("disk_space", disk_space)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise InputError(f"{name} is {value!r}, not a count")
        return cls(
            architecture=architecture,
            package=_text(package, "package", required=True),  # type: ignore[arg-type]
            distribution=_text(dist, "distribution", required=True),  # type: ignore[arg-type]
            version=_text(version, "version", required=True),  # type: ignore[arg-type]
            result=_text(result, "result", required=True),  # type: ignore[arg-type]
            build_time=build_time,
            disk_space=disk_space,
            builder=_text(builder, "builder"),
            time=_utc(when, "timestamp"),
        )

    def event(self, digest: str, occurrence: int) -> Event:
        body = {
            "architecture": self.architecture,
            "package": self.package,
            "version": self.version,
            "suite": self.distribution,
            "result": self.result,
            "build_time": self.build_time,
            "disk_space": self.disk_space,
            "builder": self.builder,
            "time": self.time,
        }
        return Event(
            topic=BUILD_COMPLETE,
            body=body,
            # The primary key: one message per build, whichever route saw it.
            key=f"wannabuild:{self.architecture}:build:{self.package}:{self.distribution}:{self.version}:{self.time}",
            origin=f'"{self.architecture}_public".pkg_history {self.package} {self.time}',
        )


RowKind = type[Transaction] | type[BuildResult]
KINDS: tuple[RowKind, ...] = (Transaction, BuildResult)


def row_event(kind: RowKind, architecture: str, row: Row, digest: str, occurrence: int) -> Event:
    """The Event for one row, or InputError when the row is unusable."""
    return kind.from_row(architecture, row).event(digest, occurrence)
