"""Default places: /run/debpulse and /var/lib/debpulse as root, XDG otherwise."""

from __future__ import annotations

import os
from pathlib import Path


def runtime_dir() -> Path:
    if env := os.environ.get("DEBPULSE_RUNTIME_DIR"):
        return Path(env)
    if os.geteuid() == 0:
        return Path("/run/debpulse")
    base = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/debpulse-{os.geteuid()}"
    return Path(base) / "debpulse"


def state_dir() -> Path:
    if env := os.environ.get("DEBPULSE_STATE_DIR"):
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/debpulse")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "debpulse"


def relay_socket(runtime: Path | None = None) -> str:
    """The local socket short-lived publishers hand events to."""
    return f"ipc://{(runtime or runtime_dir()) / 'relay.sock'}"
