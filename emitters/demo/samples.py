"""The sample inputs, built the way the legacy services write them.

One story runs through them: hello 2.10-3 is committed in git, accepted by
dak, taken for building by a buildd, and gets a bug report.  Every name is
made up (example.org); the formats are the services' own.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

SOURCE, VERSION, SUITE = "hello", "2.10-3", "unstable"
CHANGES_NAME = f"{SOURCE}_{VERSION}_source.changes"
MAINTAINER = "Jane Maintainer <jane@example.org>"
UPLOADER = "Łukasz Uploader <lukasz@example.org>"
REPORTER = "Rose Reporter <rose@example.org>"
BUG = 1100001
DAK_FROM = "Debian FTP Masters <ftpmaster@ftp-master.debian.org>"


def changes_text(now: datetime | None = None) -> str:
    """An unsigned source-only .changes (Format 1.8), as dpkg-genchanges writes it.

    The listed files are stand-ins: dak checks them, debpulse only reports
    their names, sizes and checksums.
    """
    files = {
        f"{SOURCE}_{VERSION}.dsc": f"Format: 3.0 (quilt)\nSource: {SOURCE}\nVersion: {VERSION}\n".encode(),
        f"{SOURCE}_{VERSION}.debian.tar.xz": b"debian/ directory of hello 2.10-3\n",
    }

    def listing(algo: str) -> str:
        return "".join(f" {hashlib.new(algo, data).hexdigest()} {len(data)} {name}\n" for name, data in files.items())

    files_field = "".join(f" {hashlib.md5(data).hexdigest()} {len(data)} devel optional {name}\n"
                          for name, data in files.items())
    date = format_datetime(now or datetime.now(UTC))
    return (
        f"Format: 1.8\nDate: {date}\nSource: {SOURCE}\nArchitecture: source\nVersion: {VERSION}\n"
        f"Distribution: {SUITE}\nUrgency: medium\nMaintainer: {MAINTAINER}\nChanged-By: {UPLOADER}\n"
        f"Changes:\n {SOURCE} ({VERSION}) {SUITE}; urgency=medium\n .\n   * Greet the whole world again.\n"
        f"Checksums-Sha1:\n{listing('sha1')}Checksums-Sha256:\n{listing('sha256')}Files:\n{files_field}"
    )


def uploader_key():  # type: ignore[no-untyped-def]
    """A throwaway OpenPGP key for the uploader (pysequoia Tsk)."""
    import pysequoia

    return pysequoia.Tsk.generate(UPLOADER)


def accepted_mail(uploader) -> bytes:  # type: ignore[no-untyped-def]
    """dak's "ACCEPTED into unstable" mail to the uploader, current format:
    the Debian-* headers (dak since 2022-09) and the body of its template
    process-unchecked.accepted with the signed .changes embedded, QP encoded.
    (dak signs the mail itself with PGP/MIME; debpulse reads it either way.)"""
    import pysequoia

    signed = pysequoia.sign(uploader.signer(), changes_text().encode(), mode=pysequoia.SignatureMode.CLEAR)
    msg = EmailMessage()
    msg["From"] = DAK_FROM
    msg["To"] = UPLOADER
    msg["X-DAK"] = "dak process-upload"
    msg["X-Debian"] = "DAK"
    msg["X-Debian-Package"] = SOURCE
    msg["Debian"] = "DAK"
    msg["Debian-Archive-Action"] = "accept"
    msg["Debian-Changes"] = CHANGES_NAME
    msg["Debian-Source"] = SOURCE
    msg["Debian-Version"] = VERSION
    msg["Debian-Architecture"] = "source"
    msg["Debian-Suite"] = SUITE
    msg["Precedence"] = "bulk"
    msg["Auto-Submitted"] = "auto-generated"
    msg["Subject"] = f"{CHANGES_NAME} ACCEPTED into {SUITE}"
    msg["Message-Id"] = make_msgid(domain="ftp-master.example.org")
    msg["Date"] = format_datetime(datetime.now(UTC))
    body = "Thank you for your contribution to Debian.\n\n\n\nAccepted:\n\n" + signed.decode()
    msg.set_content(body, cte="quoted-printable")
    return msg.as_bytes()


def bug_report_mail() -> bytes:
    """A new report as debbugs' scripts/process sends it on to the
    maintainer: the submitter's mail, resent with the X-Debian-PR-* headers."""
    now = format_datetime(datetime.now(UTC))
    msg = EmailMessage()
    msg["Received"] = f"via spool by submit@bugs.debian.org id=B.17000000001234 (code B); {now}"
    msg["X-Loop"] = "owner@bugs.debian.org"
    msg["Subject"] = f"Bug#{BUG}: {SOURCE}: --traditional greeting lost its capital letter"
    msg["Reply-To"] = f"{REPORTER}, {BUG}@bugs.debian.org"
    msg["Resent-From"] = REPORTER
    msg["Original-Sender"] = REPORTER.split("<")[1].rstrip(">")
    msg["Resent-To"] = MAINTAINER
    msg["Resent-CC"] = "owner@bugs.debian.org"
    msg["X-Debian-PR-Message"] = f"report {BUG}"
    msg["X-Debian-PR-Package"] = SOURCE
    msg["X-Debian-PR-Keywords"] = ""
    msg["X-Debian-PR-Source"] = SOURCE
    msg["Resent-Date"] = now
    msg["Resent-Message-ID"] = f"<handler.{BUG}.B.17000000001234@bugs.debian.org>"
    msg["From"] = REPORTER
    msg["To"] = "Debian Bug Tracking System <submit@bugs.debian.org>"
    msg["Message-ID"] = make_msgid(domain="example.org")
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg.set_content(
        f"Package: {SOURCE}\nVersion: {VERSION}\nSeverity: minor\n\n"
        "Dear Maintainer,\n\n`hello --traditional` prints \"hello, world\" in lower case,\n"
        "where 2.10-2 capitalised it.\n\n-- System Information:\nDebian Release: trixie/sid\n"
    )
    return msg.as_bytes()
