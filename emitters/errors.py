"""Errors say whose fault it is (the h11 split of remote and local errors)."""

from __future__ import annotations


class DebpulseError(Exception):
    """Base class."""


class InputError(DebpulseError):
    """A legacy service gave us something we cannot use.

    Not our bug: the source moves the input aside with `reason` beside it,
    counts it and goes on.  `reason` is one line.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason.splitlines()[0] if reason else "unknown reason"


class TooLarge(InputError):
    """What an adapter made of an input is more than the bus takes (too
    large or too deep): the input is moved aside like any other bad input,
    instead of being signed into a message no subscriber could read."""


class ConfigError(DebpulseError):
    """The operator's configuration or command line is wrong: exit 2, one line."""


class SchemaError(DebpulseError):
    """An adapter built an event whose body does not match its message type.

    That is a bug in debpulse, so it is raised loudly, never quarantined.
    """


class EmitError(DebpulseError):
    """The event could not be handed over durably (no relay, no spool, no outbox)."""


class DiscoveryError(DebpulseError):
    """One domain could not be resolved, or its answer did not validate."""
