"""Bad input is moved aside with a one-line reason, counted and logged."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

from debpulse.emitters import metrics

log = logging.getLogger(__name__)


class Quarantine:
    """A directory of rejected inputs, each with `<name>.reason` beside it."""

    def __init__(self, directory: Path, adapter: str) -> None:
        self.directory = Path(directory)
        self.adapter = adapter
        self.directory.mkdir(parents=True, exist_ok=True)

    def _target(self, name: str) -> Path:
        target = self.directory / name
        n = 1
        while target.exists():
            target = self.directory / f"{name}.{n}"
            n += 1
        return target

    def _record(self, target: Path, reason: str, origin: str) -> Path:
        reason = " ".join(reason.split()) or "unknown reason"
        target.with_name(target.name + ".reason").write_text(reason + "\n")
        metrics.inc("debpulse_input_rejected_total", adapter=self.adapter,
                    help="inputs moved aside because they could not be parsed")
        log.warning("rejected %s: %s (kept as %s)", origin, reason, target)
        return target

    def move(self, path: Path, reason: str) -> Path:
        """Move `path` (a file we own, such as a Maildir entry) aside."""
        target = self._target(Path(path).name)
        try:
            os.rename(path, target)
        except OSError:  # another filesystem
            shutil.move(str(path), target)
        return self._record(target, reason, str(path))

    def keep(self, data: bytes, name: str, reason: str) -> Path:
        """Keep a copy of input that has no file of its own (stdin, a row)."""
        target = self._target(name or f"input-{time.time_ns()}")
        tmp = target.with_name("." + target.name + ".tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.rename(tmp, target)
        return self._record(target, reason, name or "stdin")
