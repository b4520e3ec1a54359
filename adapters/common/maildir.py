"""A Maildir as a source: the backlog first, then new mail as it is delivered.

The position is the Maildir itself: a mail stays in new/ until its events
are handed over, then it moves to cur/ (as a mail reader would mark it
seen).  A restart therefore starts with exactly the mail not yet handled.

Delivery agents write a mail completely into tmp/ before it appears in
new/: exim and Python's mailbox rename it (IN_MOVED_TO), postfix and
procmail hard-link it (IN_CREATE only).  Both events mean "complete mail".
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import inotify_simple

from debpulse.emitters import metrics
from debpulse.emitters.backoff import Backoff
from debpulse.emitters.cli import EX_TEMPFAIL
from debpulse.emitters.errors import EmitError, InputError

from .quarantine import Quarantine

log = logging.getLogger(__name__)

_WATCH = inotify_simple.flags.MOVED_TO | inotify_simple.flags.CREATE
# How often a watching source looks at its stop flag (milliseconds).
_TICK_MS = 200


class MaildirSource:
    """Hands every mail delivered into `maildir` to `handle(path, data)`.

    `handle` returns normally once the mail's events are handed over (or
    when the mail is not for this adapter), raises InputError for a mail it
    cannot use, and lets EmitError through when the bus cannot take it now.
    """

    def __init__(
        self, maildir: Path, handle: Callable[[Path, bytes], None], quarantine: Quarantine, *, name: str
    ) -> None:
        self.maildir = Path(maildir)
        self.handle = handle
        self.quarantine = quarantine
        self.name = name
        self.new = self.maildir / "new"
        self.cur = self.maildir / "cur"
        for sub in ("new", "cur", "tmp"):
            (self.maildir / sub).mkdir(parents=True, exist_ok=True)

    def backlog(self) -> list[Path]:
        """Mail waiting in new/, oldest delivery first."""
        entries = []
        with os.scandir(self.new) as it:
            for entry in it:
                if entry.name.startswith("."):
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:  # taken by someone else meanwhile
                    continue
                if entry.is_file(follow_symlinks=False):
                    entries.append((st.st_mtime_ns, entry.name))
        entries.sort()
        return [self.new / name for _, name in entries]

    def drain(self) -> int:
        """One pass over new/; returns how many mails were handled.

        Stops at the first EmitError and raises it, leaving that mail and
        every later one in new/ so that order is kept on the next pass.
        """
        done = 0
        for path in self.backlog():
            if self._one(path):
                done += 1
        self._lag(None)  # the backlog is empty
        return done

    def _lag(self, path: Path | None) -> None:
        """How long the mail being handled has waited since delivery; it
        keeps growing while the bus cannot take it (the retries call again)."""
        age = 0.0
        if path is not None:
            try:
                age = max(0.0, time.time() - path.stat().st_mtime)
            except FileNotFoundError:
                pass
        metrics.set_gauge("debpulse_source_lag_seconds", age, adapter=self.name, source="maildir",
                          help="age of the input being handled (0: nothing waiting)")

    def _one(self, path: Path) -> bool:
        self._lag(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return False
        try:
            self.handle(path, data)
        except InputError as exc:
            self.quarantine.move(path, exc.reason)
            return True
        self._seen(path)
        metrics.inc("debpulse_mail_handled_total", adapter=self.name, help="mails taken from a Maildir")
        return True

    def _seen(self, path: Path) -> None:
        # Maildir's "info" suffix: version 2, no flags.
        name = path.name if ":2," in path.name else path.name + ":2,"
        try:
            os.rename(path, self.cur / name)
        except FileNotFoundError:
            log.warning("%s vanished before it could be moved to cur/", path)
            return
        _fsync_dir(self.cur)

    def run(self, stop: threading.Event | None = None, watching: Callable[[], None] | None = None) -> None:
        """Drain the backlog, then handle new mail as it arrives, until `stop`.
        `watching` is called once the watch is set and the backlog had its
        first pass (the program's readiness)."""
        stop = stop or threading.Event()
        with inotify_simple.INotify() as inotify:
            # Watch before the first pass so that nothing delivered during it is missed.
            inotify.add_watch(self.new, _WATCH)
            backoff = Backoff()
            pending = True
            log.info("watching %s", self.new)
            while not stop.is_set():
                if pending:
                    try:
                        self.drain()
                    except EmitError as exc:
                        metrics.inc("debpulse_emit_retries_total", adapter=self.name,
                                    help="hand-overs to the bus that failed and will be retried")
                        delay = backoff.delay()
                        log.warning("cannot hand over mail now (%s); retrying in %.1f s", exc, delay)
                        watching = _once(watching)
                        stop.wait(delay)
                        continue
                    backoff.reset()
                    pending = False
                    watching = _once(watching)
                # Any event (or a queue overflow) means: look at new/ again.
                pending = bool(inotify.read(timeout=_TICK_MS))


def _once(callback: Callable[[], None] | None) -> None:
    """Call `callback` if there is one; what is left to call next time (nothing)."""
    if callback is not None:
        callback()


def pipe_main(data: bytes, handle: Callable[[Path | None, bytes], None], quarantine: Quarantine) -> int:
    """One mail from an MTA pipe (`|debpulse-dak mail`).

    0 tells the MTA the mail is delivered: its events were handed over, or
    it was bad and is kept in the quarantine.  75 (EX_TEMPFAIL) makes the
    MTA keep it and retry later.
    """
    try:
        handle(None, data)
    except InputError as exc:
        quarantine.keep(data, f"stdin-{time.time_ns()}.eml", exc.reason)
        return 0
    except EmitError as exc:
        log.warning("cannot hand over mail now (%s); asking the MTA to retry", exc)
        return EX_TEMPFAIL
    except Exception:
        # A bug in debpulse must not make the MTA bounce the mail for good:
        # keep it queued until the bug is fixed.
        log.exception("cannot handle mail; asking the MTA to retry")
        return EX_TEMPFAIL
    return 0


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
