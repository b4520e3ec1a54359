"""Mail dak sends, as events.  Sans-I/O: the bytes of one mail in.

Kinds (dak's templates/): "<changes> ACCEPTED into <suite>" to the
maintainer, "Accepted <src> <ver> (<arches>) into <suite>" to the announce
lists, "Bug#N: fixed in <src> <ver>", "<changes> is NEW", "<changes>
REJECTED", and "Bug#N: Removed package(s) from <suites>".  Current dak says
the same in `Debian-*` headers (since 2022-09) and signs with PGP/MIME;
older mail is plain text, and katie's (2002) is Latin-1 without a charset.
"""

from __future__ import annotations

import email
import email.errors
import email.message
import re
from dataclasses import dataclass, field
from datetime import UTC
from email.header import decode_header, make_header
from email.utils import parsedate_to_datetime

from debpulse.adapters.common.mailsize import check_header_size
from debpulse.emitters.errors import InputError
from debpulse.emitters.event import Event

from . import events
from .changes import bug_number, parse_changes, signed_block, split_name
from .removals import REASON_END, REASON_START, parse_summary, split_suites
from .signature import Keyring

_ACCEPTED = re.compile(r"^(?P<changes>\S+\.changes) ACCEPTED into (?P<suite>\S+)$")
_NEW = re.compile(r"^(?P<changes>\S+\.changes) is NEW$")
_REJECTED = re.compile(r"^(?P<changes>\S+\.changes) REJECTED$")
# Katie's announces had no "into <suite>".
_ANNOUNCE = re.compile(r"^Accepted (?P<source>\S+) (?P<version>\S+) \((?P<arch>[^)]+)\)(?: into (?P<suite>\S+))?$")
_FIXED = re.compile(r"^Bug#(?P<bug>\d+): fixed in (?P<source>\S+) (?P<version>\S+)$")
_REMOVED = re.compile(r"^Bug#(?P<bug>\d+): Removed package\(s\) from (?P<suites>.+)$")


@dataclass(frozen=True)
class MailResult:
    """Events from a dak mail, or why the mail gave none (`ignored`)."""

    events: list[Event] = field(default_factory=list)
    ignored: str | None = None


def is_dak_mail(msg: email.message.Message) -> bool:
    # str(): a header with 8-bit bytes comes back as an email.header.Header.
    if any("DAK" in str(v) for v in msg.get_all("X-Debian", [])) or _header(msg, "Debian") == "DAK":
        return True
    # dak's own marker in Bcc-turned-header, and katie's (before 2008).
    return msg.get("X-DAK") is not None or msg.get("X-Katie") is not None


def _header(msg: email.message.Message, name: str) -> str:
    value = msg.get(name)
    if value is None:
        return ""
    try:
        text = str(make_header(decode_header(value)))
    except (ValueError, LookupError, email.errors.HeaderParseError):  # ValueError: a NUL in the charset name
        text = str(value)
    return " ".join(text.split())


def _body(msg: email.message.Message) -> bytes:
    """The text of the mail: the signed part of PGP/MIME, transfer encoding undone."""
    for part in msg.walk():
        if part.is_multipart():
            continue
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            return payload if isinstance(payload, bytes) else b""
    raise InputError("dak mail without a text/plain part")


def _text(raw: bytes, msg: email.message.Message) -> str:
    """The body as text with "\n" line ends (a mail stored with CRLF too)."""
    charset = msg.get_content_charset() or "utf-8"
    try:
        text = raw.decode(charset)
    except (UnicodeDecodeError, LookupError):
        text = raw.decode("latin-1")
    return text.replace("\r\n", "\n")


def parse_mail(data: bytes, keyring: Keyring | None = None, *, origin: str = "") -> MailResult:
    """One mail -> its events.  Raises InputError for a dak mail we cannot use."""
    check_header_size(data)
    msg = email.message_from_bytes(data)
    if not msg.keys():
        raise InputError("not a mail: no header")
    if not is_dak_mail(msg):
        return MailResult(ignored="not from dak")
    subject = _header(msg, "Subject")
    message_id = _header(msg, "Message-Id").strip("<>") or None
    action = _header(msg, "Debian-Archive-Action").lower()
    ctx = _Mail(msg, subject, message_id, keyring, origin)

    if m := _REMOVED.match(subject):
        bug = bug_number(m["bug"])
        if bug is None:
            raise InputError(f"removal mail for no bug: {subject!r}")
        return ctx.removal(bug, m["suites"])
    if action == "remove":
        raise InputError(f"removal mail with an unknown subject: {subject!r}")
    if m := _ACCEPTED.match(subject):
        return ctx.accepted(m["changes"], m["suite"], policy=action == "policy")
    if m := _ANNOUNCE.match(subject):
        return ctx.accepted(None, m["suite"], policy=action == "policy")
    if _FIXED.match(subject):
        return ctx.accepted(None, None, policy=action == "policy")
    if m := _NEW.match(subject):
        return ctx.new(m["changes"])
    if m := _REJECTED.match(subject):
        return ctx.rejected(m["changes"])
    # dak also sends "Comments regarding ...", "Results of processing ...",
    # transition and NEW-queue summaries: nothing to announce.
    return MailResult(ignored=f"dak mail of no interest: {subject[:80]!r}")


class _Mail:
    def __init__(self, msg: email.message.Message, subject: str, message_id: str | None,
                 keyring: Keyring | None, origin: str) -> None:
        self.msg, self.subject, self.message_id, self.keyring, self.origin = msg, subject, message_id, keyring, origin

    @property
    def day(self) -> str:
        """The UTC day the mail was sent (part of the NEW and REJECTED keys)."""
        try:
            sent = parsedate_to_datetime(self.header("Date"))
        except (TypeError, ValueError):
            return ""
        if sent.tzinfo is None:
            sent = sent.replace(tzinfo=UTC)
        return events.utc_day(sent.timestamp())

    def header(self, name: str) -> str:
        return _header(self.msg, name)

    def accepted(self, name: str | None, suite: str | None, *, policy: bool) -> MailResult:
        block = signed_block(_body(self.msg))
        if block is None:
            raise InputError(f"no signed .changes in {self.subject!r}")
        changes = parse_changes(block, self.keyring)
        # Current dak names the file and suite in headers; older announces
        # and bug closures only carry the .changes itself.
        name = self.header("Debian-Changes") or name or changes.filename()
        if not name.endswith(".changes"):
            raise InputError(f"Debian-Changes {name[:80]!r} is not a .changes file name")
        suite = self.header("Debian-Suite") or suite or changes.suites[0]
        if policy or "->" in suite:
            # "stable->proposed-updates": accepted into a policy queue, not yet into the suite.
            base, _, queue = suite.partition("->")
            if not base:
                raise InputError(f"accepted into no suite: {suite[:80]!r}")
            fields = {**changes.fields(), "suites": [base]}
            return MailResult([events.new(name, fields, day=self.day, route="mail", queue=queue or base,
                                          message_id=self.message_id, origin=self.origin)])
        return MailResult([events.accepted(changes, name, suite, route="mail",
                                           message_id=self.message_id, origin=self.origin)])

    def _upload_names(self, name: str) -> dict[str, object]:
        source, version = self.header("Debian-Source"), self.header("Debian-Version")
        arches = self.header("Debian-Architecture").split()
        if not (source and version):
            parts = split_name(name)
            if parts is None:
                raise InputError(f"cannot tell the upload from {name!r}")
            source, version = parts[0], parts[1]
        return events.name_fields(source, version, arches)

    def new(self, name: str) -> MailResult:
        return MailResult([events.new(name, self._upload_names(name), day=self.day, route="mail",
                                      message_id=self.message_id, origin=self.origin)])

    def rejected(self, name: str) -> MailResult:
        text = _text(_body(self.msg), self.msg)
        # queue.rejected: the reasons, the warnings, then "===" and boilerplate.
        reason = re.split(r"^===\s*$", text, maxsplit=1, flags=re.M)[0].strip()
        if not reason:
            raise InputError(f"REJECTED mail without a reason: {name}")
        # "automatic", "manual", or older dak's "automatic (moo)"
        rejection = (self.header("X-DAK-Rejection").lower().split() or [None])[0]
        # A manual rejection comes From the ftpmaster who rejected it.
        rejected_by = self.header("From") or None if rejection == "manual" else None
        return MailResult([events.rejected(name, self._upload_names(name), reason, day=self.day, route="mail",
                                           rejection=rejection, rejected_by=rejected_by,
                                           message_id=self.message_id, origin=self.origin)])

    def removal(self, bug: int, suites_text: str) -> MailResult:
        text = _text(_body(self.msg), self.msg)
        head, start, rest = text.partition(REASON_START)
        if not start:
            raise InputError("removal mail without a reason section")
        reason = rest.split(REASON_END, 1)[0]
        sources, binaries = parse_summary(head.splitlines())
        if not sources and not binaries:
            raise InputError("removal mail without 'package | version | architectures' lines")
        suites = split_suites(self.header("Debian-Suite") or suites_text)
        return MailResult([events.removed(sources, binaries, suites, reason, [bug], route="mail",
                                          date=self.header("Date") or None, message_id=self.message_id,
                                          origin=self.origin)])
