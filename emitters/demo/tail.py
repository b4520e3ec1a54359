"""The demo's tail: the subscriber `debpulse-tail --endpoint E --keyring K`
builds, run in a thread, printing debpulse-tail's lines and remembering
which topics arrived verified."""

from __future__ import annotations

import argparse
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

from ..commands.tail import summary_line
from ..config import Config
from ..consumer import open_subscriber
from ..replay import ReplayError
from ..subscriber import Received
from ..topics import relative_topic

log = logging.getLogger("debpulse-demo")


class DemoTail(threading.Thread):
    def __init__(self, endpoint: str, replay: str, keyring: Path, say: Callable[[str], None]) -> None:
        super().__init__(name="tail", daemon=True)
        self.endpoint, self.replay, self.keyring, self.say = endpoint, replay, keyring, say
        self.verified: Counter[str] = Counter()    # relative topic -> messages that verified
        self.rejected: Counter[str] = Counter()    # relative topic -> messages that did not
        self.gaps = 0
        self.ready = threading.Event()
        self.failure: str | None = None
        self._stopping = threading.Event()
        self._changed = threading.Condition()

    def run(self) -> None:
        args = argparse.Namespace(endpoint=[self.endpoint], srv=[], keyring=str(self.keyring), policy=None,
                                  gnupg_home=None, state_dir=None, config=None)
        # Catch up after a second without traffic rather than debpulse-tail's
        # 30: the demo is short, and the last message must not wait for it.
        config = Config({"subscribe": {"catchup_interval": 1.0}})
        try:
            sub = open_subscriber(args, config, yield_rejected=True)
        except Exception as exc:  # told to the main thread, which stops the demo
            self.failure = f"cannot subscribe: {exc}"
            self.ready.set()
            return
        try:
            try:
                # From the relay's first message on, through its replay endpoint:
                # nothing is missed while the live subscription is joining.
                sub.follow(self.replay, after=0)
            except ReplayError as exc:
                log.warning("replay endpoint %s: %s (following live messages only)", self.replay, exc)
            self.ready.set()
            while not self._stopping.is_set():
                item = sub.receive(timeout=0.2)
                if item is None:
                    continue
                self.say(summary_line(item))
                with self._changed:
                    if not isinstance(item, Received):
                        self.gaps += 1
                    elif item.verdict.ok:
                        self.verified[relative_topic(item.topic)] += 1
                    else:
                        self.rejected[relative_topic(item.topic)] += 1
                    self._changed.notify_all()
        finally:
            sub.close()

    def wait_for(self, topics: Iterable[str], deadline: float) -> bool:
        """Until each topic arrived verified, or the monotonic `deadline`."""
        wanted = set(topics)
        with self._changed:
            while not wanted <= set(self.verified):
                left = deadline - time.monotonic()
                if left <= 0 or not self.is_alive():
                    return False
                self._changed.wait(min(left, 0.5))
        return True

    def stop(self) -> None:
        self._stopping.set()
        self.join(5)
