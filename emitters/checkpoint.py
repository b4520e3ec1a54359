"""Where a consumer stopped, per publisher stream, so that a restart with
--resume continues exactly there.

Saved by atomic rename on every acknowledgement (a killed process loses
nothing), fsynced at most once a second and on close (a power cut can
repeat at most that last second).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from .errors import ConfigError


class Checkpoint:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.streams: dict[str, dict[str, Any]] = {}
        # When the first run started: publishers first seen later are
        # repaired back to it.
        self.since: float | None = None
        self._last_sync = 0.0
        try:
            data = json.loads(self.path.read_text())
            self.streams = dict(data["streams"])
            since = data.get("since")
            self.since = float(since) if isinstance(since, int | float) and not isinstance(since, bool) else None
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{self.path}: unreadable checkpoint ({exc}); move it away to start afresh") from None

    def save(self, *, sync: bool = False) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name("." + self.path.name + ".tmp")
        with open(tmp, "w") as fh:
            json.dump({"since": self.since, "streams": self.streams}, fh, sort_keys=True)
            now = time.monotonic()
            if sync or now - self._last_sync > 1.0:
                fh.flush()
                os.fsync(fh.fileno())
                self._last_sync = now
        os.rename(tmp, self.path)
