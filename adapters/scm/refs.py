"""Hook stdin -> ref updates (pure).

git-receive-pack hands post-receive one line per updated ref,
"<old> SP <new> SP <refname> LF" (githooks(5)); an all-zero old id means the
ref was created, an all-zero new id that it was deleted.  Object ids are 40
hex digits (SHA-1) or 64 (SHA-256 repositories).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from debpulse.emitters.errors import InputError

from .text import decode

_OID = re.compile(rb"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")


def is_zero(oid: str) -> bool:
    return not oid.strip("0")


def check_oid(value: object, what: str) -> str:
    """`value` if it is an object id (of a payload, say), else InputError."""
    if not isinstance(value, str) or not value.isascii() or not _OID.match(value.encode()):
        raise InputError(f"{what} is not an object id: {str(value)[:80]!r}")
    return value


@dataclass(frozen=True)
class RefUpdate:
    old: str
    new: str
    ref: str  # full name, e.g. refs/heads/master

    @property
    def created(self) -> bool:
        return is_zero(self.old)

    @property
    def deleted(self) -> bool:
        return is_zero(self.new)

    @property
    def kind(self) -> str:
        """"branch", "tag" or "other" (notes, merge requests, ...)."""
        if self.ref.startswith("refs/heads/"):
            return "branch"
        if self.ref.startswith("refs/tags/"):
            return "tag"
        return "other"

    @property
    def name(self) -> str:
        """The short name: "master" for refs/heads/master, "debian/1.0-1" for a tag."""
        for prefix in ("refs/heads/", "refs/tags/"):
            if self.ref.startswith(prefix):
                return self.ref[len(prefix):]
        return self.ref


def parse_line(line: bytes) -> RefUpdate:
    """One stdin line (without or with its LF) -> RefUpdate, or InputError."""
    parts = line.rstrip(b"\r\n").split(b" ", 2)
    if len(parts) != 3:
        raise InputError(f"not '<old> <new> <ref>': {line[:120]!r}")
    old, new, ref = parts
    for oid in (old, new):
        if not _OID.match(oid):
            raise InputError(f"not an object id: {oid[:80]!r}")
    if len(old) != len(new):
        raise InputError(f"object ids of different lengths: {line[:200]!r}")
    if not ref.startswith(b"refs/") or b"\n" in ref or ref in (b"refs/heads/", b"refs/tags/"):
        raise InputError(f"not a ref name: {ref[:120]!r}")
    if is_zero(old.decode()) and is_zero(new.decode()):
        raise InputError(f"both object ids are zero for {ref[:120]!r}")
    return RefUpdate(old.decode(), new.decode(), decode(ref))


def split_lines(data: bytes) -> list[bytes]:
    """The non-empty lines of hook stdin."""
    return [line for line in data.split(b"\n") if line.strip()]


def parse(data: bytes) -> list[RefUpdate]:
    """All of hook stdin; the first bad line raises InputError."""
    return [parse_line(line) for line in split_lines(data)]


# What the installed hook saves for its background job: its stdin, then the
# refs as they were at push time, then an end mark that says the refs are
# complete (git for-each-ref ran to the end).
REFS_MARK = "# debpulse-git refs"
END_MARK = "# debpulse-git end"


def split_saved(data: bytes) -> tuple[bytes, bytes | None]:
    """A saved push -> (hook stdin, for-each-ref output or None when absent
    or incomplete).  Plain stdin (no marks) comes back whole."""
    stdin: list[bytes] = []
    refs: list[bytes] = []
    target, complete = stdin, False
    for line in data.split(b"\n"):
        if line == REFS_MARK.encode():
            target = refs
        elif line == END_MARK.encode():
            complete = True
            break
        else:
            target.append(line)
    return b"\n".join(stdin), (b"\n".join(refs) if complete and target is refs else None)
