"""Reconciliation over SOAP: what the mail did not bring.

Two checks, each round:

- new bugs: `newest_bugs` gives the newest bug number; every number above
  the last one seen is asked with `get_status` (500 at a time, at most
  `catch_up` numbers a round) and each bug that exists becomes a report,
  keyed `debbugs:<bug>:report` like the report mail.  Numbers debbugs does
  not know (spam removed before it was ever shown) are passed over.
- watched bugs: debbugs has no "changed since" query, so the watch list's
  `last_modified` is compared with the last round; for a bug that changed,
  the records of `get_bug_log` not seen yet become followup, close,
  forward and control events, keyed by the received mail's Message-ID
  exactly as mail.py keys the mail debbugs sends about it.

The position (newest bug seen; per watched bug its last_modified and the
last log record) is saved after each event is handed over, so a restart
neither loses nor repeats.  A watched bug seen for the first time is only
recorded: its history is not news.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any

from debpulse.adapters.common.position import Position
from debpulse.emitters import metrics
from debpulse.emitters.emitter import Emitter
from debpulse.emitters.errors import EmitError
from debpulse.emitters.event import Event

from .client import DebbugsClient
from .soap import SoapError
from .transcript import parse_command, requested_changes

log = logging.getLogger(__name__)

_TERMINATOR = re.compile(r"^(?:stop|quit|--|thanks?|thank\s+you|kthxbye)\b", re.I)


def _strip_id(value: str | None) -> str | None:
    if not value:
        return None
    return value.strip().strip("<>") or None


def report_event(bug: int, status: dict[str, Any], raw_msgid: str | None = None,
                 originator: str | None = None) -> Event:
    """A new report seen over SOAP; `originator` defaults to the status's
    (get_status tells who filed it, the bug log's first record too)."""
    body = _bug_body(bug, status, originator or status.get("originator"), _strip_id(raw_msgid))
    return Event("debbugs.bug.report", body, key=f"debbugs:{bug}:report", origin=f"soap:{bug}")


def _bug_body(bug: int, status: dict[str, Any], sender: str | None, message_id: str | None) -> dict[str, Any]:
    return {
        "bug": bug,
        "package": status["package"],
        "source": status["source"] or None,
        "title": status["subject"],
        "from": sender,
        "severity": status["severity"],
        "tags": list(status["tags"]),
        "message_id": message_id,
        "enriched": True,
        "status": status,
        "via": "soap",
    }


def _pseudo(body: str, name: str) -> str | None:
    for line in body.lstrip().split("\n\n", 1)[0].splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == name.lower():
            return value.strip() or None
    return None


def record_events(bug: int, record: dict[str, Any], status: dict[str, Any]) -> list[Event]:
    """The event for one get_bug_log record of `bug` (see soap.log_record)."""
    where = record.get("received_at") or ""
    msgid = record.get("message_id")
    if not msgid:
        return []
    target, _, suffix = where.partition("-")
    if not target.isdigit():  # submit@, done@, control@, ...: no number in the address
        target, suffix = "", where
    origin = f"soap:{bug}#{record.get('msg_num')}"
    if suffix in ("submit", "maintonly", "quiet") and not target:
        return [report_event(bug, status, f"<{msgid}>", record.get("from"))]
    if suffix in ("", "submit", "maintonly", "quiet", "submitter") and target:
        body = _bug_body(bug, status, record.get("from"), msgid)
        return [Event("debbugs.bug.followup", body, key=f"debbugs:{bug}:followup:{msgid}", origin=origin)]
    if suffix in ("done", "close"):
        text = record.get("body") or ""
        body = _bug_body(bug, status, _pseudo(text, "Done") or record.get("from"), msgid)
        body["version"] = _pseudo(text, "Version") or _pseudo(text, "Source-Version")
        return [Event("debbugs.bug.close", body, key=f"debbugs:{bug}:close:{msgid}", origin=origin)]
    if suffix == "forwarded":
        body = _bug_body(bug, status, record.get("from"), msgid)
        body["forwarded_to"] = status.get("forwarded")
        return [Event("debbugs.bug.forward", body, key=f"debbugs:{bug}:forward:{msgid}", origin=origin)]
    if where == "control":
        return [control_event(bug, record)]
    return []  # fakecontrol (debbugs' own bookkeeping) and the like


def control_event(bug: int, record: dict[str, Any]) -> Event:
    """A control mail seen in a bug log: what its commands asked for (the
    transcript that says what they did went only to the sender)."""
    changes: list[dict[str, Any]] = []
    bugs = {bug}
    for line in (record.get("body") or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if _TERMINATOR.match(line):
            break
        verb, number, args = parse_command(line)
        if verb is None or number is None:
            continue
        target = number if number > 0 else bug
        bugs.add(target)
        for change in requested_changes(verb, target, args):
            change["command"] = line
            changes.append(change)
            bugs.update(change.get("bugs", ()))
    body = {
        "bugs": sorted(bugs),
        "packages": [],
        "from": record.get("from"),
        "subject": record.get("subject") or "",
        "changes": changes,
        "errors": [],
        "message_id": record["message_id"],
        "via": "soap",
    }
    return Event("debbugs.bug.control", body, key=f"debbugs:control:{record['message_id']}",
                 origin=f"soap:{bug}#{record.get('msg_num')}")


class Reconciler:
    def __init__(
        self,
        client: DebbugsClient,
        emitter: Emitter,
        position: Position,
        *,
        watch: Iterable[int] = (),
        newest: bool = True,
        newest_count: int = 10,
        catch_up: int = 1000,
    ) -> None:
        self.client = client
        self.emitter = emitter
        self.position = position
        self.watch = sorted(set(watch))
        self.check_newest = newest
        self.newest_count = newest_count
        self.catch_up = catch_up
        state = position.load({}) or {}
        self.newest: int | None = state.get("newest")
        self.watched: dict[str, dict[str, int]] = dict(state.get("watch", {}))

    def _save(self) -> None:
        self.position.save({"newest": self.newest, "watch": self.watched})

    def _emit(self, event: Event) -> None:
        self.emitter.emit(event)
        metrics.inc("debpulse_debbugs_events_total", topic=event.topic, via="soap",
                    help="events handed over by the debbugs adapter")
        log.info("%s %s (%s)", event.topic, event.key, event.origin)

    def poll_once(self) -> int:
        """One round; returns how many events were handed over."""
        done = 0
        if self.check_newest:
            done += self._poll_newest()
        if self.watch:
            done += self._poll_watched()
        return done

    def _poll_newest(self) -> int:
        numbers = self.client.newest_bugs(self.newest_count)
        if not numbers:
            return 0
        newest = max(numbers)
        if self.newest is None:
            # Said without -v: a first round that publishes nothing should say why.
            log.warning("no position yet (%s): starting after bug %d, the newest now; "
                        "bugs filed from now on are published", self.position.path, newest)
            self.newest = newest
            self._save()
            return 0
        if newest <= self.newest:
            return 0
        first, last = self.newest + 1, min(newest, self.newest + self.catch_up)
        statuses = self.client.get_status(range(first, last + 1))
        done = 0
        for bug in range(first, last + 1):
            status = statuses.get(bug)
            if status is not None:
                self._emit(report_event(bug, status))
                done += 1
            self.newest = bug
        self._save()
        return done

    def _poll_watched(self) -> int:
        statuses = self.client.get_status(self.watch)
        done = 0
        for bug in self.watch:
            status = statuses.get(bug)
            if status is None:
                continue
            seen = self.watched.get(str(bug))
            modified = status.get("last_modified") or 0
            if seen is not None and seen.get("last_modified") == modified:
                continue
            records = self.client.get_bug_log(bug)
            if seen is None:
                self.watched[str(bug)] = {"last_modified": modified,
                                          "msg_num": max((r["msg_num"] for r in records), default=0)}
                self._save()
                continue
            for record in records:
                if record["msg_num"] <= seen.get("msg_num", 0):
                    continue
                for event in record_events(bug, record, status):
                    self._emit(event)
                    done += 1
                seen["msg_num"] = record["msg_num"]
                self._save()
            seen["last_modified"] = modified
            self._save()
        return done

    def run(self, interval: float, stop: threading.Event | None = None,
            watching: Callable[[], None] | None = None) -> None:
        """Poll every `interval` seconds until `stop`; back off on errors.
        `watching` is called once the first round is over (the program's
        readiness), whether it succeeded or not."""
        stop = stop or threading.Event()
        delay = interval
        while not stop.is_set():
            try:
                self.poll_once()
                delay = interval
            except (SoapError, EmitError) as exc:
                metrics.inc("debpulse_debbugs_poll_failures_total", kind=type(exc).__name__,
                            help="reconciliation rounds that failed and will be retried")
                delay = min(max(delay * 2, interval), 3600.0)
                log.warning("reconciliation round failed (%s); next in %.0f s", exc, delay)
            if watching is not None:
                watching, call = None, watching
                call()
            stop.wait(delay)
