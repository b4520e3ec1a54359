"""Live updates: one LISTEN connection to the archive, fanned out to every
open page (I/O).

The archive sends a NOTIFY (channel `debpulse_archive`) in each
transaction that stores messages.  On each, the hub reads the rows after
the newest position it has (archive ids, which become visible in
order), keeps the latest of them in memory with their card already
rendered, counts them into the pulse, and wakes the streams.  A stream
that is behind the memory (a browser back from sleep, a page of a web
process that was restarted) reads what it missed from the database with
the same filters, then joins the others: one code path for "resume".

On a hot standby (no LISTEN there) or when the LISTEN connection is
lost, the hub polls instead; it polls now and then anyway, so a lost
notification costs a delay, never a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg_pool import PoolTimeout

from debpulse.consumers.archive.store import NOTIFY_CHANNEL

from . import live, pulse
from .db import Database
from .params import Search
from .query import COLUMNS, Names, since

log = logging.getLogger("debpulse-web")

AFTER_SQL = (f"SELECT {COLUMNS}, m.body::text AS body_text FROM msg_ids k"
             " JOIN messages m ON m.ts = k.ts AND m.id = k.id"
             " JOIN topics t ON t.id = m.topic_id JOIN categories c ON c.id = m.category_id"
             " LEFT JOIN publishers pb ON pb.id = m.publisher_id WHERE k.id > %s ORDER BY k.id LIMIT %s")
# What a streamed row keeps in memory: what filters read, and its card.
KEEP = ("id", "ts", "topic", "category", "usernames", "packages", "agent", "body_text", "html")


class Hub:
    def __init__(self, db: Database, render: Callable[[dict[str, Any]], str], *, keep: int = 2000,
                 chunk: int = 500, poll: float = 2.0, standby_poll: float = 0.2,
                 pulse_every: float = 5.0, pulse_reload: float = 600.0) -> None:
        self.db = db
        self.render = render
        self.chunk = chunk
        self.poll = poll
        self.standby_poll = standby_poll
        self.pulse_every = pulse_every
        self.pulse_reload = pulse_reload
        self.position = 0           # the newest archive id read
        self.floor = 0              # every row after it is in `recent`
        self.recent: deque[dict[str, Any]] = deque()
        self.keep = keep
        self.pulse = pulse.Pulse()
        self.charts: dict[str, str] = {}
        self.pulse_version = 0
        self.started = asyncio.Event()
        self.closing = asyncio.Event()  # set when the server stops: streams end, browsers reconnect elsewhere
        self.listening = False
        self._changed = asyncio.Event()
        self._pulse_dirty = True
        self._tasks: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()

    # -- lifetime ------------------------------------------------------------------

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._follow(), name="hub-follow"),
                       asyncio.create_task(self._tick(), name="hub-pulse")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _begin(self) -> None:
        """The position to stream from (the newest row now) and the pulse."""
        row = await self.db.one("SELECT coalesce(max(id), 0) AS n FROM msg_ids")
        self.position = self.floor = row["n"] if row else 0
        await self._reload_pulse()
        self.started.set()

    async def _follow(self) -> None:
        delay = 0.2
        while True:
            try:
                if not self.started.is_set():
                    await self._begin()
                await self._listen()
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, PoolTimeout, OSError) as exc:
                self.listening = False
                log.warning("live updates: database unavailable (%s); again in %.1f s",
                            " ".join(str(exc).split())[:200], delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            delay = 0.2

    async def _listen(self) -> None:
        conn = await psycopg.AsyncConnection.connect(self.db.dsn, autocommit=True,
                                                     application_name="debpulse-web-live")
        try:
            try:
                await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
            except psycopg.Error as exc:
                # A hot standby cannot LISTEN: poll it instead.
                log.info("live updates: polling every %g s (%s)", self.standby_poll, str(exc).strip())
                await conn.close()
                while True:
                    await self.catch_up()
                    await asyncio.sleep(self.standby_poll)
            self.listening = True
            log.info("live updates: listening on %s", NOTIFY_CHANNEL)
            await self.catch_up()  # what was stored while not listening
            while True:
                async for _ in conn.notifies(timeout=self.poll, stop_after=1):
                    break
                await self.catch_up()
        finally:
            self.listening = False
            await conn.close()

    # -- reading what is new ------------------------------------------------------------

    async def catch_up(self) -> int:
        """Read every row after `position`; wake the streams. Returns how many."""
        got = 0
        now = datetime.now(UTC)
        while True:
            rows = await self.db.all(AFTER_SQL, (self.position, self.chunk))
            for row in rows:
                row["html"] = self.render(row)
                self.recent.append({k: row[k] for k in KEEP})
                self.pulse.add(row["ts"], row["category"], now)
            if rows:
                self.position = rows[-1]["id"]
                got += len(rows)
                self._pulse_dirty = True
            while len(self.recent) > self.keep:
                self.floor = self.recent.popleft()["id"]
            if len(rows) < self.chunk:
                break
        if got:
            self._notify()
        return got

    def close_streams(self) -> None:
        """The server stops: every open stream ends (its browser reconnects)."""
        self.closing.set()
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def waiter(self) -> asyncio.Event:
        """Set at the next change (new rows or a new pulse)."""
        return self._changed

    async def since(self, after: int, search: Search, limit: int = 200) -> tuple[list[tuple[int, str]], int]:
        """The cards of rows after position `after` that match `search`, up
        to `limit`, and the position they reach."""
        if after >= self.floor:
            fresh = []
            for row in reversed(self.recent):
                if row["id"] <= after:
                    break
                fresh.append(row)
            fresh.reverse()
            matched = [(r["id"], r["html"]) for r in fresh if live.matches(search, r)]
            if len(matched) > limit:
                return matched[:limit], matched[limit - 1][0]
            return matched, max(after, self.position)
        # Behind what the hub keeps: from the database, the same filters as SQL.
        from .api import names_of

        upto = self.floor
        names: Names = await names_of(self.db, search)
        statement = since(search, names, after, upto, limit)
        if statement is None:
            return [], upto
        rows = await self.db.all(*statement)
        cards = [(r["id"], self.render(r)) for r in rows]
        return cards, (rows[-1]["id"] if len(rows) == limit else upto)

    # -- the pulse -----------------------------------------------------------------------

    async def _reload_pulse(self) -> None:
        now = datetime.now(UTC)
        windows = self.pulse.windows(now)
        for name, window in (("minute", self.pulse.minutes), ("hour", self.pulse.hours)):
            start, end = windows[name]
            rows = await self.db.tuples(pulse.COUNT_SQL, (name, start, end))
            window.replace((b, c, n) for b, c, n in rows)
        self._pulse_dirty = True
        self._render_pulse(now)

    def _render_pulse(self, now: datetime) -> None:
        self.pulse.minutes.trim(now)
        self.pulse.hours.trim(now)
        self.charts = {"minute": self.pulse.minute_chart(now), "hour": self.pulse.hour_chart(now)}
        self.pulse_version += 1
        self._pulse_dirty = False

    async def _tick(self) -> None:
        """Redraw the pulse when it changed or a minute began; reload it
        from the archive now and then."""
        minute = pulse.floor(datetime.now(UTC), pulse.MINUTE)
        next_reload = time.monotonic() + self.pulse_reload
        while True:
            await asyncio.sleep(self.pulse_every)
            if not self.started.is_set():
                continue
            now = datetime.now(UTC)
            try:
                if time.monotonic() >= next_reload:
                    next_reload = time.monotonic() + self.pulse_reload
                    await self._reload_pulse()
                    self._notify()
                    continue
            except (psycopg.Error, PoolTimeout) as exc:
                log.warning("pulse: reload failed (%s)", exc)
            if self._pulse_dirty or pulse.floor(now, pulse.MINUTE) != minute:
                minute = pulse.floor(now, pulse.MINUTE)
                self._render_pulse(now)
                self._notify()
