"""TOML configuration: /etc/debpulse/debpulse.toml plus conf.d/*.toml,
overridable by --config and DEBPULSE_CONFIG.  Never Python executed as config.

Every lookup names the key and the file, so a mistake is one clear line.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

from .errors import ConfigError

SYSTEM_CONFIG = Path("/etc/debpulse/debpulse.toml")

# Every table some debpulse program reads.  One file serves all the programs
# of a host, so each ignores the others' tables; a table that no program
# reads is a typo ([dakk]) that would silently leave the defaults in force.
KNOWN_TABLES = {"bus", "subscribe", "dns", "signer", "dak", "wannabuild", "debbugs", "git", "trigger", "bridge",
                "archive", "web", "irc", "notify", "desktop"}
T = TypeVar("T")
_MISSING: Any = object()


class Config:
    """Merged tables from one or more TOML files; remembers where each
    top-level section came from for error messages."""

    def __init__(self, data: dict[str, Any] | None = None, origin: dict[str, str] | None = None):
        self.data = data or {}
        self.origin = origin or {}

    def check_tables(self) -> None:
        for name in self.data:
            if name not in KNOWN_TABLES:
                close = difflib.get_close_matches(name, sorted(KNOWN_TABLES), n=1)
                hint = f" (did you mean [{close[0]}]?)" if close else ""
                raise ConfigError(f"{self.where(name)}: unknown table [{name}]{hint}")

    def where(self, section: str) -> str:
        return self.origin.get(section, "configuration")

    def section(self, name: str) -> Section:
        value = self.data.get(name, {})
        if not isinstance(value, dict):
            raise ConfigError(f"{self.where(name)}: [{name}] must be a table")
        return Section(name, value, self.where(name))


class Section:
    def __init__(self, name: str, data: dict[str, Any], where: str) -> None:
        self.name, self.data, self.where = name, data, where

    def get(self, key: str, kind: type[T] | tuple[type, ...], default: Any = _MISSING) -> T:
        """The value of `key`, checked against `kind`; `default` when absent
        (and required when no default is given)."""
        if key not in self.data:
            if default is _MISSING:
                raise ConfigError(f"{self.where}: [{self.name}] {key} is required")
            return default
        value = self.data[key]
        # bool is an int in Python; refuse true where a number is expected.
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise ConfigError(
                f"{self.where}: [{self.name}] {key} must be {names}, not {value!r}"
            )
        return value  # type: ignore[return-value]

    def strings(self, key: str, default: list[str] | None = None) -> list[str]:
        value = self.get(key, list, default if default is not None else [])
        if not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{self.where}: [{self.name}] {key} must be a list of strings")
        return list(value)

    def check_keys(self, allowed: set[str]) -> None:
        """Unknown keys are mistakes (a typo silently ignored is the worst kind)."""
        for key in self.data:
            if key not in allowed:
                raise ConfigError(f"{self.where}: [{self.name}] unknown key {key!r}")


def parse_toml(data: bytes, where: str) -> dict[str, Any]:
    """The tables of one TOML file's bytes (sans-I/O); ConfigError naming
    `where` when they are not TOML."""
    try:
        return tomllib.loads(data.decode())
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{where}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except RecursionError:  # tomllib recurses into nested arrays and inline tables
        raise ConfigError(f"{where}: values nested too deeply") from None


def _read(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except PermissionError:
        raise ConfigError(f"{path}: permission denied") from None
    return parse_toml(data, str(path))


def load_config(path: str | None = None) -> Config:
    """--config wins, then DEBPULSE_CONFIG, then the system file and conf.d.
    With none present the embedded defaults apply (an empty Config)."""
    explicit = path or os.environ.get("DEBPULSE_CONFIG")
    files: list[Path]
    if explicit:
        files = [Path(explicit)]
        confd = Path(explicit).parent / "conf.d"
    else:
        files = [SYSTEM_CONFIG] if SYSTEM_CONFIG.exists() else []
        confd = SYSTEM_CONFIG.parent / "conf.d"
    if confd.is_dir():
        files += sorted(confd.glob("*.toml"))
    return merge_config((str(f), _read(f)) for f in files)


def merge_config(files: Iterable[tuple[str, dict[str, Any]]]) -> Config:
    """One Config from the tables of each file (name, tables), later files
    over earlier ones table by table; unknown tables are refused."""
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for name, tables in files:
        for key, value in tables.items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
            origin[key] = name
    config = Config(merged, origin)
    config.check_tables()
    return config
