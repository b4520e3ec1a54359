"""Between the sources and the emitter: parse a mail, hand its events over."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from debpulse.emitters import metrics
from debpulse.emitters.emitter import Emitter
from debpulse.emitters.event import Event

from .mail import parse_mail
from .signature import Keyring

log = logging.getLogger("debpulse.dak")


class DakHandler:
    """Shared by the Maildir, stdin and queue sources of one process."""

    def __init__(self, emitter: Emitter, keyring: Keyring | None = None) -> None:
        self.emitter = emitter
        self.keyring = keyring
        # The sources run in threads; an emitter's sockets are not thread-safe.
        self._lock = threading.Lock()

    def emit(self, event: Event) -> None:
        with self._lock:
            self.emitter.emit(event)
        log.info("%s %s (%s)", event.topic, event.key, event.origin)

    def mail(self, path: Path | None, data: bytes) -> None:
        """The Maildir and pipe handler: InputError and EmitError go to the source."""
        result = parse_mail(data, self.keyring, origin=str(path) if path else "stdin")
        if result.ignored is not None:
            why = "not-dak" if result.ignored == "not from dak" else "no-event"
            metrics.inc("debpulse_dak_mail_ignored_total", why=why, help="mails that gave no event")
            log.debug("ignored %s: %s", path or "mail from stdin", result.ignored)
            return
        for event in result.events:
            self.emit(event)
            metrics.inc("debpulse_dak_events_total", topic=event.topic, route="mail",
                        help="events dak's mail and queues gave")
