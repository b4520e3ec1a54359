"""The main loop of a long-running consumer that reloads its rules or
configuration on SIGHUP or when its files change (the IRC bot, notify)."""

from __future__ import annotations

import logging
import signal
import time
from typing import Protocol

from debpulse.emitters import systemd


class Service(Protocol):
    stopping: bool
    reload_requested: bool

    def step(self) -> None: ...

    def close(self) -> None: ...


class Watch(Protocol):
    def changed(self) -> bool: ...


def run(service: Service, watch: Watch, log: logging.Logger, started: str, *, check_every: float = 1.0) -> None:
    """Step until SIGTERM; reload on SIGHUP or when `watch` sees a change.
    `started` goes to `log` once the signals are handled and READY=1 is sent.
    SIGTERM only sets `stopping`: the step under way finishes (a mail handed
    to the MTA is marked sent, a line the server took is acknowledged), so
    nothing is done twice after the restart."""

    def on_hup(signum: int, frame: object) -> None:
        service.reload_requested = True

    def on_term(signum: int, frame: object) -> None:
        service.stopping = True

    signal.signal(signal.SIGHUP, on_hup)
    signal.signal(signal.SIGTERM, on_term)
    systemd.notify("READY=1")
    log.info("%s", started)
    last = 0.0
    try:
        while not service.stopping:
            service.step()
            if time.monotonic() - last > check_every:
                last = time.monotonic()
                if watch.changed():
                    service.reload_requested = True
    except KeyboardInterrupt:
        pass
    finally:
        systemd.notify("STOPPING=1")
        service.close()
