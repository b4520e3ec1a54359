"""Topic names: org.debian.<env>.<service>.<object>[.<subobject>].<event>."""

from __future__ import annotations

import functools
import re

from .errors import ConfigError

PREFIX = "org.debian"
ENVIRONMENTS = ("dev", "stg", "production")
_PART = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@functools.lru_cache(maxsize=1024)
def full_topic(env: str, relative: str) -> str:
    """`dak.package.accept` in `dev` -> `org.debian.dev.dak.package.accept`."""
    if env not in ENVIRONMENTS:
        raise ConfigError(f"environment {env!r} is not one of {', '.join(ENVIRONMENTS)}")
    check_relative(relative)
    return f"{PREFIX}.{env}.{relative}"


def check_relative(relative: str) -> None:
    parts = relative.split(".")
    if len(parts) < 2 or not all(_PART.match(p) for p in parts):
        raise ConfigError(
            f"topic {relative!r} is not <service>.<object>[.<subobject>].<event> "
            "in lower case"
        )


def relative_topic(topic: str) -> str:
    """The part after `org.debian.<env>.`; foreign topics come back unchanged."""
    head = PREFIX + "."
    if topic.startswith(head):
        rest = topic[len(head):]
        env, _, relative = rest.partition(".")
        if env in ENVIRONMENTS and relative:
            return relative
    return topic


def topic_matches(pattern: str, topic: str) -> bool:
    """Glob-style match used by signer policies: `*` is one dotted part,
    a trailing `.#` or `#` any number of parts (as AMQP topic exchanges)."""
    return _compile(pattern).match(topic) is not None


_cache: dict[str, re.Pattern[str]] = {}


def _compile(pattern: str) -> re.Pattern[str]:
    rx = _cache.get(pattern)
    if rx is None:
        out = []
        for i, part in enumerate(pattern.split(".")):
            if part == "#":
                out.append(r"(\..+)?" if i else r".*")
            else:
                piece = re.escape(part).replace(r"\*", "[^.]+")
                out.append((r"\." if i else "") + piece)
        rx = re.compile("^" + "".join(out) + "$")
        _cache[pattern] = rx
    return rx
