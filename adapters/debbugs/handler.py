"""What happens to one mail: parse, enrich from SOAP, hand over."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from debpulse.emitters import metrics
from debpulse.emitters.emitter import Emitter

from .client import DebbugsClient
from .mail import parse_mail, with_status
from .soap import SoapError

log = logging.getLogger(__name__)


class Enricher:
    """The current status of a bug, or None when SOAP cannot tell now.

    After a failure SOAP is left alone for `pause` seconds, so that a dead
    SOAP service costs one timeout per pause, not one per mail: the mail is
    published without status meanwhile (enriched: false)."""

    def __init__(self, client: DebbugsClient, *, pause: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.pause = pause
        self._clock = clock
        self._down_until = 0.0

    def status(self, bug: int) -> dict[str, Any] | None:
        if self._clock() < self._down_until:
            return None
        try:
            return self.client.get_status([bug]).get(bug)
        except SoapError as exc:
            self._down_until = self._clock() + self.pause
            metrics.inc("debpulse_debbugs_unenriched_total", help="bug events published without SOAP status")
            log.warning("no status for bug %d from SOAP (%s); publishing without it for %.0f s",
                        bug, exc, self.pause)
            return None


class MailHandler:
    """`handle(path, data)` for MaildirSource and pipe_main."""

    def __init__(self, emitter: Emitter, enricher: Enricher | None = None) -> None:
        self.emitter = emitter
        self.enricher = enricher

    def __call__(self, path: Path | None, data: bytes) -> None:
        origin = str(path) if path else "stdin"
        parsed = parse_mail(data, origin)  # InputError: the source quarantines it
        if not parsed.events:
            metrics.inc("debpulse_debbugs_skipped_total", kind=parsed.kind,
                        help="debbugs mails that carry no event (acknowledgements and the like)")
            log.debug("skipped %s mail %s", parsed.kind, origin)
            return
        for event in parsed.events:
            if "bug" in event.body:
                status = self.enricher.status(event.body["bug"]) if self.enricher else None
                event = with_status(event, status)
            self.emitter.emit(event)  # EmitError: the mail stays and is retried
            metrics.inc("debpulse_debbugs_events_total", topic=event.topic, via="mail",
                        help="events handed over by the debbugs adapter")
            log.info("%s %s (%s)", event.topic, event.key, origin)
