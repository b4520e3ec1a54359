"""What a notification says (pure): a mail with headers that mail filters
can use and a footer naming the rule, a digest mail, an IRC line.

Headers, after old FMN's X-Fedmsg-* (dropped by FMN 3, asked back in its
#1077): X-Debpulse-Topic, -Category, -Package (each, at most 10) and
-Num-Packages, -User (each), -Msg-Id, -Rule, -Link; Auto-Submitted and
Precedence so that vacation programs stay quiet.
"""

from __future__ import annotations

import email.policy
import re
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from debpulse.consumers.common.facts import Facts

from .rules import Recipient, Rule

MAX_HEADERS = 10
# Python's folding at 78 columns can move a whole Subject to a continuation
# line, which some readers show with a leading space; RFC 5322's hard limit is 998.
POLICY = email.policy.default.clone(max_line_length=998)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def one_line(text: str, limit: int = 400) -> str:
    """Text for a header or a line: no control characters, bounded."""
    out = " ".join(_CONTROL.sub(" ", text).split())
    return out if len(out) <= limit else out[: limit - 1] + "…"


def footer(recipient: Recipient, rule: Rule) -> str:
    return (f"-- \nYou get this because of the rule {rule.name!r} of {recipient.name}\n"
            f"({recipient.source}); change or remove it there.\n")


def _base(sender: str, recipient: Recipient, subject: str, rule: Rule, domain: str) -> EmailMessage:
    msg = EmailMessage(policy=POLICY)
    msg["From"] = sender
    msg["To"] = recipient.mail or ""
    msg["Subject"] = one_line(subject, 200)
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = make_msgid("debpulse", domain=domain)
    msg["Auto-Submitted"] = "auto-generated"
    msg["Precedence"] = "bulk"
    msg["X-Debpulse-Rule"] = one_line(f"{recipient.name}/{rule.name}")
    return msg


def _tag(msg: EmailMessage, facts: Sequence[Facts]) -> None:
    topics = list(dict.fromkeys(f.topic for f in facts))
    packages = sorted({p for f in facts for p in f.packages})
    users = sorted({u for f in facts for u in f.users})
    for t in topics[:MAX_HEADERS]:
        msg["X-Debpulse-Topic"] = one_line(t)
    for c in dict.fromkeys(f.service for f in facts):
        msg["X-Debpulse-Category"] = one_line(c)
    for p in packages[:MAX_HEADERS]:
        msg["X-Debpulse-Package"] = one_line(p)
    msg["X-Debpulse-Num-Packages"] = str(len(packages))
    for u in users[:MAX_HEADERS]:
        msg["X-Debpulse-User"] = one_line(u)


def _block(f: Facts) -> str:
    lines = [one_line(f.summary, 2000)]
    if f.link:
        lines.append(one_line(f.link))
    lines.append(f"topic {f.topic}, message {f.msg_id}")
    return "\n".join(lines) + "\n"


def mail(f: Facts, recipient: Recipient, rule: Rule, sender: str, domain: str = "localhost") -> EmailMessage:
    msg = _base(sender, recipient, f"[{f.service}] {f.summary}", rule, domain)
    _tag(msg, [f])
    msg["X-Debpulse-Msg-Id"] = one_line(f.msg_id)
    if f.link:
        msg["X-Debpulse-Link"] = one_line(f.link)
    msg.set_content(_block(f) + "\n" + footer(recipient, rule))
    return msg


def digest_mail(facts: Sequence[Facts], recipient: Recipient, rule: Rule, sender: str,
                domain: str = "localhost") -> EmailMessage:
    """One mail for the messages a digest gathered: a list of summaries on
    top, then each message.  A digest of one reads like a single mail."""
    if len(facts) == 1:
        return mail(facts[0], recipient, rule, sender, domain)
    msg = _base(sender, recipient, f"[debpulse] {len(facts)} messages ({rule.name})", rule, domain)
    _tag(msg, facts)
    msg["X-Debpulse-Digest"] = str(len(facts))
    head = "Digest summary:\n" + "".join(f"  {i}. {one_line(f.summary, 200)}\n" for i, f in enumerate(facts, 1))
    body = "\n".join(f"{i}. {_block(f)}" for i, f in enumerate(facts, 1))
    msg.set_content(head + "\n" + body + "\n" + footer(recipient, rule))
    return msg


def irc_line(facts: Sequence[Facts], rule: Rule) -> str:
    """One private line: the message, or a digest's count and first summaries."""
    if len(facts) == 1:
        f = facts[0]
        return one_line(f"[{f.service}] {f.summary}" + (f" {f.link}" if f.link else ""))
    shown = "; ".join(one_line(f.summary, 120) for f in facts[:3])
    more = f" and {len(facts) - 3} more" if len(facts) > 3 else ""
    return one_line(f"{len(facts)} messages ({rule.name}): {shown}{more}")
