"""The source: read wanna-build's public views, hand new rows to the Emitter.

One PostgreSQL connection, as the read-only guest.  It LISTENs for the
optional trigger's notifications (see trigger_sql.py) and polls at once on
one, and polls every architecture on an interval anyway, since the trigger
may be absent and a notification is only a hint.  Each (architecture, table)
stream keeps a durable high-water mark (marks.py); a mark moves only after
the Emitter accepted the row's event.  When the server goes away the source
reconnects with backoff and carries on from the marks.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from debpulse.adapters.common.position import Position
from debpulse.adapters.common.quarantine import Quarantine
from debpulse.emitters import metrics
from debpulse.emitters.backoff import Backoff
from debpulse.emitters.emitter import Emitter
from debpulse.emitters.errors import ConfigError, DebpulseError, EmitError, InputError
from debpulse.emitters.event import Event

from .marks import Mark, Unseen
from .rows import KINDS, RowKind, identity_digest, row_event

log = logging.getLogger("debpulse.wannabuild")

DEFAULT_CHANNEL = "debpulse_wannabuild"
# Events handed over at once to an emitter that takes many (the relay client).
CHUNK = 100
# Before year 1 nothing was built: the lower bound of "from the beginning".
BEGINNING = datetime(1, 1, 1)
# Connection errors that no retry will cure: say so and stop.
_FATAL_CONNECT = re.compile(
    r"password authentication failed|no pg_hba\.conf entry|role \".*\" does not exist|"
    r"database \".*\" does not exist|definition of service .* not found|service file .* not found|"
    r"invalid connection option|missing \"=\" after|invalid URI",
)


def redact(dsn: str) -> str:
    """The connection string without its password, for messages and logs."""
    dsn = re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", dsn)
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", dsn)


@dataclass
class Settings:
    dsn: str
    architectures: Sequence[str]
    suites: Sequence[str] = ()          # empty: every public suite
    lookback: timedelta = timedelta(minutes=10)
    batch: int = 1000
    interval: float = 30.0
    listen: bool = True
    channel: str = DEFAULT_CHANNEL
    start: str = "now"                  # now | beginning | an ISO timestamp (server clock)
    timezone: str | None = None         # the TimeZone wanna-build writes with
    connect_timeout: int = 10


@dataclass(frozen=True)
class Stream:
    architecture: str
    kind: RowKind

    @property
    def name(self) -> str:
        return f"{self.architecture}.{self.kind.KIND}"

    @property
    def view(self) -> sql.Composable:
        return sql.Identifier(f"{self.architecture}_public", self.kind.KIND)


class Stopped(Exception):
    """The source was asked to stop while waiting."""


class WannaBuildSource:
    def __init__(self, settings: Settings, emitter: Emitter, state_dir: Path,
                 stop: threading.Event | None = None) -> None:
        if not settings.architectures:
            raise ConfigError("no architecture to follow (--arch or [wannabuild] architectures)")
        for arch in settings.architectures:
            if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", arch):
                raise ConfigError(f"{arch!r} is not an architecture name")
        if settings.batch < 1:
            raise ConfigError("batch must be at least 1")
        if settings.start not in ("now", "beginning"):
            try:
                datetime.fromisoformat(settings.start)
            except ValueError:
                raise ConfigError(
                    f"start must be 'now', 'beginning' or an ISO timestamp, not {settings.start!r}") from None
        self.settings = settings
        self.emitter = emitter
        self.stop = stop or threading.Event()
        self.streams = [Stream(a, k) for a in settings.architectures for k in KINDS]
        self.positions = {s: Position(state_dir / "marks" / f"{s.name}.json") for s in self.streams}
        self.marks: dict[Stream, Mark] = {}
        for s, pos in self.positions.items():
            data = pos.load()
            if data is not None:
                try:
                    self.marks[s] = Mark.from_json(data)
                except (ValueError, TypeError, AttributeError) as exc:
                    raise ConfigError(f"{pos.path}: not a wanna-build mark: {exc}") from None
        self.quarantine = Quarantine(state_dir / "rejected", "wannabuild")
        self._warned_clock = False

    # -- the loop -----------------------------------------------------------------

    def run(self, *, once: bool = False, watching: Callable[[], None] | None = None) -> None:
        """Poll until stopped (or, with `once`, until caught up).  `watching`
        is called once, after the first catch-up (LISTEN in place) or the
        first failure to connect: the program's readiness."""
        backoff = Backoff(first=0.2)

        def up() -> None:
            nonlocal watching
            if watching is not None:
                watching, call = None, watching
                call()

        while not self.stop.is_set():
            try:
                with self._connect() as conn:
                    backoff.reset()
                    pending: set[str] | None = None  # None: every architecture
                    while not self.stop.is_set():
                        if pending is None:
                            # Notified polls do not postpone the full one.
                            full_poll_due = time.monotonic() + self.settings.interval
                        more = self.poll(conn, pending)
                        if more:
                            pending = None
                            continue
                        if once:
                            return
                        up()
                        pending = self._wait(conn, full_poll_due)
            except psycopg.OperationalError as exc:
                reason = " ".join(str(exc).split()) or type(exc).__name__
                if _FATAL_CONNECT.search(reason):
                    where = redact(self.settings.dsn)
                    raise ConfigError(f"cannot connect to wanna-build ({where}): {reason}") from None
                if once:
                    raise DebpulseError(f"wanna-build unavailable: {reason}") from None
                metrics.inc("debpulse_wannabuild_reconnects_total", help="lost or failed database connections")
                delay = backoff.delay()
                log.warning("database unavailable (%s); retrying in %.1fs", reason, delay)
                up()
                if self.stop.wait(delay):
                    return
            except Stopped:
                return
            except psycopg.Error as exc:
                # Anything else the server refuses (a grant revoked, a view
                # changed) will not heal by retrying.
                raise DebpulseError(f"wanna-build: {' '.join(str(exc).split())}") from None

    def _connect(self) -> psycopg.Connection[Any]:
        s = self.settings
        try:
            conn = psycopg.connect(s.dsn, autocommit=True, connect_timeout=s.connect_timeout,
                                   application_name="debpulse-wanna-build")
        except psycopg.ProgrammingError as exc:  # libpq could not parse the connection string
            raise ConfigError(f"bad connection string {redact(s.dsn)!r}: {' '.join(str(exc).split())}") from None
        try:
            if s.timezone:
                try:
                    conn.execute("SELECT set_config('TimeZone', %s, false)", (s.timezone,))
                except psycopg.DataError:
                    raise ConfigError(f"timezone {s.timezone!r} is not a PostgreSQL time zone") from None
            self._check_schema(conn)
            if s.listen:
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(s.channel)))
        except BaseException:
            conn.close()
            raise
        log.info("connected to %s as %s; following %s", conn.info.host or conn.info.dbname,
                 conn.info.user, ", ".join(s.architectures))
        return conn

    def _check_schema(self, conn: psycopg.Connection[Any]) -> None:
        """A wrong schema or a missing grant is one clear error, not a retry loop."""
        for stream in self.streams:
            query = sql.SQL("SELECT {} FROM {} LIMIT 0").format(
                sql.SQL(", ").join(sql.SQL(c) for c in stream.kind.COLUMNS), stream.view)
            try:
                conn.execute(query)
            except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName):
                raise ConfigError(
                    f'wanna-build schema: no view "{stream.architecture}_public".{stream.kind.KIND} '
                    f"(is {stream.architecture} an architecture of this database?)") from None
            except psycopg.errors.InsufficientPrivilege as exc:
                raise ConfigError(f"wanna-build schema: {conn.info.user}: {exc}".splitlines()[0]) from None
            except (psycopg.errors.UndefinedColumn, psycopg.errors.UndefinedObject,
                    psycopg.errors.UndefinedFunction) as exc:
                raise ConfigError(
                    f'wanna-build schema: "{stream.architecture}_public".{stream.kind.KIND}: {exc}'.splitlines()[0]
                ) from None

    def _wait(self, conn: psycopg.Connection[Any], deadline: float) -> set[str] | None:
        """Wait for a notification (-> its architectures) or the deadline (-> None)."""
        arches: set[str] = set()
        while not self.stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if not self.settings.listen:
                self.stop.wait(min(remaining, 0.25))
                continue
            # Short slices so that a stop request is noticed quickly.
            for n in conn.notifies(timeout=min(remaining, 0.25), stop_after=1):
                arches.add(n.payload)
            if arches:
                # Coalesce a burst: take what else has already arrived.
                for n in conn.notifies(timeout=0):
                    arches.add(n.payload)
                metrics.inc("debpulse_wannabuild_notifications_total", help="trigger notifications received")
                followed = arches & set(self.settings.architectures)
                if followed:
                    return followed
                arches.clear()
        raise Stopped

    # -- one poll ---------------------------------------------------------------

    def poll(self, conn: psycopg.Connection[Any], arches: set[str] | None = None) -> bool:
        """Poll every stream (or those of `arches`); True if a batch was full."""
        row = conn.execute("SELECT localtimestamp").fetchone()
        assert row is not None
        now: datetime = row[0]
        more = False
        for stream in self.streams:
            if arches is None or stream.architecture in arches:
                more |= self._poll_stream(conn, stream, now)
        metrics.inc("debpulse_wannabuild_polls_total", help="polls of the public views")
        return more

    def _initial_mark(self, now: datetime) -> Mark:
        start = self.settings.start
        if start == "beginning":
            return Mark(settled=None)
        if start == "now":
            return Mark(settled=now)
        return Mark(settled=datetime.fromisoformat(start).replace(tzinfo=None))

    def _poll_stream(self, conn: psycopg.Connection[Any], stream: Stream, now: datetime) -> bool:
        mark = self.marks.get(stream)
        if mark is None:
            mark = self.marks[stream] = self._initial_mark(now)
            self._save(stream)
        settled = mark.settled or BEGINNING
        frontier = mark.frontier or BEGINNING
        # Rows stamped at or before this were committed before this poll began
        # (no wanna-build transaction stays open longer than the lookback).
        final = now - self.settings.lookback

        # Late commits: rows that appeared below the frontier since we passed it.
        # A count costs one scan; the rows are fetched only when it differs.
        if frontier > settled:
            (count,) = self._select(conn, stream, "count(*)", "{t} > %(lo)s AND {t} <= %(hi)s",
                                    lo=settled, hi=frontier)[0]
            if count != mark.seen_count():
                rows = self._select(conn, stream, None, "{t} > %(lo)s AND {t} <= %(hi)s ORDER BY {t}",
                                    lo=settled, hi=frontier)
                late = self._handle(stream, mark, rows, final)
                if late:
                    metrics.inc("debpulse_wannabuild_late_rows_total", late, arch=stream.architecture,
                                table=stream.kind.KIND, help="rows committed after later rows were read")
                    log.info("%s: %d row(s) committed late below the high-water mark", stream.name, late)

        # New rows above the frontier, a bounded batch in time order.
        batch = self.settings.batch
        rows = self._select(conn, stream, None, "{t} > %(lo)s ORDER BY {t} LIMIT %(n)s", lo=frontier, n=batch)
        full = len(rows) >= batch
        complete_upto = now
        if full:
            last = rows[-1][0]
            if rows[0][0] == last:
                # One database transaction's worth of rows at a single time:
                # take all of it, or the stream would never move.
                rows = self._select(conn, stream, None, "{t} = %(at)s", at=last)
            else:
                # The LIMIT may have cut the last time group: leave it for next time.
                rows = [r for r in rows if r[0] != last]
            complete_upto = rows[-1][0]
        if rows and rows[-1][0] > now + timedelta(minutes=5) and not self._warned_clock:
            self._warned_clock = True
            log.warning("%s: rows are stamped ahead of the server clock; set [wannabuild] timezone to the"
                        " one wanna-build writes with", stream.name)
        # How far behind wanna-build this stream is: the age of the oldest new row.
        metrics.set_gauge("debpulse_source_lag_seconds", (now - rows[0][0]).total_seconds() if rows else 0.0,
                          adapter="wannabuild", source=stream.name, help="age of the input being handled")
        self._handle(stream, mark, rows, final)
        if mark.settle(min(complete_upto, final)):
            self._save(stream)
        return full

    def _select(self, conn: psycopg.Connection[Any], stream: Stream, what: str | None, where: str,
                **params: Any) -> list[tuple[Any, ...]]:
        t = sql.SQL(stream.kind.TIME_COLUMN)
        cols = sql.SQL(what) if what else sql.SQL(", ").join(sql.SQL(c) for c in stream.kind.COLUMNS)
        cond = sql.SQL(where).format(t=t)
        if self.settings.suites:
            cond = sql.SQL("distribution = ANY(%(suites)s) AND ") + cond
            params["suites"] = list(self.settings.suites)
        query = sql.SQL("SELECT {} FROM {} WHERE {}").format(cols, stream.view, cond)
        return conn.execute(query, params).fetchall()

    def _handle(self, stream: Stream, mark: Mark, rows: list[tuple[Any, ...]], final: datetime) -> int:
        """Hand over the rows not seen yet, in order; returns how many.

        `rows` must hold every visible row of its time range.  Rows at or
        below `final` cannot change any more, so the mark settles behind the
        hand-over as it goes and a long catch-up keeps `seen` small.
        """
        unseen = mark.unseen((r[0], identity_digest(stream.kind.identity(r)), r) for r in rows)
        chunk: list[tuple[Unseen, Event]] = []

        def flush(upcoming: datetime | None) -> None:
            nonlocal chunk
            if chunk:
                last = chunk[-1][0].time
                # Settle only behind a whole time group: more rows of `last` may follow.
                self._hand_over(stream, mark, chunk, min(last, final) if upcoming is None or upcoming > last else None)
            chunk = []

        for i, u in enumerate(unseen):
            try:
                event = row_event(stream.kind, stream.architecture, u.row, u.digest, u.occurrence)
            except InputError as exc:
                flush(u.time)
                self.quarantine.keep(repr(tuple(u.row)).encode(), f"{stream.name}-{u.digest}-{u.occurrence}",
                                     exc.reason)
                mark.record(u.time, u.digest)
                self._save(stream)
                continue
            chunk.append((u, event))
            if len(chunk) >= CHUNK:
                flush(unseen[i + 1].time if i + 1 < len(unseen) else None)
        flush(None)
        return len(unseen)

    def _hand_over(self, stream: Stream, mark: Mark, chunk: list[tuple[Unseen, Event]],
                   settle_to: datetime | None) -> None:
        """Emit, then move the mark (and settle it to `settle_to`).  An
        emitter that takes many events at once gets the whole chunk and the
        mark is saved once; a crash in between re-sends them under the same
        keys, which the relay folds into one message each."""
        emit_many = getattr(self.emitter, "emit_many", None)
        if emit_many is not None:
            self._retrying(lambda: emit_many([e for _, e in chunk]), chunk[0][1].origin)
            for u, _ in chunk:
                mark.record(u.time, u.digest)
        else:
            for i, (u, event) in enumerate(chunk):
                self._retrying(lambda event=event: self.emitter.emit(event), event.origin)
                mark.record(u.time, u.digest)
                if i < len(chunk) - 1:
                    self._save(stream)
        if settle_to is not None:
            mark.settle(settle_to)
        self._save(stream)
        log.debug("%s: handed over %d event(s), up to %s", stream.name, len(chunk), chunk[-1][1].origin)
        metrics.inc("debpulse_wannabuild_events_total", len(chunk), arch=stream.architecture,
                    table=stream.kind.KIND, help="rows handed to the emitter as events")

    def _retrying(self, hand_over: Callable[[], object], what: str) -> None:
        backoff = Backoff(first=0.5)
        while True:
            try:
                hand_over()
                return
            except EmitError as exc:
                delay = backoff.delay()
                metrics.inc("debpulse_wannabuild_emit_retries_total", help="hand-overs the emitter refused")
                log.warning("cannot hand over %s (%s); retrying in %.1fs", what, exc, delay)
                if self.stop.wait(delay):
                    raise Stopped from None

    def _save(self, stream: Stream) -> None:
        self.positions[stream].save(self.marks[stream].to_json())
