"""Signer policy: which key may publish which topics.

TOML, either a file of its own or inside the main configuration:

    [[signer]]
    name = "ftp-master relay"
    fingerprint = "0123...CDEF"
    topics = ["org.debian.*.dak.#", "org.debian.*.git.#"]

`*` is one dotted part, `#` any number of parts.  A key that is in the
keyring but not in any [[signer]] may publish nothing, unless the policy is
empty: then every key in the keyring may publish every topic.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import Config, Key, Required, Table, parse_toml
from .errors import ConfigError
from .topics import topic_matches

SIGNER = Table("signer", {
    "fingerprint": Key(str, Required(), "the signing key's fingerprint, 40 or 64 hex digits (spaces allowed)"),
    "topics": Key(list, ["#"], "the topics this key may publish: patterns, `*` one dotted part, `#` any number",
                  items=str),
    "name": Key(str, "", "who the key is, for people reading the policy"),
}, "The signer policy: which key may publish which topics.  A key in the keyring but in no `[[signer]]` may "
   "publish nothing, unless there are no `[[signer]]` tables at all: then every key may publish every topic.  "
   "The tables may be in a policy file of their own instead (`[subscribe] policy`).",
   read_by=("every subscriber",), array=True)


@dataclass(frozen=True)
class SignerRule:
    fingerprint: str
    topics: tuple[str, ...]
    name: str = ""


class Policy:
    def __init__(self, rules: list[SignerRule] | None = None) -> None:
        self.rules: dict[str, SignerRule] = {r.fingerprint: r for r in rules or []}

    @property
    def open(self) -> bool:
        return not self.rules

    def allows(self, fingerprint: str, topic: str) -> bool:
        if self.open:
            return True
        rule = self.rules.get(fingerprint.upper())
        return rule is not None and any(topic_matches(p, topic) for p in rule.topics)

    @classmethod
    def from_tables(cls, tables: Any, where: str) -> Policy:
        if not isinstance(tables, list):
            raise ConfigError(f"{where}: [[signer]] must be an array of tables")
        rules = []
        for n, t in enumerate(tables, 1):
            if not isinstance(t, dict):
                raise ConfigError(f"{where}: signer #{n} must be a table")
            fpr = t.get("fingerprint")
            topics = t.get("topics", SIGNER.default("topics"))
            if not isinstance(fpr, str) or len(fpr.replace(" ", "")) not in (40, 64):
                raise ConfigError(f"{where}: signer #{n}: fingerprint must be a 40 or 64 hex digit string")
            if not isinstance(topics, list) or not all(isinstance(p, str) for p in topics):
                raise ConfigError(f"{where}: signer #{n}: topics must be a list of strings")
            unknown = SIGNER.unknown(t)
            if unknown:
                raise ConfigError(f"{where}: signer #{n}: unknown key {sorted(unknown)[0]!r}")
            name = str(t.get("name", SIGNER.default("name")))
            rules.append(SignerRule(fpr.replace(" ", "").upper(), tuple(topics), name))
        return cls(rules)

    @classmethod
    def from_config(cls, config: Config) -> Policy:
        """The [[signer]] tables of the configuration."""
        return cls.from_tables(config.data.get(SIGNER.name, []), config.where(SIGNER.name))

    @classmethod
    def from_file(cls, path: str | Path) -> Policy:
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise ConfigError(f"{path}: {exc.strerror}") from None
        return cls.from_tables(parse_toml(raw, str(path)).get(SIGNER.name, []), str(path))
