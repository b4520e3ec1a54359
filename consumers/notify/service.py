"""debpulse-notify's loop (I/O): messages from the Subscriber through the
rules into the durable outbox, then out by mail (the local MTA's sendmail
interface) and IRC (debpulse-irc's local socket), digests when they are due,
retries with backoff when the MTA or the bot is away."""

from __future__ import annotations

import logging
import smtplib
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from debpulse.consumers.common.facts import Facts, facts_of
from debpulse.consumers.irc.control import ControlError, say_privately
from debpulse.emitters import metrics
from debpulse.emitters.subscriber import Gap, Received, Subscriber

from . import compose
from .rules import Match, Recipient, Rule, RuleBook, already_mailed
from .store import Store, Waiting

log = logging.getLogger("debpulse.notify")


@dataclass
class Delivery:
    sender: str
    sendmail: Sequence[str]
    irc_socket: Path
    smtp: tuple[str, int] | None = None   # the local MTA's SMTP listener instead of its sendmail program
    domain: str = "localhost"
    retry_max: float = 600.0
    timeout: float = 30.0
    handled: dict[str, int] = field(default_factory=dict)

    def mail(self, recipient: Recipient, rule: Rule, facts: Sequence[Facts]) -> str | None:
        """None once the MTA took the mail, else why not."""
        msg = compose.digest_mail(facts, recipient, rule, self.sender, self.domain)
        if self.smtp is not None:
            try:
                with smtplib.SMTP(*self.smtp, timeout=self.timeout) as smtp:
                    smtp.send_message(msg)
            except (OSError, smtplib.SMTPException) as exc:
                return f"SMTP {self.smtp[0]}:{self.smtp[1]}: {exc}"
            return None
        try:
            done = subprocess.run([*self.sendmail], input=msg.as_bytes(), capture_output=True, timeout=self.timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{self.sendmail[0]}: {exc}"
        if done.returncode != 0:
            return f"{self.sendmail[0]} exited {done.returncode}: {done.stderr.decode(errors='replace').strip()[:200]}"
        return None

    def irc(self, recipient: Recipient, rule: Rule, facts: Sequence[Facts]) -> str | None:
        try:
            say_privately(self.irc_socket, recipient.irc or "", compose.irc_line(facts, rule),
                          network=recipient.irc_network, timeout=self.timeout)
        except ControlError as exc:
            return str(exc)
        return None


class Notifier:
    def __init__(self, sub: Subscriber, store: Store, book: RuleBook, delivery: Delivery,
                 reload: Callable[[], RuleBook | None] | None = None) -> None:
        self.sub, self.store, self.book, self.delivery, self.reload = sub, store, book, delivery, reload
        self.stopping = False
        self.reload_requested = False
        self.received = 0
        self.sent = 0

    # -- deciding -----------------------------------------------------------------

    def decide(self, f: Facts) -> list[tuple[Match, bool]]:
        """The matches of `f` that notify delivers (desktop ones are
        debpulse-desktop's), each with whether it waits for a digest."""
        matches = self.book.match(f, self.store.owners)
        out: list[tuple[Match, bool]] = []
        mailed: frozenset[str] | None = None
        for m in matches:
            if m.destination == "desktop":
                continue
            if m.destination == "mail" and not m.rule.duplicates:
                if mailed is None:
                    mailed = already_mailed(f, self.store.maintainers(f.packages))
                if not mailed.isdisjoint(m.recipient.addresses):
                    log.debug("%s: %s already mailed %s", f.msg_id, f.service, m.recipient.name)
                    metrics.inc("debpulse_notify_duplicates_avoided_total", help="mails the service already sent")
                    continue
            out.append((m, m.rule.digest is not None))
        return out

    def on_item(self, item: Received | Gap) -> None:
        self.received += 1
        if isinstance(item, Gap):
            if item.permanent:
                log.error("messages %d..%d of %s are lost: nobody was told of them (%s)", item.first, item.last,
                          item.publisher, item.reason)
            self.sub.ack(item)
            return
        if item.verdict.ok:
            try:
                f = facts_of(item.envelope)
                chosen = self.decide(f)
            except Exception as exc:  # a producer's odd body never stops notify
                log.error("%s (%s): nobody told, its body could not be read: %r", item.msg_id, item.topic, exc)
                self.sub.ack(item)
                return
            self.store.record(f, item.envelope, [(m.recipient.name, m.rule.name, m.destination, digest)
                                                 for m, digest in chosen])
        self.sub.ack(item)  # recorded durably: the outbox owns it now

    # -- delivering -----------------------------------------------------------------

    def deliver(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        groups: dict[tuple[str, str, str, bool], list[Waiting]] = {}
        for w in self.store.due(now):
            key = (w.recipient, w.rule, w.destination, w.digest)
            groups.setdefault(key, []).append(w)
        delivered = 0
        for (name, rule_name, destination, digest), items in groups.items():
            recipient = self.book.recipients.get(name)
            rule = next((r for r in recipient.rules if r.name == rule_name), None) if recipient else None
            if recipient is None or destination not in ("mail", "irc") or (
                    destination == "mail" and not recipient.mail) or (destination == "irc" and not recipient.irc):
                log.info("%d notification(s) for %s dropped: the recipient or destination is gone", len(items), name)
                self.store.delivered(w.id for w in items)
                continue
            if rule is None:  # the rule went: send what it had gathered now, under its old name
                rule = Rule(name, rule_name, (destination,), topics=("#",))
            batches = [items]
            if digest and rule.digest is not None:
                if not rule.digest.due(min(w.created for w in items), len(items), now):
                    continue
            elif not digest:
                batches = [[w] for w in items]
            for batch in batches:
                facts = [facts_of(w.envelope) for w in batch]
                send = self.delivery.mail if destination == "mail" else self.delivery.irc
                error = send(recipient, rule, facts)
                if error is None:
                    self.store.delivered(w.id for w in batch)
                    delivered += len(batch)
                    metrics.inc("debpulse_notify_sent_total", help="notifications sent", destination=destination)
                    log.info("%s to %s (%s): %d message(s)", destination, name, rule.name, len(batch))
                else:
                    attempts = max(w.attempts for w in batch) + 1
                    delay = min(self.delivery.retry_max, 5.0 * 2 ** (attempts - 1))
                    self.store.retry((w.id for w in batch), now + delay)
                    log.warning("%s to %s (%s) failed: %s; next try in %.0f s", destination, name, rule.name, error,
                                delay)
        self.sent += delivered
        return delivered

    def next_due(self) -> float:
        row = self.store.db.execute("SELECT min(not_before) FROM outbox WHERE digest = 0").fetchone()
        return row[0] if row and row[0] is not None else time.time() + 1.0

    def step(self) -> None:
        wait = max(0.001, min(1.0, self.next_due() - time.time()))
        item = self.sub.receive(timeout=wait)
        if item is not None:
            self.on_item(item)
            for _ in range(999):
                more = self.sub.receive(timeout=0.001)
                if more is None:
                    break
                self.on_item(more)
        self.deliver()
        if self.reload_requested and self.reload is not None:
            self.reload_requested = False
            book = self.reload()
            if book is not None:
                self.book = book

    def run(self) -> None:
        while not self.stopping:
            self.step()

    def close(self) -> None:
        self.sub.close()
        self.store.close()
