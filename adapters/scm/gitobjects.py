"""git plumbing output -> Python values (pure).

`commits.py` runs the git processes; everything that turns their bytes into
commits, tags and per-file line counts is here, so it is tested on bytes
alone: `git cat-file --batch` (raw objects, parsed by hand so that a
commit's own `encoding` header is honoured and nothing is re-encoded behind
our back) and `git diff-tree --stdin -z --numstat` (line counts).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from debpulse.emitters.errors import InputError

from .text import decode

_OID = re.compile(rb"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
_IDENT = re.compile(rb"^(.*?) ?<([^>]*)>(?: (\d+) ([+-]\d{4}))?\s*$", re.S)


@dataclass(frozen=True)
class Person:
    name: str
    email: str


@dataclass(frozen=True)
class Commit:
    rev: str
    parents: tuple[str, ...]
    author: Person
    committer: Person
    message: str

    @property
    def summary(self) -> str:
        return self.message.split("\n", 1)[0]


@dataclass(frozen=True)
class Tag:
    """An annotated tag object."""

    oid: str
    target: str
    target_type: str
    name: str
    tagger: Person | None
    message: str


@dataclass
class Stats:
    """fedmsg's stats: per-file and total additions, deletions and lines."""

    files: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, path: str, additions: int, deletions: int) -> None:
        f = self.files.setdefault(path, {"additions": 0, "deletions": 0, "lines": 0})
        f["additions"] += additions
        f["deletions"] += deletions
        f["lines"] += additions + deletions

    def as_body(self) -> dict[str, Any]:
        total = {"additions": 0, "deletions": 0, "lines": 0, "files": len(self.files)}
        for f in self.files.values():
            for k in ("additions", "deletions", "lines"):
                total[k] += f[k]
        return {"files": self.files, "total": total}


REFS_FORMAT = "%(objectname) %(objecttype) %(*objecttype) %(refname)"


def parse_refs(data: bytes) -> dict[str, str]:
    """`git for-each-ref --format=REFS_FORMAT` output -> {ref: id} of the refs
    that lead to commits (a tag of a tree or blob cannot bound a rev-list)."""
    refs = {}
    for line in data.split(b"\n"):
        parts = line.split(b" ", 3)
        if len(parts) != 4 or not _OID.match(parts[0]):
            continue
        oid, kind, peeled, name = parts
        if kind == b"commit" or (kind == b"tag" and peeled in (b"commit", b"tag")):
            refs[name.decode(errors="surrogateescape")] = oid.decode()
    return refs


def parse_batch(data: bytes) -> dict[str, tuple[str, bytes]]:
    """`git cat-file --batch` output -> {oid: (type, raw object)}.

    Records are "<oid> <type> <size>\\n<raw>\\n"; a missing object is
    "<name> missing\\n" and is left out.
    """
    objects: dict[str, tuple[str, bytes]] = {}
    pos = 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        if end < 0:
            raise InputError("git cat-file output ends inside a header")
        header = data[pos:end].split(b" ")
        pos = end + 1
        if len(header) == 2 and header[1] in (b"missing", b"ambiguous"):
            continue
        if len(header) != 3 or not header[2].isdigit():
            raise InputError(f"unexpected git cat-file header {data[pos - 1 - 200:pos - 1]!r}")
        size = int(header[2])
        if pos + size > len(data):
            raise InputError(f"git cat-file output truncated in object {header[0].decode(errors='replace')}")
        objects[header[0].decode()] = (header[1].decode(), data[pos:pos + size])
        pos += size + 1  # the LF after each object
    return objects


def _split_object(raw: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Header lines (continuations folded in) and the message bytes."""
    head, _, message = raw.partition(b"\n\n")
    headers: list[tuple[bytes, bytes]] = []
    for line in head.split(b"\n"):
        if line.startswith(b" ") and headers:  # gpgsig, mergetag continuation
            key, value = headers[-1]
            headers[-1] = (key, value + b"\n" + line[1:])
        elif line:
            key, _, value = line.partition(b" ")
            headers.append((key, value))
    return headers, message


def _first(headers: list[tuple[bytes, bytes]], key: bytes) -> bytes | None:
    return next((v for k, v in headers if k == key), None)


def parse_person(value: bytes, declared: str | None = None) -> Person:
    """"Jane Maintainer <jane@example.org> 1795773251 +0000" -> Person."""
    m = _IDENT.match(value)
    if not m:
        return Person(decode(value.strip(), declared), "")
    return Person(decode(m.group(1).strip(), declared), decode(m.group(2).strip(), declared))


def parse_commit(oid: str, raw: bytes) -> Commit:
    headers, message = _split_object(raw)
    if _first(headers, b"tree") is None:
        raise InputError(f"commit {oid} has no tree header")
    enc = _first(headers, b"encoding")
    declared = enc.decode("ascii", "replace").strip() if enc else None
    author = _first(headers, b"author") or b""
    committer = _first(headers, b"committer") or author
    return Commit(
        rev=oid,
        parents=tuple(v.decode("ascii", "replace") for k, v in headers if k == b"parent"),
        author=parse_person(author, declared),
        committer=parse_person(committer, declared),
        message=decode(message, declared),
    )


def parse_tag(oid: str, raw: bytes) -> Tag:
    headers, message = _split_object(raw)
    target = _first(headers, b"object")
    if target is None or not _OID.match(target):
        raise InputError(f"tag {oid} has no object header")
    tagger = _first(headers, b"tagger")
    # A signed tag carries its signature at the end of the message.
    message = message.split(b"-----BEGIN PGP SIGNATURE-----", 1)[0]
    message = message.split(b"-----BEGIN SSH SIGNATURE-----", 1)[0]
    return Tag(
        oid=oid,
        target=target.decode(),
        target_type=(_first(headers, b"type") or b"commit").decode("ascii", "replace"),
        name=decode(_first(headers, b"tag") or b""),
        tagger=parse_person(tagger) if tagger is not None else None,
        message=decode(message),
    )


def parse_numstat(data: bytes) -> dict[str, Stats]:
    """`git diff-tree --stdin -z --numstat --no-renames --always` output ->
    {commit: Stats}.

    Each commit starts with its id and a NUL; each changed file is
    "<added>\\t<deleted>\\t<path>" and a NUL, with "-" counts for binary
    files (counted as 0 lines, as fedmsg's pygit2 stats do).
    """
    stats: dict[str, Stats] = {}
    current: Stats | None = None
    for token in data.split(b"\0"):
        if not token.strip():
            continue
        token = token.lstrip(b"\n")
        if _OID.match(token):
            current = stats.setdefault(token.decode(), Stats())
            continue
        parts = token.split(b"\t", 2)
        if current is None or len(parts) != 3:
            raise InputError(f"unexpected git diff-tree output {token[:120]!r}")
        added, deleted, path = parts
        current.add(decode(path), _count(added), _count(deleted))
    return stats


def _count(value: bytes) -> int:
    return int(value) if value.isdigit() else 0
