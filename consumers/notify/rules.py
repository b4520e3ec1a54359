"""Notification rules (pure): who follows what, what they exclude, where it
goes, and which rules a message matches, indexed so that ten thousand
rules cost little per message.

One TOML file per person or team (notify.d/alice.toml):

    mail = "alice@example.org"
    addresses = ["alice@debian.org"]   # who she is in Maintainer and Changed-By
    irc = "alice"

    [[rule]]
    name = "my packages"
    my_packages = true                 # maintained or uploaded, in the uploads seen
    packages = ["hello"]
    users = ["bob"]
    teams = ["ocaml-team"]
    topics = ["dak.#", "debbugs.#"]    # only these topics
    exclude = { topics = ["debbugs.bug.control"] }
    to = ["mail", "irc", "desktop"]
    digest = { every = 3600, count = 20 }

A rule follows a message when one of my_packages, packages, users, teams
matches (with none of them it follows every message of its topics), its
topics (if any) match, and nothing in exclude does.  Nothing is sent until
a rule says so: there are no default rules.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from debpulse.consumers.common.facts import Criteria, Facts, check_topic_pattern, criteria_from, topic_pattern_matches
from debpulse.emitters.config import Derived, Key, Required, Table
from debpulse.emitters.messages import parse_address

DESTINATIONS = ("mail", "irc", "desktop")
RULE_FILE = ("a file of `[notify] rules` (`/etc/debpulse/notify.d/NAME.toml`); `debpulse-desktop`'s is "
             "`~/.config/debpulse/notify.toml`")
DIGEST = Table("rule.digest", {
    "every": Key((int, float), None, "send what waits this many seconds after the first message waiting"),
    "count": Key(int, None, "or once this many messages wait, whichever comes first"),
}, "Gather a rule's messages into one mail instead of one mail each.", read_by=("debpulse-notify",),
   own_file=RULE_FILE, title="digest = {...} in a [[rule]]")
RULE = Table("rule", {
    "name": Key(str, Derived("its number in the file"), "the rule's name, in the footer of what it sends"),
    "my_packages": Key(bool, False, "follow the packages the person maintains or uploaded (by `addresses`)"),
    "packages": Key((str, list), [], "follow these packages", items=str),
    "users": Key((str, list), [], "follow what these people do", items=str),
    "teams": Key((str, list), [], "follow these teams' packages and repositories", items=str),
    "topics": Key((str, list), [], "only these topics (with nothing else to follow: every message of them)",
                  items=str),
    "exclude": Key(dict, {}, "leave out what matches any value of any kind", table="criteria"),
    "to": Key((str, list), Required(), "where it goes: `mail`, `irc` and/or `desktop`", items=str),
    "digest": Key(dict, None, "gather messages into one mail", table=DIGEST),
    "duplicates": Key(bool, False, "also mail what the service already mailed the person (dak, debbugs)"),
}, "One rule: what it follows, what it leaves out, where it goes.  A rule follows a message when one of "
   "`my_packages`, `packages`, `users`, `teams` matches (with none of them, every message of its topics), its topics "
   "match, and nothing in `exclude` does.", read_by=("debpulse-notify", "debpulse-desktop"), array=True,
   own_file=RULE_FILE)
RECIPIENT = Table("rule file", {
    "name": Key(str, Derived("the file's name without `.toml`"), "the person or team"),
    "mail": Key(str, None, "where mail goes"),
    "addresses": Key((str, list), [], "who the person is in `Maintainer` and `Changed-By` (`my_packages`); "
                     "`mail` is one of them", items=str),
    "irc": Key(str, None, "the IRC nick private lines go to"),
    "irc_network": Key(str, Derived("`debpulse-irc`'s only network"), "the network of that nick"),
    "rule": Key(list, [], "the rules, one `[[rule]]` table each", table=RULE),
}, "One person's or team's rules, a file each.  Nothing is sent until a rule says so.",
   read_by=("debpulse-notify", "debpulse-desktop"), own_file=RULE_FILE, title="a rule file")


class RuleError(ValueError):
    """A rule file is wrong; the message names the file and the key."""


@dataclass(frozen=True)
class Digest:
    every: float | None = None    # seconds after the first message waiting
    count: int | None = None      # or this many messages, whichever comes first

    def due(self, oldest: float, waiting: int, now: float) -> bool:
        return (self.count is not None and waiting >= self.count) or (
            self.every is not None and now - oldest >= self.every)


@dataclass(frozen=True)
class Rule:
    recipient: str
    name: str
    to: tuple[str, ...]
    my_packages: bool = False
    follow: Criteria = field(default_factory=Criteria)     # packages, users, teams
    topics: tuple[str, ...] = ()
    exclude: Criteria = field(default_factory=Criteria)
    digest: Digest | None = None
    duplicates: bool = False       # also mail what the service already mailed the person

    @property
    def key(self) -> str:
        return f"{self.recipient}/{self.name}"

    def follows(self, f: Facts, mine: bool) -> bool:
        follow = self.follow
        if self.my_packages or not follow.empty:
            if not ((self.my_packages and mine) or not follow.packages.isdisjoint(f.packages)
                    or not follow.users.isdisjoint(f.users) or not follow.teams.isdisjoint(f.teams)):
                return False
        if self.topics and not any(topic_pattern_matches(p, f.topic, f.relative) for p in self.topics):
            return False
        return self.exclude.empty or not self.exclude.any_of(f)


@dataclass(frozen=True)
class Recipient:
    name: str
    source: str                    # the file it came from, for the footer and errors
    mail: str | None = None
    addresses: frozenset[str] = frozenset()
    irc: str | None = None
    irc_network: str | None = None
    rules: tuple[Rule, ...] = ()


def _strings(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise RuleError(f"{where} must be a list of strings")
    return value


def _address(value: str, where: str) -> str:
    mail = parseaddr(value)[1]
    if "@" not in mail or any(c in value for c in "\r\n"):
        raise RuleError(f"{where} {value!r} is not a mail address")
    return mail.lower()


def recipient_from(data: Mapping[str, Any], source: str, default_name: str) -> Recipient:
    if unknown := RECIPIENT.unknown(data):
        raise RuleError(f"{source}: unknown key {unknown[0]!r}")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name or "/" in name:
        raise RuleError(f"{source}: name must be a non-empty string without '/'")
    mail = data.get("mail")
    if mail is not None:
        if not isinstance(mail, str):
            raise RuleError(f"{source}: mail must be a string")
        _address(mail, f"{source}: mail")
    where = f"{source}: addresses"
    addresses = {_address(a, where) for a in _strings(data.get("addresses", RECIPIENT.default("addresses")), where)}
    if mail:
        addresses.add(_address(mail, f"{source}: mail"))
    irc, network = data.get("irc"), data.get("irc_network")
    for key, value in (("irc", irc), ("irc_network", network)):
        if value is not None and (not isinstance(value, str) or not value or " " in value):
            raise RuleError(f"{source}: {key} must be one word")
    tables = data.get("rule", RECIPIENT.default("rule"))
    if not isinstance(tables, list):
        raise RuleError(f"{source}: rules are [[rule]] tables")
    rules: list[Rule] = []
    for i, table in enumerate(tables, 1):
        rule = _rule(table, f"{source}: [[rule]] {i}", name)
        if any(r.name == rule.name for r in rules):
            raise RuleError(f"{source}: two rules named {rule.name!r}")
        if "mail" in rule.to and not mail:
            raise RuleError(f"{source}: rule {rule.name!r} sends mail but there is no mail = \"...\"")
        if "irc" in rule.to and not irc:
            raise RuleError(f"{source}: rule {rule.name!r} goes to IRC but there is no irc = \"nick\"")
        if rule.my_packages and not addresses:
            raise RuleError(f"{source}: rule {rule.name!r} follows my_packages but no address says who you are")
        rules.append(rule)
    return Recipient(name, source, mail, frozenset(addresses), irc, network, tuple(rules))


def _rule(table: Any, where: str, recipient: str) -> Rule:
    if not isinstance(table, Mapping):
        raise RuleError(f"{where} must be a table")
    if unknown := RULE.unknown(table):
        raise RuleError(f"{where}: unknown key {unknown[0]!r}")
    name = table.get("name", where.rsplit(" ", 1)[-1])
    if not isinstance(name, str) or not name:
        raise RuleError(f"{where}: name must be a non-empty string")
    where = f"{where.rsplit(': ', 1)[0]}: rule {name!r}"
    try:
        follow = criteria_from({k: table[k] for k in ("packages", "users", "teams") if k in table}, where)
        exclude = criteria_from(table.get("exclude", RULE.default("exclude")), f"{where} exclude")
    except ValueError as exc:
        raise RuleError(str(exc)) from None
    topics = _strings(table.get("topics", RULE.default("topics")), f"{where} topics")
    for t in topics:
        if (problem := check_topic_pattern(t)) is not None:
            raise RuleError(f"{where}: {problem}")
    my = table.get("my_packages", RULE.default("my_packages"))
    if not isinstance(my, bool):
        raise RuleError(f"{where}: my_packages must be true or false")
    if not my and follow.empty and not topics:
        raise RuleError(f"{where} says nothing to follow (my_packages, packages, users, teams or topics)")
    to = _strings(table.get("to", []), f"{where} to")
    if not to:
        raise RuleError(f"{where}: to = [...] says where to send it ({', '.join(DESTINATIONS)})")
    for d in to:
        if d not in DESTINATIONS:
            raise RuleError(f"{where}: unknown destination {d!r} (one of {', '.join(DESTINATIONS)})")
    digest = None
    if "digest" in table:
        d = table["digest"]
        if not isinstance(d, Mapping) or not d or DIGEST.unknown(d):
            raise RuleError(f"{where}: digest is a table of every (seconds) and/or count")
        every, count = d.get("every"), d.get("count")
        if every is not None and (isinstance(every, bool) or not isinstance(every, int | float) or every <= 0):
            raise RuleError(f"{where}: digest every must be a positive number of seconds")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
            raise RuleError(f"{where}: digest count must be at least 1")
        digest = Digest(float(every) if every is not None else None, count)
    duplicates = table.get("duplicates", RULE.default("duplicates"))
    if not isinstance(duplicates, bool):
        raise RuleError(f"{where}: duplicates must be true or false")
    return Rule(recipient, name, tuple(dict.fromkeys(to)), my, follow, tuple(topics), exclude, digest, duplicates)


def load_rules(directory: Path) -> list[Recipient]:
    """Every *.toml in `directory`, one person or team each."""
    if not directory.is_dir():
        raise RuleError(f"{directory}: no such rules directory")
    out: list[Recipient] = []
    for path in sorted(directory.glob("*.toml")):
        out.append(load_file(path))
    return out


def load_file(path: Path) -> Recipient:
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise RuleError(f"{path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RuleError(f"{path}: {exc}") from None
    return recipient_from(data, str(path), path.stem)


# -- matching -------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    recipient: Recipient
    rule: Rule
    destination: str


class RuleBook:
    """Every rule, indexed by what it follows, so that a message is checked
    only against the rules that could match it."""

    def __init__(self, recipients: Iterable[Recipient]) -> None:
        self.recipients = {r.name: r for r in recipients}
        self.rules: list[Rule] = [rule for r in self.recipients.values() for rule in r.rules]
        self._by_package: dict[str, list[int]] = {}
        self._by_user: dict[str, list[int]] = {}
        self._by_team: dict[str, list[int]] = {}
        self._by_address: dict[str, list[int]] = {}   # my_packages rules of the owners of an address
        self._by_service: dict[str, list[int]] = {}   # topic-only rules whose patterns name a service
        self._scan: list[int] = []                    # the rest: checked for every message
        for i, rule in enumerate(self.rules):
            for p in rule.follow.packages:
                self._by_package.setdefault(p, []).append(i)
            for u in rule.follow.users:
                self._by_user.setdefault(u, []).append(i)
            for t in rule.follow.teams:
                self._by_team.setdefault(t, []).append(i)
            if rule.my_packages:
                for a in self.recipients[rule.recipient].addresses:
                    self._by_address.setdefault(a, []).append(i)
            if not rule.my_packages and rule.follow.empty:
                services = {_service(p) for p in rule.topics}
                if None in services:
                    self._scan.append(i)
                else:
                    for s in services:
                        self._by_service.setdefault(s, []).append(i)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self.rules)

    def match(self, f: Facts, owners: Callable[[str], Iterable[str]]) -> list[Match]:
        """Who gets `f`, and where: one Match per (recipient, destination),
        the first matching rule of the recipient naming it (a message is
        never sent twice to the same place because two rules match)."""
        mine: set[str] = set()       # addresses owning one of the message's packages
        for p in f.packages:
            mine.update(owners(p))
        candidates: set[int] = set(self._scan)
        for p in f.packages:
            candidates.update(self._by_package.get(p, ()))
        for u in f.users:
            candidates.update(self._by_user.get(u, ()))
        for t in f.teams:
            candidates.update(self._by_team.get(t, ()))
        for a in mine:
            candidates.update(self._by_address.get(a, ()))
        candidates.update(self._by_service.get(f.service, ()))
        out: list[Match] = []
        seen: set[tuple[str, str]] = set()
        for i in sorted(candidates):
            rule = self.rules[i]
            recipient = self.recipients[rule.recipient]
            if not rule.follows(f, not mine.isdisjoint(recipient.addresses)):
                continue
            for d in rule.to:
                if (recipient.name, d) not in seen:
                    seen.add((recipient.name, d))
                    out.append(Match(recipient, rule, d))
        return out


def _service(pattern: str) -> str | None:
    """The service a topic pattern is bound to, if it is (dak.#, dak.package.*)."""
    if pattern.startswith("org."):
        parts = pattern.split(".")
        return parts[3] if len(parts) > 3 and parts[3] not in ("*", "#") and parts[2] not in ("*", "#") else None
    first = pattern.split(".", 1)[0]
    return None if first in ("*", "#") or "*" in first or "#" in first else first


# -- what the services mail already ---------------------------------------------------------------


def already_mailed(f: Facts, maintainers: Iterable[str]) -> frozenset[str]:
    """Addresses the source service mails about this message itself: dak
    the Maintainer and Changed-By of an upload, debbugs the sender (its
    acknowledgement) and the package's maintainer.  A mail of ours to them
    would be a duplicate (FMN's complaint #1093)."""
    if f.relative in ("dak.package.accept", "dak.package.new", "dak.package.reject"):
        return f.people
    if f.service == "debbugs":
        sender = parse_address(str(f.body.get("from") or ""))[1].lower()
        return frozenset({sender, *maintainers} - {""})
    return frozenset()
