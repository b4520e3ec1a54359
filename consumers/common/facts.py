"""The facts of a message that filters and rules look at (pure).

Taken from the message type (`summary`, `link`, `packages`, `usernames`)
and, where the type says nothing of it, from the body: the maintainer and
uploader of an upload, the git namespace of a repository.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.utils import getaddresses
from typing import Any

from debpulse.emitters.config import Key, Table
from debpulse.emitters.messages import message_for
from debpulse.emitters.topics import relative_topic, topic_matches


@dataclass(frozen=True)
class Facts:
    topic: str                    # full topic
    relative: str                 # dak.package.accept
    summary: str
    link: str | None
    packages: frozenset[str]
    users: frozenset[str]
    teams: frozenset[str]         # maintainer addresses (lower case), git namespaces
    people: frozenset[str]        # addresses of the maintainer and uploader (lower case)
    body: Mapping[str, Any]
    msg_id: str = ""

    @property
    def service(self) -> str:
        return self.relative.split(".", 1)[0]


def addresses(value: Any) -> list[str]:
    """The mail addresses in a header-like value ("A <a@x>, B <b@y>"), lower case."""
    if not isinstance(value, str) or not value:
        return []
    try:
        found = getaddresses([value])
    except RecursionError:  # groups and comments nested past the parser's depth: no address
        return []
    return [mail.lower() for _, mail in found if "@" in mail]


def _strings(values: Iterable[Any]) -> frozenset[str]:
    return frozenset(v for v in values if isinstance(v, str) and v)


def facts(topic: str, body: Mapping[str, Any], msg_id: str = "") -> Facts:
    """Facts of one message; a producer's bug in summary() or packages() never
    stops a consumer, it only leaves that fact empty."""
    message = message_for(topic, body)
    try:
        summary = message.summary()
    except Exception:
        summary = relative_topic(topic)
    try:
        link = message.link()
    except Exception:
        link = None
    try:
        packages = _strings(message.packages())
    except Exception:
        packages = frozenset()
    try:
        users = _strings(message.usernames())
    except Exception:
        users = frozenset()
    people = frozenset(addresses(body.get("maintainer")) + addresses(body.get("changed_by")))
    teams = set(addresses(body.get("maintainer")))
    commit = body.get("commit")
    repo = commit.get("repo") if isinstance(commit, Mapping) else body.get("repo")
    if isinstance(repo, str) and "/" in repo.strip("/"):
        teams.add(repo.strip("/").split("/", 1)[0].lower())
    return Facts(topic, relative_topic(topic), str(summary), link if isinstance(link, str) else None,
                 packages, users, frozenset(teams), people, body, msg_id)


def facts_of(envelope: Mapping[str, Any]) -> Facts:
    body = envelope.get("msg")
    return facts(str(envelope.get("topic", "")), body if isinstance(body, Mapping) else {},
                 str(envelope.get("msg_id", "")))


# -- criteria --------------------------------------------------------------------

_PATTERN = re.compile(r"^[A-Za-z0-9_*#-]+(\.[A-Za-z0-9_*#-]+)*\.?$")
CRITERIA = Table("criteria", {
    "topics": Key((str, list), [], "topic patterns: a topic or a prefix of whole parts, `*` one part, `#` any; "
                  "`org.debian...` for full topics, else relative to the service (`dak.package.accept`)", items=str),
    "packages": Key((str, list), [], "source or binary package names", items=str),
    "users": Key((str, list), [], "people: the usernames a message names (uploader, pusher, submitter...)",
                 items=str),
    "teams": Key((str, list), [], "teams: Maintainer addresses (a team's list) and git namespaces (Salsa groups)",
                 items=str),
}, "What a channel shows (include: every kind given must match, one value of a kind is enough) or leaves out "
   "(exclude: any value of any kind), in `[[irc.channels]]` and in a `[[rule]]`'s exclude.",
   read_by=("debpulse-irc", "debpulse-notify", "debpulse-desktop"), title="include = {...}, exclude = {...}")


def check_topic_pattern(pattern: str) -> str | None:
    """None when fine, else what is wrong."""
    if not isinstance(pattern, str) or not _PATTERN.match(pattern):
        return f"topic pattern {pattern!r}: dotted parts, '*' (one part) or '#' (any)"
    return None


def topic_pattern_matches(pattern: str, topic: str, relative: str) -> bool:
    """As debpulse-trigger's --topic: `*` is one part, `#` any; without them a
    pattern is a topic or a prefix of whole parts.  Patterns starting with
    `org.` apply to the full topic, others to the service-relative one."""
    subject = topic if pattern.startswith("org.") else relative
    if "*" in pattern or "#" in pattern:
        return topic_matches(pattern, subject)
    prefix = pattern.rstrip(".")
    return subject == prefix or subject.startswith(prefix + ".")


@dataclass(frozen=True)
class Criteria:
    """Topic patterns, packages, users, teams.  `all_of`: each kind given
    must match (one value within a kind is enough), as datagrepper's query
    parameters; `any_of`: one value of any kind matches."""

    topics: tuple[str, ...] = ()
    packages: frozenset[str] = frozenset()
    users: frozenset[str] = frozenset()
    teams: frozenset[str] = frozenset()

    @property
    def empty(self) -> bool:
        return not (self.topics or self.packages or self.users or self.teams)

    def topic_hit(self, f: Facts) -> bool:
        return any(topic_pattern_matches(p, f.topic, f.relative) for p in self.topics)

    def all_of(self, f: Facts) -> bool:
        return ((not self.topics or self.topic_hit(f))
                and (not self.packages or not self.packages.isdisjoint(f.packages))
                and (not self.users or not self.users.isdisjoint(f.users))
                and (not self.teams or not self.teams.isdisjoint(f.teams)))

    def any_of(self, f: Facts) -> bool:
        return (self.topic_hit(f) or not self.packages.isdisjoint(f.packages)
                or not self.users.isdisjoint(f.users) or not self.teams.isdisjoint(f.teams))


def criteria_from(table: Mapping[str, Any], where: str) -> Criteria:
    """A Criteria from a TOML table; raises ValueError naming the bad key."""
    if not isinstance(table, Mapping):
        raise ValueError(f"{where} must be a table")
    if unknown := CRITERIA.unknown(table):
        raise ValueError(f"{where}: unknown key {unknown[0]!r}")
    values: dict[str, list[str]] = {}
    for key in CRITERIA.keys:
        v = table.get(key, CRITERIA.default(key))
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
            raise ValueError(f"{where} {key} must be a list of strings")
        values[key] = v
    for p in values["topics"]:
        if (problem := check_topic_pattern(p)) is not None:
            raise ValueError(f"{where}: {problem}")
    return Criteria(tuple(values["topics"]), frozenset(values["packages"]), frozenset(values["users"]),
                    frozenset(t.lower() for t in values["teams"]))
