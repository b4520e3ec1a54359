"""Mail from bugs.debian.org into Events.  Pure: bytes in, Events out.

debbugs marks every mail it sends with `X-Loop: owner@bugs.debian.org` and
says what the mail is in `X-Debian-PR-Message` ("followup 979653",
"closed 999743", "transcript", ...), as in scripts/process and
scripts/service.  Package, source and tags come from the other
`X-Debian-PR-*` headers.

Idempotency keys (shared with the SOAP poller, see reconcile.py): a bug
has one report, keyed `debbugs:<bug>:report`.  Every later change was
caused by one mail debbugs received, and that mail's Message-ID is in the
bug log (get_bug_log) as well as in what debbugs sends about it: followups
are the received mail itself (resent), acknowledgements of -done,
-forwarded and control mail put it first in References.  So the key is
`debbugs:<bug>:<kind>:<message-id>`, and `debbugs:control:<message-id>`
for one control mail however many bugs it touched.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass, replace
from email.message import EmailMessage, Message
from typing import Any

from debpulse.adapters.common.mailsize import check_header_size
from debpulse.emitters.errors import InputError
from debpulse.emitters.event import Event

from .transcript import parse_transcript

LOOP = "owner@bugs.debian.org"

# X-Debian-PR-Message first word -> our event (topic suffix).
KINDS = {
    "report": "report",
    "followup": "followup",
    "closed": "close",
    "they-closed": "close",
    "forwarded": "forward",
    "transcript": "control",
}
# Acknowledgements and other replies carry no new fact: counted, skipped.
NOT_DEBBUGS = "not-debbugs"  # the kind of a mail without debbugs' X-Loop
SKIPPED = {"ack", "ack-info", "ack-quiet", "ack-info-quiet", "ack-maintonly", "ack-info-maintonly",
           "list", "error", "getinfo", "doc-text", "doc-html"}

_SUBJECT_BUG = re.compile(r"Bug\s*#\s*([0-9]{1,9})(?![0-9])", re.I)
_MSGID = re.compile(r"<[^<>\s]+>")


@dataclass(frozen=True)
class ParsedMail:
    kind: str                   # first word of X-Debian-PR-Message, or NOT_DEBBUGS
    events: list[Event]         # empty when the kind is skipped


def parse_mail(data: bytes, origin: str = "") -> ParsedMail:
    """The events of one mail from debbugs; InputError when it is not one
    or cannot be understood."""
    if not data.strip():
        raise InputError("empty mail")
    check_header_size(data)
    try:
        msg = email.message_from_bytes(data, policy=email.policy.default)
    except Exception as exc:  # the email package raises many kinds on broken input
        raise InputError(f"unparseable mail: {exc}") from None
    if msg.defects and not msg.keys():
        raise InputError(f"not a mail: {msg.defects[0].__class__.__name__}")
    loops = [str(v) for v in msg.get_all("X-Loop", [])]
    if not any(LOOP in v.lower() for v in loops):
        # A bugs host's mailbox also gets list mail and the like: not ours
        # to judge, so skipped (and filed as read), never quarantined.
        return ParsedMail(NOT_DEBBUGS, [])
    pr_message = (_header(msg, "X-Debian-PR-Message") or "").split()
    if not pr_message:
        raise InputError("debbugs mail without X-Debian-PR-Message")
    kind = pr_message[0].lower()
    if kind in SKIPPED:
        return ParsedMail(kind, [])
    if kind not in KINDS:
        raise InputError(f"unknown X-Debian-PR-Message kind {kind!r}")
    if kind == "transcript":
        return ParsedMail(kind, [_control_event(msg, origin)])
    return ParsedMail(kind, [_bug_event(msg, kind, pr_message, origin)])


def _header(msg: Message, name: str) -> str | None:
    try:
        value = msg.get(name)
    except Exception:  # a header the email package cannot decode
        raise InputError(f"undecodable {name} header") from None
    return None if value is None else " ".join(str(value).split())


def _bug_number(msg: Message, pr_message: list[str]) -> int:
    if len(pr_message) > 1 and re.fullmatch(r"[0-9]{1,9}", pr_message[1]):
        return int(pr_message[1])
    m = _SUBJECT_BUG.search(_header(msg, "Subject") or "")
    if m:
        return int(m.group(1))
    raise InputError("no bug number in X-Debian-PR-Message or Subject")


def _message_ids(value: str | None) -> list[str]:
    return [m[1:-1] for m in _MSGID.findall(value or "")]


def _bug_event(msg: EmailMessage, kind: str, pr_message: list[str], origin: str) -> Event:
    bug = _bug_number(msg, pr_message)
    if bug <= 0:
        raise InputError(f"bad bug number {bug}")
    subject = _header(msg, "Subject") or ""
    references = _message_ids(_header(msg, "References"))
    body: dict[str, Any] = {
        "bug": bug,
        "package": _header(msg, "X-Debian-PR-Package") or "",
        "source": _header(msg, "X-Debian-PR-Source") or None,
        "tags": (_header(msg, "X-Debian-PR-Keywords") or "").split(),
        "severity": None,
        "enriched": False,
        "status": None,
        "via": "mail",
    }
    if kind in ("report", "followup"):
        own = _message_ids(_header(msg, "Message-ID"))
        body["message_id"] = own[0] if own else None
        body["from"] = _header(msg, "From")
        body["title"] = _strip_subject(subject, bug)
        body["severity"] = _pseudo_header(_first_text(msg), "Severity")
        # scripts/process also sends "report N" for mail to N-submitter, but
        # only a new report has no References.
        if kind == "report" and references:
            kind = "followup"
        topic = kind
    else:
        incoming = references[0] if references else None
        body["message_id"] = incoming
        parts = _attached_messages(msg)
        closing = next((p for p in parts if incoming and incoming in _message_ids(_header(p, "Message-ID"))), None)
        if kind == "forwarded":
            topic = "forward"
            body["title"] = _parenthesised(subject, "marked as forwarded") or _strip_subject(subject, bug)
            m = re.search(r"author\(s\)\s+(\S+)", _first_text(msg) or "")
            body["forwarded_to"] = m.group(1) if m else None
            body["from"] = _header(closing, "From") if closing else _header(msg, "To")
        else:
            topic = "close"
            text = _first_text(closing) if closing else None
            if kind == "closed":
                body["title"] = _parenthesised(subject, "marked as done") or _strip_subject(subject, bug)
                # dak closes bugs with a "Done: <Changed-By>" pseudo-header.
                body["from"] = _pseudo_header(text, "Done") or (
                    _header(closing, "From") if closing else _header(msg, "To"))
            else:
                body["title"], body["from"] = _they_closed(msg, bug, closing, parts, text)
            body["version"] = (_pseudo_header(text, "Version") or _pseudo_header(text, "Source-Version")
                               if text else None)
            report = next((p for p in parts if p is not closing), None)
            body["severity"] = _pseudo_header(_first_text(report), "Severity") if report else None
        if not body["title"]:
            body["title"] = _strip_subject(subject, bug)
    key_id = body["message_id"] or _own_id(msg)
    key = f"debbugs:{bug}:report" if topic == "report" else (
        f"debbugs:{bug}:{topic}:{key_id}" if key_id else None)
    return Event(topic=f"debbugs.bug.{topic}", body=body, key=key, origin=origin)


def _they_closed(msg: EmailMessage, bug: int, closing: EmailMessage | None, parts: list[EmailMessage],
                 closing_text: str | None) -> tuple[str, str | None]:
    """The bug's title and who closed it, from the notice debbugs sends the
    submitter (scripts/process, mail/process_your_bug_done):

        Subject: Bug#N closed by <From> [(reply to <Reply-To>)] (<closing subject>)

        #N: <the bug's title>

        It has been closed by <From> [(reply to <Reply-To>)].

    with the closing mail and the original report attached.  The closing
    mail's From may be the archive's address (dak closes bugs as "Debian
    FTP Masters"): its Done: pseudo-header, then its Reply-To, name the person."""
    notice = _first_text(msg) or ""
    m = re.search(rf"^#{bug}: (.+)$", notice, re.M)
    title = m.group(1).strip() if m else ""
    if not title:
        report = next((p for p in parts if p is not closing), None)
        title = _strip_subject(_header(report, "Subject") or "", bug) if report is not None else ""
    if not title:  # no notice text, no report: the closing mail's subject is the best left
        m = re.match(rf"Bug\s*#\s*{bug} closed by .*? \((.*)\)$", _header(msg, "Subject") or "")
        title = _strip_subject(m.group(1), bug) if m else ""
    closer = _pseudo_header(closing_text, "Done")
    if not closer and closing is not None:
        closer = _header(closing, "Reply-To") or _header(closing, "From")
    if not closer:
        m = re.search(r"^It has been closed by (.+?)\.?$", notice, re.M)
        closer = _marked_by(m.group(1)) if m else None
    return title, closer


def _marked_by(text: str) -> str:
    """debbugs' "From (reply to Reply-To)": the person is the Reply-To."""
    m = re.fullmatch(r"(.*?) \(reply to (.+)\)", text.strip())
    return m.group(2) if m else text.strip()


def _control_event(msg: EmailMessage, origin: str) -> Event:
    subject = _header(msg, "Subject") or ""
    text = _first_text(msg)
    if text is None:
        raise InputError("control transcript without a text part")
    transcript = parse_transcript(text, subject)
    bugs = transcript.bugs
    if not bugs:
        raise InputError("control transcript that names no bug")
    references = _message_ids(_header(msg, "References"))
    incoming = references[0] if references else None
    body = {
        "bugs": bugs,
        "packages": (_header(msg, "X-Debian-PR-Package") or "").split(),
        "from": _header(msg, "To"),
        "subject": transcript.subject,
        "changes": transcript.changes,
        "errors": transcript.errors,
        "message_id": incoming,
        "via": "mail",
    }
    key_id = incoming or _own_id(msg)
    return Event(topic="debbugs.bug.control", body=body,
                 key=f"debbugs:control:{key_id}" if key_id else None, origin=origin)


def _own_id(msg: Message) -> str | None:
    ids = _message_ids(_header(msg, "Message-ID"))
    return ids[0] if ids else None


def _strip_subject(subject: str, bug: int) -> str:
    """"Re: Bug#979653: xfsprogs: ..." -> "xfsprogs: ..."."""
    s = subject
    while True:
        t = re.sub(r"^\s*(?:re|fwd?|aw)\s*:\s*", "", s, flags=re.I)
        t = re.sub(rf"^\s*Bug\s*#\s*{bug}\s*:?\s*", "", t, flags=re.I)
        if t == s:
            return s.strip()
        s = t


def _parenthesised(subject: str, marker: str) -> str | None:
    """The title in "Bug#N: marked as done (title)"."""
    head = f": {marker} ("
    i = subject.find(head)
    if i < 0 or not subject.endswith(")"):
        return None
    return subject[i + len(head):-1].strip()


def _attached_messages(msg: EmailMessage) -> list[EmailMessage]:
    out = []
    for part in msg.walk():
        if part.get_content_type() == "message/rfc822":
            try:
                inner = part.get_content()
            except Exception:
                continue
            if isinstance(inner, Message):
                out.append(inner)  # type: ignore[arg-type]
    return out


def _first_text(msg: Message | None) -> str | None:
    """The first text/plain part that is not inside an attached message."""
    if msg is None:
        return None
    stack = [msg]
    while stack:
        part = stack.pop(0)
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            continue
        if part.is_multipart():
            stack = list(part.iter_parts()) + stack  # type: ignore[attr-defined]
            continue
        if ctype == "text/plain":
            try:
                return part.get_content()  # type: ignore[attr-defined,no-any-return]
            except (LookupError, ValueError):  # unknown charset, broken encoding
                payload = part.get_payload(decode=True) or b""
                return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload)
    return None


def _pseudo_header(text: str | None, name: str) -> str | None:
    """A `Name: value` line in the first paragraph of a mail body."""
    if not text:
        return None
    for line in text.lstrip().split("\n\n", 1)[0].splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == name.lower():
            return value.strip() or None
    return None


def with_status(event: Event, status: dict[str, Any] | None) -> Event:
    """The event carrying the bug's current status from SOAP (enriched), or
    marked as not enriched when there is none."""
    if "bug" not in event.body:
        return event
    body = dict(event.body)
    body["enriched"] = status is not None
    body["status"] = status
    if status is not None:
        body["severity"] = status.get("severity") or body.get("severity")
        # The title stays the one the mail carried (what the bug was filed or
        # discussed as); today's title, if it was retitled since, is status.subject.
        if not body.get("title") and status.get("subject"):
            body["title"] = status["subject"]
        if event.topic == "debbugs.bug.forward" and not body.get("forwarded_to"):
            body["forwarded_to"] = status.get("forwarded")
    return replace(event, body=body)
