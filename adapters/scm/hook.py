"""The post-receive source: pushes -> Events -> the emitter.

The installed hook (install.py) is a few lines of sh that write each push's
stdin into `<git dir>/debpulse/pending/` and start `debpulse-git hook
--pending` in the background: the push waits for neither Python nor the
bus.  This module drains that directory oldest first; each file is one push,
locked while it is worked on, and removed once all of its events are handed
over.  A file's progress (events handed over so far) is kept beside it, so a
retry resumes instead of repeating.
"""

from __future__ import annotations

import errno
import fcntl
import getpass
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from debpulse.adapters.common.position import Position
from debpulse.emitters.emitter import Emitter
from debpulse.emitters.errors import EmitError, InputError
from debpulse.emitters.event import Event

from . import push
from .commits import GitError, Repository, gather
from .gitobjects import parse_refs
from .refs import RefUpdate, parse_line, split_lines, split_saved

log = logging.getLogger("debpulse.git")

STATE = "debpulse"  # under the git directory: pending/, rejected/, hook.log


def repo_name(git_dir: Path, repo_root: Path | None = None) -> str:
    """"hello" for /srv/git/hello.git; "debian/hello" under repo_root /srv/git;
    the work tree's name for a non-bare repository's .git."""
    path = git_dir.resolve()
    if path.name == ".git":
        path = path.parent
    name = path.name
    if repo_root is not None:
        try:
            name = path.relative_to(repo_root.resolve()).as_posix()
        except ValueError:
            pass
    return name[:-4] if name.endswith(".git") else name


def pusher() -> str:
    """Who pushed: GitLab (GL_USERNAME) and gitolite (GL_USER) say so, else the
    account the hook runs as (fedmsg's choice)."""
    for var in ("GL_USERNAME", "GL_USER", "REMOTE_USER"):
        if value := os.environ.get(var):
            return value
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry
        return "unknown"


@dataclass
class HookSettings:
    git_dir: Path
    repo: str
    web_url: str | None      # template with {repo}, e.g. https://salsa.debian.org/{repo}
    max_commits: int = push.DEFAULT_MAX_COMMITS

    @property
    def state(self) -> Path:
        return self.git_dir / STATE


class PushSource:
    """Turns one push's stdin into events and hands them over."""

    def __init__(self, settings: HookSettings, emitter: Emitter) -> None:
        self.settings = settings
        self.emitter = emitter
        self.repo = Repository(settings.git_dir)
        self._quarantine: Any = None

    @property
    def quarantine(self) -> Any:
        """The rejected/ directory, imported on first use: the quarantine
        counts into the metrics registry, whose HTTP server costs a push's
        background job more start-up time than all of its own work."""
        if self._quarantine is None:
            from debpulse.adapters.common.quarantine import Quarantine

            self._quarantine = Quarantine(self.settings.state / "rejected", "git")
        return self._quarantine

    def context(self) -> push.Context:
        s = self.settings
        web = s.web_url.format(repo=s.repo) if s.web_url else None
        return push.Context(repo=s.repo, path=str(s.git_dir.resolve()), agent=pusher(), web_url=web,
                            max_commits=s.max_commits)

    def updates(self, data: bytes, name: str) -> list[RefUpdate]:
        """Good lines; each bad one is kept in rejected/ with its reason."""
        out = []
        for n, line in enumerate(split_lines(data), 1):
            try:
                out.append(parse_line(line))
            except InputError as exc:
                self.quarantine.keep(line + b"\n", f"{name}.line{n}", exc.reason)
        return out

    def events(self, data: bytes, name: str) -> list[Event]:
        """`data` is hook stdin, or a push the installed hook saved with the
        refs of that moment."""
        stdin, refs = split_saved(data)
        updates = self.updates(stdin, name)
        if not updates:
            return []
        snapshot = parse_refs(refs) if refs is not None else None
        facts = gather(self.repo, updates, self.settings.max_commits, snapshot)
        return push.events(self.context(), facts, origin=f"{self.settings.repo}:{name}")

    def handle(self, data: bytes, name: str, position: Position | None = None) -> int:
        """Emit the events of one push; returns how many there were."""
        return self.deliver(self.events(data, name), name, position)

    def deliver(self, evs: list[Event], name: str, position: Position | None = None) -> int:
        """Hand `evs` over.  With a position, events already handed over (by
        an earlier, failed attempt) are skipped and progress is stored."""
        done = position.load(0) if position else 0
        emit_many = getattr(self.emitter, "emit_many", None)
        if emit_many is not None:  # the relay client: the whole push in one round trip
            emit_many(evs[done:])
            if position:
                position.save(len(evs))
        else:
            for i, ev in enumerate(evs[done:], done):
                self.emitter.emit(ev)
                if position:
                    position.save(i + 1)
        log.info("%s: %d event(s) handed over", name, len(evs) - done)
        return len(evs)


@contextmanager
def _locked(path: Path) -> Iterator[bytes | None]:
    """The content of `path` while holding its lock, or None when another
    process holds it or has already finished it."""
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        yield None
        return
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                yield None
                return
            raise
        try:
            same = os.stat(path).st_ino == os.fstat(fh.fileno()).st_ino
        except FileNotFoundError:
            same = False
        yield fh.read() if same else None


def pending_files(pending: Path) -> list[Path]:
    """Saved pushes, oldest first (by modification time: the hook names
    them by process id, which says nothing of order)."""
    found = []
    try:
        for entry in os.scandir(pending):
            if entry.name.startswith(".") or not entry.is_file():
                continue
            try:
                found.append((entry.stat().st_mtime_ns, entry.name, Path(entry.path)))
            except FileNotFoundError:  # taken by another job meanwhile
                continue
    except FileNotFoundError:
        return []
    return [path for _, _, path in sorted(found)]


def drain(source: PushSource, pending: Path, *, retries: int = 3,
          sleep: Callable[[float], None] = time.sleep) -> tuple[int, int]:
    """Hand over every pending push, oldest first.  Returns (pushes done,
    pushes left).  An EmitError stops the drain after a few retries with
    backoff and leaves the rest for the next push (or a manual drain)."""
    done = 0
    files = pending_files(pending)
    for i, path in enumerate(files):
        with _locked(path) as data:
            if data is None:
                continue
            position = Position(path.with_name(f".{path.name}.pos"))
            try:
                evs = source.events(data, path.name)
            except (GitError, InputError) as exc:  # a broken repository or saved push: set it aside
                source.quarantine.move(path, getattr(exc, "reason", str(exc)))
            else:
                error = _deliver(source, evs, path.name, position, retries, sleep)
                if error is not None:
                    log.error("bus unavailable, %d push(es) kept in %s: %s", len(files) - i, pending, error)
                    return done, len(files) - i
            path.unlink(missing_ok=True)
            position.path.unlink(missing_ok=True)
            done += 1
    return done, 0


def _deliver(source: PushSource, evs: list[Event], name: str, position: Position, retries: int,
             sleep: Callable[[float], None]) -> EmitError | None:
    """Deliver with a few retries and backoff; the last error if all failed."""
    for attempt in range(retries + 1):
        try:
            source.deliver(evs, name, position)
            return None
        except EmitError as exc:
            if attempt == retries:
                return exc
            sleep(0.5 * 2**attempt)
    return None


def keep_pending(pending: Path, data: bytes) -> Path:
    """Store a push for a later drain (the sync hook could not hand it over)."""
    pending.mkdir(parents=True, exist_ok=True)
    name = f"push.{os.getpid()}.{time.time_ns()}"
    tmp = pending / f".{name}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    target = pending / name
    os.rename(tmp, target)
    return target


def trim_log(path: Path, limit: int = 1 << 20) -> None:
    """Keep the background hook's log bounded: one old generation."""
    try:
        if path.stat().st_size > limit:
            os.replace(path, path.with_name(path.name + ".1"))
    except FileNotFoundError:
        pass
