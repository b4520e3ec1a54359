"""TOML configuration: /etc/debpulse/debpulse.toml plus conf.d/*.toml,
overridable by --config and DEBPULSE_CONFIG.  Never Python executed as config.

Every lookup names the key and the file, so a mistake is one clear line.

Each table is declared once, next to the code that reads it: a `Table` of
`Key`s, each with its type, its default and a line for the admin.  The
reader takes both from the declaration (`TABLE.read(config)["key"]`), and
the manual's configuration reference is written from the same registry,
so neither can drift from the code.
"""

from __future__ import annotations

import difflib
import importlib
import os
import tomllib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, TypeVar

from .errors import ConfigError

SYSTEM_CONFIG = Path("/etc/debpulse/debpulse.toml")

# Every table some debpulse program reads.  One file serves all the programs
# of a host, so each ignores the others' tables; a table that no program
# reads is a typo ([dakk]) that would silently leave the defaults in force.
# Spelled out here rather than taken from the registry, which would mean
# importing every program into each (the git hook runs at every push);
# tests/manual checks that the two agree.
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

    def check_keys(self, allowed: Collection[str]) -> None:
        """Unknown keys are mistakes (a typo silently ignored is the worst kind)."""
        for key in self.data:
            if key not in allowed:
                raise ConfigError(f"{self.where}: [{self.name}] unknown key {key!r}")


# --- declarations ------------------------------------------------------------

# How the reference names the types a value may have.
TYPE_WORDS = {str: "string", int: "integer", float: "number", bool: "boolean", dict: "table", list: "list"}


@dataclass(frozen=True)
class Required:
    """No default: the key must be given (`when`: only in some case, which
    the reader knows; the reference says which)."""

    when: str = ""


REQUIRED = Required()


@dataclass(frozen=True)
class Derived:
    """A default that depends on something else (the state directory,
    another key, what the program was started with).  `words` say what, for
    the reference; `compute(values)` works it out from the table as read.
    Without `compute` the value is None and the reader works it out, from
    what it knows beyond the table.  `if_empty`: an empty string means the
    default too."""

    words: str
    compute: Callable[[Values], Any] | None = None
    if_empty: bool = False


@dataclass(frozen=True)
class Key:
    """One key of a table: the types its value may have, its default
    (REQUIRED, a value, or Derived) and what it means, in one line."""

    kind: type | tuple[type, ...]
    default: Any = REQUIRED
    help: str = ""
    items: type | None = None      # str: a list's items must be strings
    table: Table | str | None = None  # the value is this table (a list: an array of them), or its name
    named: bool = False            # ... or a table of them by name ([irc.networks.NAME])
    shows: str | None = None       # the type in words, where the types say too little

    @property
    def kinds(self) -> tuple[type, ...]:
        return self.kind if isinstance(self.kind, tuple) else (self.kind,)

    @property
    def sub(self) -> Table | None:
        """The table the value is, if it is one."""
        return TABLES[self.table] if isinstance(self.table, str) else self.table

    def kind_words(self) -> str:
        if self.shows:
            return self.shows
        if (sub := self.sub) is not None:
            if self.named:
                return f"tables by name, `{sub.heading}`"
            heading = sub.heading if sub.heading.startswith("[") else sub.name
            return f"array of tables, `{heading}`" if list in self.kinds else f"table, `{heading}`"
        kinds = self.kinds
        if kinds == (int, float):
            return "number"
        words = [("list of strings" if k is list and self.items is str else TYPE_WORDS.get(k, k.__name__))
                 for k in kinds]
        return " or ".join(words)

    def default_words(self) -> str:
        d = self.default
        if isinstance(d, Required):
            return f"required {d.when}".rstrip()
        if isinstance(d, Derived):
            return d.words
        if d is None:
            return "not set"
        return toml_value(d)


def toml_value(value: Any) -> str:
    """A value as it is written in TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}" if value else "{}"
    return str(value)


# Every declared table by name, filled as the modules that read them are imported.
TABLES: dict[str, Table] = {}


class Table:
    """A table's declaration, registered in TABLES.

    `read_by`: the programs that read it; `own_file`: the file it is
    written in, when not the configuration (debpulse.toml and conf.d);
    `title`: how the reference heads it, when not [name]; `array`: written
    as [[name]], one table per entry."""

    def __init__(self, name: str, keys: dict[str, Key], doc: str, *, read_by: Sequence[str],
                 own_file: str | None = None, title: str | None = None, array: bool = False) -> None:
        if name in TABLES:
            raise ValueError(f"table [{name}] declared twice")
        self.name, self.keys, self.doc = name, keys, doc
        self.read_by, self.own_file, self.array = tuple(read_by), own_file, array
        self.title = title
        TABLES[name] = self

    def __repr__(self) -> str:
        return f"Table({self.name!r})"

    @property
    def heading(self) -> str:
        return self.title or (f"[[{self.name}]]" if self.array else f"[{self.name}]")

    def read(self, config: Config) -> Values:
        """The table of `config`, its keys checked."""
        return self.wrap(config.section(self.name))

    def wrap(self, section: Section, parent: Values | None = None) -> Values:
        """A table read by hand (inside another, or in a file of its own);
        `parent`: the table it is in, for defaults taken from there."""
        section.check_keys(self.keys)
        return Values(self, section, parent)

    def unknown(self, data: Mapping[str, Any]) -> list[str]:
        """Keys of `data` not declared (for readers with messages of their own)."""
        return [k for k in data if k not in self.keys]

    def default(self, key: str) -> Any:
        return self.keys[key].default


class Values:
    """A table as read: each value checked against its declared type, the
    declared default where it is absent."""

    def __init__(self, table: Table, section: Section, parent: Values | None = None) -> None:
        self.table, self.section, self.parent = table, section, parent

    @property
    def name(self) -> str:
        return self.section.name

    @property
    def where(self) -> str:
        return self.section.where

    @property
    def data(self) -> dict[str, Any]:
        return self.section.data

    def given(self, key: str) -> bool:
        """Whether the file gives `key` (a declared one)."""
        if key not in self.table.keys:
            raise KeyError(f"[{self.table.name}] {key} is not declared")
        return key in self.data

    def __getitem__(self, key: str) -> Any:
        declared = self.table.keys[key]
        default = declared.default
        if isinstance(default, Derived):
            if key not in self.data or (default.if_empty and self.data[key] == ""):
                return default.compute(self) if default.compute else None
            value = self.section.get(key, declared.kind)
        elif isinstance(default, Required):
            value = self.section.get(key, declared.kind)
        else:
            value = self.section.get(key, declared.kind, default)
        if isinstance(value, list):
            if declared.items is str and not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{self.where}: [{self.name}] {key} must be a list of strings")
            return list(value)
        return dict(value) if isinstance(value, dict) else value

    def pick(self, flag: Any, key: str) -> Any:
        """The command line's value when it gave one, else the table's."""
        return flag if flag is not None else self[key]


def declared_tables() -> dict[str, Table]:
    """Every table of every program: their modules imported (the console
    scripts' modules, and through them the readers'), then the registry."""
    for script in entry_points(group="console_scripts"):
        if script.value.startswith("debpulse."):
            importlib.import_module(script.module)
    return dict(TABLES)


def top_tables(tables: dict[str, Table]) -> set[str]:
    """The names of the tables at the top of debpulse.toml: not inside
    another table, not in a file of their own."""
    inside = {sub.name for t in tables.values() for k in t.keys.values() if (sub := k.sub) is not None}
    return {name for name, t in tables.items() if t.own_file is None and name not in inside}


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
