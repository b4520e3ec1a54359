"""Message types of wanna-build's topics."""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import quote

from debpulse.emitters.messages import Message, register

from .rows import BUILD_COMPLETE, STATE_UPDATE

_TEXT = {"type": "string", "minLength": 1}
_OPTIONAL_TEXT = {"type": ["string", "null"]}
_TIME = {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$"}
_COUNT = {"type": ["integer", "null"], "minimum": 0}


def _status_link(package: str) -> str:
    return f"https://buildd.debian.org/status/package.php?p={quote(package, safe='')}"


def _duration(seconds: int) -> str:
    """2m31s, 1h02m, 45s: what buildd.debian.org's build times read like."""
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class _WannaBuildMessage(Message):
    def _what(self) -> str:
        b = self.body
        return f"{b.get('package')} {b.get('version') or '(no version)'}"

    def link(self) -> str | None:
        package = self.body.get("package")
        return _status_link(package) if package else None

    def packages(self) -> list[str]:
        package = self.body.get("package")
        return [package] if package else []


@register
class StateUpdate(_WannaBuildMessage):
    """A package changed state on one architecture (a transactions row)."""

    topic: ClassVar[str] = STATE_UPDATE
    body_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "required": ["architecture", "package", "version", "suite", "old_state", "new_state", "action",
                     "user", "real_user", "time"],
        "properties": {
            "architecture": _TEXT,
            "package": _TEXT,
            "version": _OPTIONAL_TEXT,
            "suite": _TEXT,
            "old_state": _OPTIONAL_TEXT,  # null for a package new to wanna-build
            "new_state": _TEXT,
            "action": _OPTIONAL_TEXT,     # --take, --set-built, --give-back, --merge-v3: ...
            "user": _OPTIONAL_TEXT,       # set_user, who the change is recorded for
            "real_user": _OPTIONAL_TEXT,  # the Unix user who ran wanna-build
            "time": _TIME,
        },
        "additionalProperties": False,
    }

    def summary(self) -> str:
        b = self.body
        old = b.get("old_state")
        change = f"{old} → {b.get('new_state')}" if old else f"{b.get('new_state')} (new)"
        who = f" by {b['user']}" if b.get("user") else ""
        return f"{self._what()} on {b.get('architecture')} ({b.get('suite')}): {change}{who}"

    def usernames(self) -> list[str]:
        names = [self.body.get("user"), self.body.get("real_user")]
        return sorted({n for n in names if n})

    def agent(self) -> str | None:
        return self.body.get("user") or self.body.get("real_user")


@register
class BuildComplete(_WannaBuildMessage):
    """A build finished on one architecture (a pkg_history row)."""

    topic: ClassVar[str] = BUILD_COMPLETE
    body_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "required": ["architecture", "package", "version", "suite", "result", "build_time", "disk_space",
                     "builder", "time"],
        "properties": {
            "architecture": _TEXT,
            "package": _TEXT,
            "version": _TEXT,
            "suite": _TEXT,
            "result": _TEXT,             # successful, failed, ...
            "build_time": _COUNT,        # seconds
            "disk_space": _COUNT,        # bytes
            "builder": _OPTIONAL_TEXT,
            "time": _TIME,
        },
        "additionalProperties": False,
    }

    def summary(self) -> str:
        b = self.body
        where = f"on {b.get('architecture')} ({b.get('suite')})"
        took = b.get("build_time")
        result = b.get("result")
        if result == "successful":
            text = f"{self._what()} built successfully {where}"
            return text + (f" in {_duration(took)}" if took is not None else "")
        if result == "failed":
            text = f"{self._what()} failed to build {where}"
            return text + (f" after {_duration(took)}" if took is not None else "")
        return f"{self._what()} build {where}: {result}"

    def usernames(self) -> list[str]:
        builder = self.body.get("builder")
        return [builder] if builder else []

    def agent(self) -> str | None:
        return self.body.get("builder")
