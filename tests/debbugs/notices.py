"""Mails debbugs sends that the recorded samples lack, built the way
debbugs builds them (scripts/process, templates/en_US/mail/) around the
real messages of a recorded sample, so that the parts are real."""

from __future__ import annotations

import email
import email.charset
import email.policy
from email.message import Message
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

NOTICE = """\
This is an automatic notification regarding your Bug report
which was filed against the {package} package:

#{bug}: {title}

It has been closed by {marked_by}.

Their explanation is attached below along with your original report.
If this explanation is unsatisfactory and you have not received a
better one in a separate message then please contact {marked_by} by
replying to this email.


--\x20
{bug}: https://bugs.debian.org/cgi-bin/bugreport.cgi?bug={bug}
Debian Bug Tracking System
Contact owner@bugs.debian.org with problems
"""


def attached(sample: Path) -> tuple[Message, Message]:
    """The original report and the closing mail a recorded "closed" mail carries."""
    msg = email.message_from_bytes(sample.read_bytes(), policy=email.policy.compat32)
    parts = [p.get_payload(0) for p in msg.walk() if p.get_content_type() == "message/rfc822"]
    report, closing = parts  # debbugs attaches [report, closing] to the closer's copy
    return report, closing


def they_closed(sample: Path, *, with_parts: bool = True) -> bytes:
    """The "they-closed" notice to the submitter (X-Debian-PR-Message:
    they-closed N) for the bug a recorded "closed" mail is about: subject
    "Bug#N closed by <From> (reply to <Reply-To>) (<closing subject>)", the
    process_your_bug_done text, then the closing mail and the report."""
    closed = email.message_from_bytes(sample.read_bytes(), policy=email.policy.compat32)
    bug = int(str(closed["X-Debian-PR-Message"]).split()[1])
    report, closing = attached(sample)
    title = str(report["Subject"])
    sender, reply_to = str(closing["From"]), str(closing["Reply-To"] or closing["From"])
    marked_by = sender if sender == reply_to else f"{sender} (reply to {reply_to})"
    qp = email.charset.Charset("utf-8")
    qp.body_encoding = email.charset.QP  # as debbugs sends it
    notice = MIMEText(NOTICE.format(package=closed["X-Debian-PR-Package"], bug=bug, title=title,
                                    marked_by=marked_by), "plain", qp)
    if with_parts:
        msg: Message = MIMEMultipart("mixed")
        msg.attach(notice)
        msg.attach(MIMEMessage(closing))
        msg.attach(MIMEMessage(report))
    else:  # as a list archive or a forwarding MUA may leave it: the notice text alone
        msg = notice
    headers = {
        "X-Loop": "owner@bugs.debian.org",
        "From": '"Debian Bug Tracking System" <owner@bugs.debian.org>',
        "To": str(report["From"]),
        "Subject": f"Bug#{bug} closed by {marked_by} ({closing['Subject']})",
        "Message-ID": f"<handler.{bug}.D{bug}.161255912831407.notifdone@bugs.debian.org>",
        "In-Reply-To": str(report["Message-ID"]),
        "References": f"{closing['Message-Id']} {report['Message-ID']}",
        "X-Debian-PR-Message": f"they-closed {bug}",
        "X-Debian-PR-Package": str(closed["X-Debian-PR-Package"]),
        "X-Debian-PR-Keywords": str(closed["X-Debian-PR-Keywords"]),
        "X-Debian-PR-Source": str(closed["X-Debian-PR-Source"]),
        "Reply-To": f"{bug}@bugs.debian.org",
        "Date": str(closed["Date"]),
    }
    for name, value in headers.items():
        msg[name] = value
    return msg.as_bytes()
