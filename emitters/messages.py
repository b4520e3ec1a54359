"""Message types: one class per topic, owning its body schema and the few
things every consumer wants without knowing the body (summary, link, the
packages and people it concerns), as fedora-messaging's `Message` does.

Adapters define their types in `adapters/<name>/messages.py` and register
them under the `debpulse.messages` entry point group, so `debpulse-tail`
knows every type that is installed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from email.utils import parseaddr
from importlib.metadata import entry_points
from typing import Any, ClassVar

import jsonschema

from .errors import SchemaError
from .topics import relative_topic

_REGISTRY: dict[str, type[Message]] = {}
_loaded = False


class Message:
    """A message body together with its meaning.

    Subclasses set `topic` (service-relative) and `body_schema`, and override
    `summary`, `link`, `packages`, `usernames` and `agent`.  `packages` and
    `usernames` name every source package and every person the event
    concerns (the history's `package=` and `user=` queries find it by
    them); `agent` is the one person who caused it, when there is one.
    """

    topic: ClassVar[str] = ""
    body_schema: ClassVar[dict[str, Any]] = {"type": "object"}

    def __init__(self, body: Mapping[str, Any], topic: str = "") -> None:
        self.body = body
        self.full_topic = topic or self.topic

    @classmethod
    def validate(cls, body: Mapping[str, Any]) -> None:
        """Raise SchemaError when `body` does not match `body_schema`."""
        try:
            _validator(cls).validate(body)
        except jsonschema.ValidationError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "body"
            raise SchemaError(f"{cls.topic or 'message'}: {where}: {exc.message}") from None

    def summary(self) -> str:
        return self.full_topic

    def link(self) -> str | None:
        return None

    def packages(self) -> list[str]:
        return []

    def usernames(self) -> list[str]:
        return []

    def agent(self) -> str | None:
        return None

    def __str__(self) -> str:
        return self.summary()


def parse_address(text: str) -> tuple[str, str]:
    """(name, mail) of an address, as email.utils.parseaddr; ("", "") for
    one nested so deeply (groups, comments) that parseaddr recurses too far.
    Message types use it on addresses from the legacy services' input."""
    try:
        return parseaddr(text)
    except RecursionError:
        return "", ""


_LOGIN = re.compile(r"([a-z0-9][a-z0-9._-]*)@debian\.org")


def person(address: str | None) -> str | None:
    """Who an RFC 822 address is, as `usernames` name people: the login of
    a Debian account (jane@debian.org -> jane), otherwise the address
    itself in lower case (most contributors have no Debian account)."""
    mail = parse_address(address or "")[1].strip().lower()
    if "@" not in mail:
        return None
    m = _LOGIN.fullmatch(mail)
    return m[1] if m else mail


def people(*addresses: str | None) -> list[str]:
    """`person` of each address, in order, once each, the unknown left out."""
    return list(dict.fromkeys(p for p in map(person, addresses) if p))


_validators: dict[type, Any] = {}


def _validator(cls: type[Message]) -> Any:
    v = _validators.get(cls)
    if v is None:
        jsonschema.Draft202012Validator.check_schema(cls.body_schema)
        v = _validators[cls] = jsonschema.Draft202012Validator(cls.body_schema)
    return v


def register(cls: type[Message]) -> type[Message]:
    """Class decorator: make `cls` the type of its topic."""
    if not cls.topic:
        raise TypeError(f"{cls.__name__} has no topic")
    _REGISTRY[cls.topic] = cls
    return cls


def load_message_types() -> None:
    """Import every installed adapter's message types (once)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for ep in entry_points(group="debpulse.messages"):
        try:
            ep.load()
        except Exception as exc:  # one broken adapter must not blind every consumer
            logging.getLogger(__name__).warning("message types %s not loaded: %s", ep.name, exc)


def registered() -> dict[str, type[Message]]:
    """Every installed message type by its service-relative topic."""
    load_message_types()
    return dict(_REGISTRY)


def message_type(topic: str) -> type[Message]:
    """The type for a full or service-relative topic; `Message` if unknown."""
    load_message_types()
    return _REGISTRY.get(relative_topic(topic), Message)


def message_for(topic: str, body: Mapping[str, Any]) -> Message:
    return message_type(topic)(body, topic)


@register
class LogMessage(Message):
    """What debpulse-logger sends by default (fedmsg-logger's `log`)."""

    topic = "logger.log"
    body_schema = {
        "type": "object",
        "properties": {"log": {"type": "string"}},
        "required": ["log"],
    }

    def summary(self) -> str:
        return str(self.body.get("log", "")).splitlines()[0] if self.body.get("log") else "(empty log line)"
