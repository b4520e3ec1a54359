"""The processes the demo starts: each owned by its PID, its output kept in
a log file (or passed through with -v), and stopped with the signal it
expects (SIGTERM for debpulse commands, SIGINT for PostgreSQL)."""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("debpulse-demo")


class StepFailed(Exception):
    """A step of the demo did not work; the message says which and why."""


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path | None
    stop_signal: int

    def log_tail(self, lines: int = 6) -> str:
        if self.log is None or not self.log.exists():
            return ""
        text = self.log.read_text(errors="replace").strip().splitlines()[-lines:]
        return "".join(f"\n    | {line}" for line in text)


def command(script: str, module: str) -> list[str]:
    """How to run a debpulse command: the script beside this interpreter (a
    virtualenv), else the one on PATH, else its module through this Python."""
    beside = Path(sys.executable).parent / script
    if os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which(script)
    if found:
        return [found]
    return [sys.executable, "-c", f"import sys; from {module} import main; sys.exit(main())"]


class Children:
    def __init__(self, logs: Path, env: dict[str, str], *, verbose: bool = False) -> None:
        self.logs = logs
        self.env = env
        self.verbose = verbose
        self.running: list[Child] = []
        logs.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, argv: list[str], *, stop_signal: int = signal.SIGTERM, **popen: Any) -> Child:
        """Start a process that runs until the demo stops it (or exits by itself)."""
        log.info("%s: %s", name, shlex.join(argv))
        if self.verbose:
            logfile, out = None, sys.stderr
        else:
            logfile = self.logs / f"{name}.log"
            out = open(logfile, "ab")  # the child keeps its own copy; ours is closed below
        try:
            proc = subprocess.Popen(argv, env=popen.pop("env", self.env), stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=out,
                                    # Our own Ctrl-C stops them in order, not all at once.
                                    start_new_session=True, **popen)
        finally:
            if out is not sys.stderr:
                out.close()
        child = Child(name, proc, logfile, stop_signal)
        self.running.append(child)
        return child

    def run(self, name: str, argv: list[str], *, timeout: float = 20.0, **popen: Any) -> Child:
        """Run a command to its end; StepFailed (with its last log lines) unless it exits 0."""
        child = self.start(name, argv, **popen)
        try:
            code = child.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop(child)
            raise StepFailed(f"{name} did not finish within {timeout:.0f} s{child.log_tail()}") from None
        self.running.remove(child)
        if code != 0:
            raise StepFailed(f"{name} exited with {code}{child.log_tail()}")
        return child

    def stop(self, child: Child, timeout: float = 10.0) -> None:
        if child.proc.poll() is None:
            try:
                child.proc.send_signal(child.stop_signal)
                child.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()
            except ProcessLookupError:
                pass
        if child in self.running:
            self.running.remove(child)

    def stop_all(self) -> list[str]:
        """Stop what still runs, last started first; the names of those stopped."""
        stopped = []
        for child in reversed(list(self.running)):
            if child.proc.poll() is None:
                stopped.append(child.name)
            self.stop(child)
        return stopped


def wait_until_gone(marker: str, timeout: float) -> bool:
    """Wait until no process has `marker` in its command line (processes we
    did not start ourselves, such as the git hook's background job)."""
    deadline = time.monotonic() + timeout
    while True:
        if not any(marker in _cmdline(pid) for pid in _pids()):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()] if os.path.isdir("/proc") else []


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
