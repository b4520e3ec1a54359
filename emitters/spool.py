"""Events waiting for the relay: one JSON file each, written atomically.

Short-lived publishers write here when no relay acknowledges in time; the
relay drains the directory when it starts and every few seconds after.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class Spool:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def put(self, item: dict[str, Any]) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.json"
        tmp = self.directory / f".{name}.tmp"
        with open(tmp, "w") as fh:
            json.dump(item, fh)
            fh.flush()
            os.fsync(fh.fileno())
        final = self.directory / name
        os.rename(tmp, final)
        return final

    def __iter__(self) -> Iterator[Path]:
        """Waiting files, oldest first."""
        try:
            names = sorted(n for n in os.listdir(self.directory) if n.endswith(".json") and not n.startswith("."))
        except FileNotFoundError:
            return iter(())
        return iter(self.directory / n for n in names)

    def __len__(self) -> int:
        return sum(1 for _ in self)
