"""Mails as current dak writes them, filled from its templates/ (process-unchecked.accepted,
process-unchecked.new, queue.rejected, rm.bug-close) for the kinds no public archive
holds a real copy of, and for wrapping .changes made during the tests.

Signed the way daklib/utils.py:send_mail signs (PGP/MIME, quoted-printable).
"""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from email.encoders import encode_7or8bit
from email.message import EmailMessage, Message
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, make_msgid

DAK_FROM = "Debian FTP Masters <ftpmaster@ftp-master.debian.org>"


def _headers(msg: Message, subject: str, extra: dict[str, str], message_id: str | None) -> None:
    msg["From"] = DAK_FROM
    msg["To"] = "Maintainer <maint@example.org>"
    msg["X-DAK"] = "dak process-upload"
    msg["X-Debian"] = "DAK"
    for k, v in extra.items():
        msg[k] = v
    msg["Precedence"] = "bulk"
    msg["Auto-Submitted"] = "auto-generated"
    msg["Subject"] = subject
    msg["Message-Id"] = message_id or make_msgid(domain="fasolo.debian.org")
    msg["Date"] = format_datetime(datetime.now(UTC))


def _upload_headers(changes: str, source: str, version: str, arch: str, **more: str) -> dict[str, str]:
    h = {
        "X-Debian-Package": source,
        "Debian": "DAK",
        "Debian-Changes": changes,
        "Debian-Source": source,
        "Debian-Version": version,
        "Debian-Architecture": arch,
    }
    h.update({k.replace("_", "-"): v for k, v in more.items()})
    return h


def pgp_mime(text: str, gnupg_home: str | None) -> Message:
    """The body as dak sends it: QP text/plain, signed in multipart/signed when a key is given."""
    part = MIMEText(text, "plain", "utf-8")
    del part["Content-Transfer-Encoding"]
    part.replace_header("Content-Type", 'text/plain; charset="utf-8"')
    part.set_payload(_qp(text))
    part["Content-Transfer-Encoding"] = "quoted-printable"
    if gnupg_home is None:
        return part
    signed = part.as_bytes().replace(b"\n", b"\r\n")
    sig = subprocess.run(["gpg", "--batch", "--armor", "--detach-sign"], input=signed, capture_output=True,
                         env={**os.environ, "GNUPGHOME": gnupg_home}, check=True).stdout
    outer = MIMEMultipart("signed", micalg="pgp-sha256", protocol="application/pgp-signature")
    outer.attach(part)
    outer.attach(MIMEApplication(sig, "pgp-signature", _encoder=encode_7or8bit))
    return outer


def _qp(text: str) -> str:
    import quopri

    return quopri.encodestring(text.encode("utf-8")).decode("ascii")


def accepted(changes: bytes, name: str, source: str, version: str, arch: str, suite: str = "unstable",
             *, ftpmaster_home: str | None = None, message_id: str | None = None, action: str = "accept") -> bytes:
    body = "Thank you for your contribution to Debian.\n\n\n\nAccepted:\n\n" + changes.decode("utf-8")
    msg = pgp_mime(body, ftpmaster_home)
    _headers(msg, f"{name} ACCEPTED into {suite}",
             _upload_headers(name, source, version, arch, Debian_Suite=suite, Debian_Archive_Action=action),
             message_id)
    return msg.as_bytes()


def new(name: str, source: str, version: str, arch: str, *, current: bool = True) -> bytes:
    msg = EmailMessage()
    extra = _upload_headers(name, source, version, arch, Debian_Archive_Action="new") if current else {
        "X-Debian-Package": source}
    _headers(msg, f"{name} is NEW", extra, None)
    msg.set_content(
        "\n\nYour package has been put into the NEW queue, which requires manual action\n"
        "from the ftpteam to process. The upload was otherwise valid (it had a good\n"
        "OpenPGP signature and file hashes are valid), so please be patient.\n",
        cte="quoted-printable")
    return msg.as_bytes()


def rejected(name: str, source: str, version: str, arch: str, reason: str) -> bytes:
    msg = EmailMessage()
    _headers(msg, f"{name} REJECTED",
             _upload_headers(name, source, version, arch, Debian_Archive_Action="reject",
                             X_DAK_Rejection="automatic"), None)
    msg.set_content(f"\n{reason}\n\n\n\n===\n\nPlease feel free to respond to this email if you don't "
                    "understand why\nyour files were rejected, or if you upload new files which address our\n"
                    "concerns.\n", cte="quoted-printable")
    return msg.as_bytes()


def summary(rows: list[tuple[str, str, str]]) -> str:
    """daklib/rm.py's summary: "%10s | %10s | %s"."""
    return "".join(f"{p:>10} | {v:>10} | {a}\n" for p, v, a in rows)


def removal(bug: int, rows: list[tuple[str, str, str]], suites: list[str], reason: str,
            sources: list[str]) -> bytes:
    msg = EmailMessage()
    suite_list = suites[0] if len(suites) == 1 else ", ".join(suites[:-1]) + " and " + suites[-1]
    msg["From"] = DAK_FROM
    msg["To"] = f"{bug}-close@bugs.debian.org"
    msg["X-DAK"] = "dak rm"
    msg["X-Debian"] = "DAK"
    msg["Debian"] = "DAK"
    msg["Debian-Archive-Action"] = "remove"
    msg["Debian-Source"] = ", ".join(sorted(sources))
    msg["Debian-Suite"] = ", ".join(sorted(suites))
    msg["Subject"] = f"Bug#{bug}: Removed package(s) from {suite_list}"
    msg["Message-Id"] = make_msgid(domain="fasolo.debian.org")
    msg["Date"] = format_datetime(datetime.now(UTC))
    text = (
        "We believe that the bug you reported is now fixed; the following\n"
        f"package(s) have been removed from {suite_list}:\n\n"
        f"{summary(rows)}\n------------------- Reason -------------------\n{reason}\n"
        "----------------------------------------------\n"
        "Note that the package(s) have simply been removed from the tag\ndatabase and may (or may not) still be "
        "in the pool; this is not a bug.\n"
    )
    msg.set_content(text, cte="8bit")
    return msg.as_bytes()


def removal_stanza(rows: list[tuple[str, str, str]], suites: list[str], reason: str, bugs: list[int],
                   date: str = "Fri, 27 Nov 2026 10:00:00 +0000", ftpmaster: str = "Ftp Master") -> bytes:
    """A removals.822 stanza as daklib/rm.py:remove() writes it."""
    suite_list = suites[0] if len(suites) == 1 else ", ".join(suites[:-1]) + " and " + suites[-1]
    out = f"Date: {date}\nFtpmaster: {ftpmaster}\nSuite: {suite_list}\n"
    srcs = [f"{p}_{v}" for p, v, a in rows if "source" in a]
    bins = []
    for p, v, a in rows:
        arches = ", ".join(x for x in a.split(", ") if x != "source")
        if arches:
            bins.append(f"{p}_{v} [{arches}]")
    if srcs:
        out += "Sources:\n" + "".join(f" {s}\n" for s in srcs)
    if bins:
        out += "Binaries:\n" + "".join(f" {b}\n" for b in bins)
    out += "Reason: " + reason.replace("\n", "\n ") + "\n"
    if bugs:
        out += "Bug: " + ", ".join(str(b) for b in bugs) + "\n"
    return (out + "\n").encode()
