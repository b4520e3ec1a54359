"""dak's queue directories and removal log as a source.

- done/YYYY/MM/DD/<changes>: every upload accepted into a real suite
  (dak process-upload; `find_next_free` may add ".0", ".1" to the name);
- new/<changes>: uploads waiting in NEW;
- reject/<changes>.reason (+ the rejected files): rejections;
- removals.822: one stanza per removal, appended under a lock.

These files belong to dak: they are read, never moved.  What was handled
is kept in a position file: the names seen in the newest date folders, in
new/ and reject/ (forgotten once dak cleans them away), and an offset into
removals.822.  The first run starts from the present state; it does not
replay years of done/.

dak links a file into place (complete at once) or copies it (complete at
close); a file that does not parse yet and has just changed is given a few
seconds before it is called bad.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import inotify_simple

from debpulse.adapters.common.position import Position
from debpulse.adapters.common.quarantine import Quarantine
from debpulse.emitters import metrics
from debpulse.emitters.backoff import Backoff
from debpulse.emitters.errors import EmitError, InputError
from debpulse.emitters.event import Event

from . import events
from .changes import parse_changes, split_name
from .removals import parse_stanza, split_stanzas
from .signature import Keyring

log = logging.getLogger(__name__)

_F = inotify_simple.flags
_DIR_MASK = _F.CREATE | _F.MOVED_TO | _F.CLOSE_WRITE
_LOG_MASK = _F.CREATE | _F.MOVED_TO | _F.CLOSE_WRITE | _F.MODIFY
_CHANGES = re.compile(r"^(?P<name>.+\.changes)(?:\.\d+)?$")
_REASON = re.compile(r"^(?P<name>.+\.changes)\.reason(?:\.\d+)?$")
_TICK_MS = 200
_RESCAN_EVERY = 60.0  # a safety net for lost inotify events
_DAYS_KEPT = 3


class QueueSource:
    def __init__(
        self,
        emit: Callable[[Event], None],
        quarantine: Quarantine,
        position: Position,
        *,
        done: Path | None = None,
        new: Path | None = None,
        reject: Path | None = None,
        removals: Path | None = None,
        keyring: Keyring | None = None,
        settle: float = 2.0,
    ) -> None:
        self.emit = emit
        self.quarantine = quarantine
        self.position = position
        self.done, self.new, self.reject, self.removals = done, new, reject, removals
        self.keyring = keyring
        self.settle = settle
        self.state: dict[str, Any] = position.load({}) or {}
        self._deferred = False

    # -- one pass ---------------------------------------------------------

    def scan(self) -> int:
        """Handle everything new in every configured place; returns how many
        inputs were handled.  Raises EmitError (position kept) when the bus
        cannot take an event now."""
        self._deferred = False
        n = 0
        if self.done is not None:
            n += self._scan_done()
        if self.new is not None:
            n += self._scan_flat("new", self.new, _CHANGES, self._new_events)
        if self.reject is not None:
            n += self._scan_flat("reject", self.reject, _REASON, self._reject_events)
        if self.removals is not None:
            n += self._scan_removals()
        self._lag(None)  # nothing waiting (an EmitError leaves the age of what is stuck)
        return n

    @staticmethod
    def _lag(mtime: float | None) -> None:
        age = max(0.0, time.time() - mtime) if mtime is not None else 0.0
        metrics.set_gauge("debpulse_source_lag_seconds", age, adapter="dak", source="queue",
                          help="age of the input being handled (0: nothing waiting)")

    def _save(self) -> None:
        self.position.save(self.state)

    def _handle(self, path: Path, parse: Callable[[Path, bytes, os.stat_result], list[Event]], label: str) -> bool:
        """Emit the events of one queue file.  False when it should be
        looked at again later (vanished, or still being written)."""
        try:
            st = path.stat()
            data = path.read_bytes()
        except FileNotFoundError:  # dak rolled its transaction back
            return False
        self._lag(st.st_mtime)
        try:
            found = parse(path, data, st)
        except InputError as exc:
            if time.time() - st.st_ctime < self.settle:
                self._deferred = True
                return False
            self.quarantine.keep(data, f"{label}-{path.name}", exc.reason)
            return True
        for event in found:
            self.emit(event)
            metrics.inc("debpulse_dak_events_total", topic=event.topic, route="queue",
                        help="events dak's mail and queues gave")
        return True

    # -- done/YYYY/MM/DD ---------------------------------------------------

    def _tree(self, since: str) -> tuple[list[Path], list[str]]:
        """The year and month folders from `since` on (to watch for new
        ones) and the date folders ("YYYY/MM/DD") from `since` on, oldest first."""
        assert self.done is not None
        folders: list[Path] = []
        days: list[str] = []
        for year in _numbered(self.done, 4):
            if year < since[:4]:
                continue
            folders.append(self.done / year)
            for month in _numbered(self.done / year, 2):
                if f"{year}/{month}" < since[:7]:
                    continue
                folders.append(self.done / year / month)
                for day in _numbered(self.done / year / month, 2):
                    key = f"{year}/{month}/{day}"
                    if key >= since:
                        folders.append(self.done / key)
                        days.append(key)
        return folders, days

    def _day_dirs(self, since: str) -> list[str]:
        return self._tree(since)[1]

    def watched_dirs(self) -> list[Path]:
        dirs: list[Path] = []
        if self.done is not None:
            since = self.state.get("done", {}).get("since", "")
            dirs += [self.done, *self._tree(since)[0]]
        dirs += [d for d in (self.new, self.reject) if d is not None]
        return dirs

    def _scan_done(self) -> int:
        assert self.done is not None
        state = self.state.get("done")
        if state is None:
            # First run: what is there now counts as seen.
            days = self._day_dirs("")[-_DAYS_KEPT:]
            state = {
                "since": days[0] if days else time.strftime("%Y/%m/%d"),
                "days": {d: sorted(os.listdir(self.done / d)) for d in days},
            }
            self.state["done"] = state
            self._save()
            log.info("done/: starting from the present (%d date folders taken as seen)", len(days))
            return 0
        n = 0
        for day in self._day_dirs(state["since"]):
            seen = set(state["days"].setdefault(day, []))
            for path in _arrival_order(self.done / day):
                if path.name in seen or not _CHANGES.match(path.name):
                    continue
                if self._handle(path, self._done_events, "done"):
                    state["days"][day] = sorted(seen | {path.name})
                    seen.add(path.name)
                    self._save()
                    n += 1
        # dak writes into today's folder; a few days back covers a clock
        # change or a run across midnight.
        kept = sorted(state["days"])[-_DAYS_KEPT:]
        if kept and kept != sorted(state["days"]):
            state["days"] = {d: state["days"][d] for d in kept}
            state["since"] = kept[0]
            self._save()
        return n

    def _done_events(self, path: Path, data: bytes, st: os.stat_result) -> list[Event]:
        changes = parse_changes(data, self.keyring)
        name = _CHANGES.match(path.name)["name"]  # type: ignore[index]
        return [events.accepted(changes, name, suite, route="queue", origin=str(path)) for suite in changes.suites]

    # -- new/ and reject/ --------------------------------------------------

    def _scan_flat(self, what: str, directory: Path, pattern: re.Pattern[str],
                   parse: Callable[[Path, bytes, os.stat_result], list[Event]]) -> int:
        try:
            present = [p for p in _arrival_order(directory) if pattern.match(p.name)]
        except FileNotFoundError:
            if what not in self.state:
                self.state[what] = []  # when dak makes it, all of it is new
                self._save()
            return 0
        if what not in self.state:
            self.state[what] = sorted(p.name for p in present)
            self._save()
            log.info("%s/: starting from the present (%d files taken as seen)", what, len(present))
            return 0
        seen = set(self.state[what])
        n = 0
        for path in present:
            if path.name in seen:
                continue
            if self._handle(path, parse, what):
                seen.add(path.name)
                self.state[what] = sorted(seen)
                self._save()
                n += 1
        # Forget what dak has cleaned away, so the list stays small.
        names = {p.name for p in present}
        if seen - names:
            self.state[what] = sorted(seen & names)
            self._save()
        return n

    def _new_events(self, path: Path, data: bytes, st: os.stat_result) -> list[Event]:
        changes = parse_changes(data, self.keyring)
        name = _CHANGES.match(path.name)["name"]  # type: ignore[index]
        return [events.new(name, changes.fields(), day=events.utc_day(st.st_ctime), route="queue",
                           origin=str(path))]

    def _reject_events(self, path: Path, data: bytes, st: os.stat_result) -> list[Event]:
        name = _REASON.match(path.name)["name"]  # type: ignore[index]
        reason, rejected_by = reason_file(data)
        if not reason:
            if time.time() - st.st_ctime < self.settle:  # caught between dak's create and write
                raise InputError(f"{path.name} is empty")
            reason = "(no reason given)"
        fields: dict[str, Any] | None = None
        try:
            # A rejected upload may be broken or badly signed: that is often
            # why it was rejected.  Take what it tells, do not judge it.
            changes = parse_changes((path.parent / name).read_bytes())
            fields = events.name_fields(changes.source, changes.version, changes.architectures)
            fields.update(suites=changes.suites, changed_by=changes.changed_by, maintainer=changes.maintainer)
        except (OSError, InputError):
            parts = split_name(name)
            if parts is None:
                raise InputError(f"cannot tell the rejected upload from {name!r}") from None
            fields = events.name_fields(parts[0], parts[1])
        return [events.rejected(name, fields, reason, day=events.utc_day(st.st_ctime), route="queue",
                                rejection="manual" if rejected_by else "automatic", rejected_by=rejected_by,
                                origin=str(path))]

    # -- removals.822 --------------------------------------------------------

    def _scan_removals(self) -> int:
        assert self.removals is not None
        try:
            st = os.stat(self.removals)
        except FileNotFoundError:
            if "removals" not in self.state:
                # No log yet: when dak starts one, all of it is new.
                self.state["removals"] = {"inode": None, "offset": 0}
                self._save()
            return 0
        pos = self.state.get("removals")
        if pos is None:
            self.state["removals"] = {"inode": st.st_ino, "offset": st.st_size}
            self._save()
            log.info("%s: starting from the present end (%d bytes)", self.removals, st.st_size)
            return 0
        if pos["inode"] != st.st_ino or st.st_size < pos["offset"]:
            log.info("%s was replaced or truncated: reading it from the start", self.removals)
            pos = {"inode": st.st_ino, "offset": 0}
        if st.st_size == pos["offset"]:
            return 0
        self._lag(st.st_mtime)
        with open(self.removals, "rb") as fh:
            fh.seek(pos["offset"])
            buffer = fh.read()
        n = 0
        start = pos["offset"]
        for stanza, end in split_stanzas(buffer):
            where = f"{self.removals}@{start + end - len(stanza) - 1}"
            try:
                event = parse_stanza(stanza, origin=where)
            except InputError as exc:
                self.quarantine.keep(stanza, f"removals.822-at-{start}", exc.reason)
            else:
                self.emit(event)
                metrics.inc("debpulse_dak_events_total", topic=event.topic, route="queue",
                            help="events dak's mail and queues gave")
            pos = {"inode": st.st_ino, "offset": start + end}
            self.state["removals"] = pos
            self._save()
            n += 1
        return n

    # -- the loop --------------------------------------------------------------

    def run(self, stop: threading.Event | None = None, watching: Callable[[], None] | None = None) -> None:
        """Scan, then scan again whenever something changes, until `stop`.
        `watching` is called once the watches are set and the first scan
        is done (the program's readiness)."""
        stop = stop or threading.Event()
        watches: dict[Path, int] = {}
        with inotify_simple.INotify() as inotify:
            backoff = Backoff()
            while not stop.is_set():
                self._rewatch(inotify, watches)
                try:
                    self.scan()
                except EmitError as exc:
                    metrics.inc("debpulse_emit_retries_total", adapter="dak",
                                help="hand-overs to the bus that failed and will be retried")
                    delay = backoff.delay()
                    log.warning("cannot hand over queue events now (%s); retrying in %.1f s", exc, delay)
                    if watching is not None:
                        watching, call = None, watching
                        call()
                    stop.wait(delay)
                    continue
                backoff.reset()
                if watching is not None:
                    watching, call = None, watching
                    call()
                # A folder made during the scan may hold files made before its
                # watch existed: watch it, then scan once more.
                if not self._rewatch(inotify, watches):
                    self._wait(inotify, watches, stop)

    def _wait(self, inotify: inotify_simple.INotify, watches: dict[Path, int], stop: threading.Event) -> None:
        until = time.monotonic() + (self.settle if self._deferred else _RESCAN_EVERY)
        # The removal log lives among other files (dak's web directory):
        # only changes to the log itself count there.
        log_dir = self.removals.parent if self.removals is not None else None
        log_wd = watches.get(log_dir) if log_dir is not None and log_dir not in self.watched_dirs() else None
        while not stop.is_set() and time.monotonic() < until:
            for ev in inotify.read(timeout=_TICK_MS):
                if ev.wd == log_wd and self.removals is not None and ev.name != self.removals.name:
                    continue
                return

    def _rewatch(self, inotify: inotify_simple.INotify, watches: dict[Path, int]) -> bool:
        """Watch what is wanted now; True when a new watch was added."""
        added = False
        wanted = {d: _DIR_MASK for d in self.watched_dirs()}
        if self.removals is not None:
            wanted[self.removals.parent] = wanted.get(self.removals.parent, 0) | _LOG_MASK
        for path in list(watches):
            if path not in wanted:
                try:
                    inotify.rm_watch(watches.pop(path))
                except OSError:  # the folder is gone, and its watch with it
                    pass
        for path, mask in wanted.items():
            if path not in watches:
                try:
                    watches[path] = inotify.add_watch(path, mask)
                    added = True
                except FileNotFoundError:
                    continue
        return added


def reason_file(data: bytes) -> tuple[str, str | None]:
    """The reason in a reject/<changes>.reason file ("" if none), and who rejected it.

    dak writes the reason of an automatic rejection as it is; a manual one
    (an ftpmaster's comment in process-policy) starts with a "From: <who>"
    line and a blank line, which dak itself strips before mailing it."""
    text = data.decode("utf-8", errors="replace").replace("\r\n", "\n")
    m = re.match(r"\AFrom: ([^\n]+)\n\n", text)
    if m:
        return text[m.end():].strip(), m.group(1).strip()
    return text.strip(), None


def _numbered(directory: Path, width: int) -> list[str]:
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(n for n in names if len(n) == width and n.isdigit())


def _arrival_order(directory: Path) -> list[Path]:
    entries = []
    with os.scandir(directory) as it:
        for entry in it:
            try:
                if entry.is_file(follow_symlinks=False):
                    entries.append((entry.stat(follow_symlinks=False).st_ctime_ns, entry.name))
            except FileNotFoundError:
                continue
    return [directory / name for _, name in sorted(entries)]
