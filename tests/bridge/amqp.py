"""Test helpers on the broker side: a durable queue bound to the exchange,
and draining it."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import pika


@dataclass
class Delivery:
    routing_key: str
    properties: Any
    body: bytes


class TestQueue:
    """A durable quorum queue on amq.topic, as a consumer of the bridge has."""

    __test__ = False

    def __init__(self, url: str, *bindings: str, name: str | None = None,
                 arguments: dict[str, Any] | None = None) -> None:
        self.url = url
        self.name = name or f"test-{uuid.uuid4().hex[:8]}"
        with self._channel() as ch:
            ch.queue_declare(self.name, durable=True, arguments={"x-queue-type": "quorum", **(arguments or {})})
            for binding in bindings or ("org.debian.#",):
                ch.queue_bind(self.name, "amq.topic", binding)

    def _channel(self) -> Any:
        return _Channel(self.url)

    def drain(self, expect: int, timeout: float = 20.0, settle: float = 0.5) -> list[Delivery]:
        """Everything in the queue: at least `expect` messages (or what came
        until `timeout`), then whatever else arrives within `settle` seconds."""
        got: list[Delivery] = []
        deadline = time.monotonic() + timeout
        quiet_until: float | None = None
        with self._channel() as ch:
            while True:
                method, props, body = ch.basic_get(self.name, auto_ack=True)
                now = time.monotonic()
                if method is not None:
                    got.append(Delivery(method.routing_key, props, body))
                    quiet_until = None
                    continue
                if len(got) >= expect:
                    quiet_until = quiet_until or now + settle
                    if now >= quiet_until:
                        return got
                elif now >= deadline:
                    return got
                time.sleep(0.02)

    def delete(self) -> None:
        with self._channel() as ch:
            ch.queue_delete(self.name)


class _Channel:
    def __init__(self, url: str) -> None:
        self.url = url

    def __enter__(self) -> Any:
        self.connection = pika.BlockingConnection(pika.URLParameters(self.url))
        return self.connection.channel()

    def __exit__(self, *exc: object) -> None:
        self.connection.close()
