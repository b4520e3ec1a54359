"""A .changes file (deb-changes(5)) as the fields a message carries.

Sans-I/O: bytes in, a `Changes` out, or InputError.  The fields are read
with python-debian; the OpenPGP armour is split off here so that a
truncated or tampered file is named as such instead of half-parsed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from debian.deb822 import Changes as Deb822Changes

from debpulse.emitters.errors import InputError

from .signature import UNVERIFIED, Keyring, SignatureCheck

BEGIN_SIGNED = b"-----BEGIN PGP SIGNED MESSAGE-----"
BEGIN_SIGNATURE = b"-----BEGIN PGP SIGNATURE-----"
END_SIGNATURE = b"-----END PGP SIGNATURE-----"
REQUIRED = ("Source", "Version", "Distribution", "Architecture", "Maintainer", "Files")
_NAME = re.compile(r"^(?P<source>[a-z0-9][a-z0-9.+-]+)_(?P<version>[A-Za-z0-9.+~:-]+)_(?P<arch>[a-z0-9-]+)\.changes$")
_SOURCE = re.compile(r"^(?P<name>[a-z0-9][a-z0-9.+-]*)(?: \((?P<version>[^)]+)\))?$")
_BUG = re.compile(r"#?0*([1-9][0-9]{0,9})")


@dataclass(frozen=True)
class Changes:
    source: str
    version: str
    architectures: list[str]
    suites: list[str]
    maintainer: str
    changed_by: str | None
    urgency: str | None
    closes: list[int]
    binaries: list[str]
    files: list[dict[str, Any]]
    date: str | None
    signature: SignatureCheck = field(default_factory=lambda: SignatureCheck(UNVERIFIED, detail="not checked"))

    def fields(self) -> dict[str, Any]:
        """The body fields every upload message shares (DESIGN.md's topic table)."""
        return {
            "source": self.source,
            "version": self.version,
            "architectures": self.architectures,
            "suites": self.suites,
            "maintainer": self.maintainer,
            "changed_by": self.changed_by,
            "urgency": self.urgency,
            "closes": self.closes,
            "binaries": self.binaries,
            "files": self.files,
            "date": self.date,
            "signature": self.signature.status,
            "signed_by": self.signature.signed_by,
        }

    def filename(self) -> str:
        """The name dpkg-genchanges gives such an upload, for mails that do
        not name the file (the "Accepted" announce before 2022): source,
        version without epoch, and `source`, the one build architecture,
        `all`, or `multi`."""
        arches = [a for a in self.architectures if a != "source"]
        build = [a for a in arches if a != "all"]
        if not arches:
            suffix = "source"
        elif len(build) == 1:
            suffix = build[0]
        elif not build:
            suffix = "all"
        else:
            suffix = "multi"
        return f"{self.source}_{strip_epoch(self.version)}_{suffix}.changes"


def strip_epoch(version: str) -> str:
    return version.split(":", 1)[1] if ":" in version else version


def bug_number(word: str) -> int | None:
    """A bug number as dak writes one ("570704" or "#570704"), or None when
    `word` is not one (0, digits other than ASCII, absurdly long)."""
    m = _BUG.fullmatch(word)
    return int(m[1]) if m else None


def split_name(name: str) -> tuple[str, str, str] | None:
    """`hello_2.10-3_amd64.changes` -> (hello, 2.10-3, amd64)."""
    m = _NAME.match(name)
    return (m["source"], m["version"], m["arch"]) if m else None


def signed_block(text: bytes) -> bytes | None:
    """The first clearsigned document inside `text` (a mail body), or None."""
    start = text.find(BEGIN_SIGNED)
    if start < 0:
        return None
    end = text.find(END_SIGNATURE, start)
    if end < 0:
        return text[start:]  # truncated: parse_changes says so
    return text[start:end + len(END_SIGNATURE)] + b"\n"


def _payload(data: bytes) -> bytes:
    """The signed text of a clearsigned document, dash-escaping undone."""
    lines = data.splitlines()
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines or lines[0].strip() != BEGIN_SIGNED:
        if BEGIN_SIGNED in data:
            raise InputError("text before the signed part of the .changes")
        return data  # unsigned (dak's own copies in queue directories may be)
    try:
        begin_sig = next(i for i, line in enumerate(lines) if line.strip() == BEGIN_SIGNATURE)
    except StopIteration:
        raise InputError("truncated .changes: the OpenPGP signature is missing") from None
    if not any(line.strip() == END_SIGNATURE for line in lines[begin_sig:]):
        raise InputError("truncated .changes: the OpenPGP signature is incomplete")
    # Armor headers ("Hash: SHA512") up to the first empty line.
    try:
        body_start = next(i for i, line in enumerate(lines) if not line.strip()) + 1
    except StopIteration:
        raise InputError("malformed .changes: no end of the armor headers") from None
    body = [line[2:] if line.startswith(b"- ") else line for line in lines[body_start:begin_sig]]
    return b"\n".join(body) + b"\n"


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        # Katie-era uploads (before 2005 or so) are Latin-1 without saying so.
        return raw.decode("latin-1")


def parse_changes(data: bytes, keyring: Keyring | None = None) -> Changes:
    """Parse a .changes file; check its signature when a keyring is given.

    Raises InputError for a file that is not a usable .changes, and for a
    bad signature by a key of the keyring.
    """
    payload = _payload(data)
    try:
        control = Deb822Changes(_text(payload))
    except Exception as exc:  # python-debian raises assorted errors on garbage
        raise InputError(f"unreadable .changes: {exc}") from None
    missing = [f for f in REQUIRED if not _present(control.get(f))]
    if missing:
        what = "truncated or not a .changes" if len(missing) > 2 else "malformed .changes"
        raise InputError(f"{what}: no {', '.join(missing)} field")

    m = _SOURCE.match(control["Source"].strip())
    if not m:
        raise InputError(f"malformed .changes: Source {control['Source'].strip()!r}")
    source = m["name"]
    version = control["Version"].strip()
    if not re.fullmatch(r"[A-Za-z0-9.+~:-]+", version):
        raise InputError(f"malformed .changes: Version {version!r}")

    closes: list[int] = []
    for word in control.get("Closes", "").replace(",", " ").split():
        bug = bug_number(word)
        if bug is None:
            raise InputError(f"malformed .changes: Closes {word!r} is not a bug number")
        closes.append(bug)

    files = _files(control)
    urgency = control.get("Urgency", "").split()
    check = keyring.check(data) if keyring is not None else SignatureCheck(UNVERIFIED, detail="no keyring configured")
    if check.status == "bad":
        raise InputError(check.detail)
    return Changes(
        source=source,
        version=version,
        architectures=control["Architecture"].split(),
        suites=control["Distribution"].split(),
        maintainer=" ".join(control["Maintainer"].split()),
        changed_by=" ".join(control["Changed-By"].split()) if control.get("Changed-By") else None,
        urgency=urgency[0].lower() if urgency else None,
        closes=closes,
        binaries=control.get("Binary", "").split(),
        files=files,
        date=control.get("Date", "").strip() or None,
        signature=check,
    )


def _present(value: object) -> bool:
    # Files is parsed into a list of dicts, the other fields are strings.
    return bool(value.strip()) if isinstance(value, str) else bool(value)


def _files(control: Deb822Changes) -> list[dict[str, Any]]:
    """Files with their SHA-256 (Format 1.8); Format 1.7 only has MD5."""
    try:
        listed = [(f["name"], _size(f["size"])) for f in control["Files"]]
        sha256 = {f["name"]: (_size(f["size"]), f["sha256"]) for f in control.get("Checksums-Sha256", [])}
    except (KeyError, ValueError, TypeError):
        raise InputError("malformed .changes: bad line in Files or Checksums-Sha256") from None
    if not listed:
        raise InputError("malformed .changes: empty Files field")
    if sha256 and set(sha256) != {name for name, _ in listed}:
        raise InputError("malformed .changes: Files and Checksums-Sha256 list different files")
    out = []
    for name, size in listed:
        if name in sha256:
            if sha256[name][0] != size or not re.fullmatch(r"[0-9a-f]{64}", sha256[name][1]):
                raise InputError(f"malformed .changes: checksum line of {name}")
            out.append({"name": name, "size": size, "sha256": sha256[name][1]})
        else:
            out.append({"name": name, "size": size, "sha256": None})
    return out


def _size(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"size {text!r}")
    return int(text)
