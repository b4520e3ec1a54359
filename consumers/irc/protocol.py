"""IRC lines (RFC 1459 / 2812 framing), sans I/O: parse what the server
says, build what the bot says, and make message text safe to send.

Nothing from a message body may end a line early: CR, LF and NUL would let
a summary inject IRC commands, so text is cleaned before it is framed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_LINE = 512          # bytes, CR LF included (RFC 2812 2.3)
# What a server adds when it relays our PRIVMSG: ":nick!user@host " (nick up to
# 30, user 10, host 63): keep room for it so the far end gets the whole line.
RELAY_PREFIX = 1 + 30 + 1 + 10 + 1 + 63 + 1


class ProtocolError(ValueError):
    """The server sent something that is not an IRC line."""


@dataclass(frozen=True)
class Line:
    prefix: str | None
    command: str
    params: tuple[str, ...]

    @property
    def nick(self) -> str | None:
        """The nick of the prefix (`nick!user@host`)."""
        return self.prefix.split("!", 1)[0] if self.prefix else None


_COMMAND = re.compile(r"^([A-Za-z]+|[0-9]{3})$")


def parse(raw: bytes) -> Line:
    """One line from the server, without its CR LF.  Undecodable bytes are
    replaced (servers relay whatever clients send)."""
    if b"\r" in raw or b"\n" in raw or b"\0" in raw:
        raise ProtocolError("line holds CR, LF or NUL")
    text = raw.decode("utf-8", "replace")
    if text.startswith("@"):  # IRCv3 message tags: not asked for, skipped if sent
        _, _, text = text.partition(" ")
    prefix = None
    if text.startswith(":"):
        prefix, _, text = text[1:].partition(" ")
        if not prefix:
            raise ProtocolError("empty prefix")
    text = text.lstrip(" ")
    trailing = None
    if " :" in text:
        text, _, trailing = text.partition(" :")
    elif text.startswith(":"):
        trailing, text = text[1:], ""
    parts = [p for p in text.split(" ") if p]  # only spaces separate (str.split also splits at \x1f)
    if not parts:
        if trailing is None:
            raise ProtocolError("no command")
        raise ProtocolError("no command before the trailing parameter")
    command, params = parts[0], parts[1:]
    if not _COMMAND.match(command):
        raise ProtocolError(f"bad command {command[:20]!r}")
    if trailing is not None:
        params.append(trailing)
    return Line(prefix, command.upper(), tuple(params))


_UNSAFE_PARAM = re.compile(r"[\r\n\0 ]")


def encode(command: str, *params: str) -> bytes:
    """A line to send.  Only the last parameter may hold spaces (it is sent
    as trailing); CR, LF and NUL are refused anywhere (a bug, not input)."""
    if not _COMMAND.match(command):
        raise ValueError(f"bad command {command!r}")
    out = [command]
    for i, p in enumerate(params):
        last = i == len(params) - 1
        if any(c in p for c in "\r\n\0"):
            raise ValueError("CR, LF or NUL in an IRC parameter")
        if last and (not p or " " in p or p.startswith(":")):
            out.append(":" + p)
        elif _UNSAFE_PARAM.search(p) or not p or p.startswith(":"):
            raise ValueError(f"parameter {p!r} cannot be a middle parameter")
        else:
            out.append(p)
    data = (" ".join(out) + "\r\n").encode("utf-8")
    if len(data) > MAX_LINE:
        raise ValueError("line longer than 512 bytes")
    return data


# Formatting codes the bot itself uses; other C0 controls and DEL never pass.
BOLD, COLOUR, RESET = "\x02", "\x03", "\x0f"
_CONTROLS = re.compile(r"[\x00-\x1f\x7f]+")


def clean_text(text: str) -> str:
    """Message text as one printable line: every control character,
    formatting codes included, becomes a space; runs of spaces collapse."""
    return " ".join(_CONTROLS.sub(" ", text).split())


def fit(text: str, room: int) -> str:
    """`text` cut to at most `room` UTF-8 bytes, never inside a character,
    with an ellipsis when cut."""
    data = text.encode("utf-8")
    if len(data) <= room:
        return text
    ellipsis = "…".encode()
    cut = data[: max(0, room - len(ellipsis))].decode("utf-8", "ignore")
    return cut + "…"


def room_for_text(command: str, target: str) -> int:
    """Bytes left for the text of `COMMAND target :text` once relayed."""
    return MAX_LINE - 2 - RELAY_PREFIX - len(command) - 1 - len(target.encode()) - 2


_NICK = re.compile(r"^[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}-]{0,29}$")
_CHANNEL = re.compile(r"^[#&+!][^\x00\x07\r\n ,:]{1,49}$")


def valid_nick(nick: str) -> bool:
    return bool(_NICK.match(nick))


def valid_channel(name: str) -> bool:
    return bool(_CHANNEL.match(name))


def irc_lower(name: str) -> str:
    """RFC 1459 case mapping: {}|^ are the lower case of []\\~."""
    return name.lower().translate(str.maketrans("[]\\~", "{}|^"))
