"""A source's durable position: a small JSON document replaced atomically.

Write to a temporary file, fsync, rename, fsync the directory: after a
crash the file holds either the old or the new position, never half of one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from debpulse.emitters.errors import ConfigError


class Position:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self, default: Any = None) -> Any:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return default
        except (OSError, ValueError) as exc:
            # A position we cannot read must not silently become "start over"
            # (that repeats) or "start now" (that skips).
            raise ConfigError(f"{self.path}: cannot read the stored position: {exc}") from None

    def save(self, value: Any) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name("." + self.path.name + ".tmp")
        with open(tmp, "w") as fh:
            json.dump(value, fh, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.rename(tmp, self.path)
        dirfd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dirfd)
        finally:
            os.close(dirfd)
