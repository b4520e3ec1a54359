"""The bridge: messages per second from the bus to confirmed in RabbitMQ,
side by side in one run with a raw pika publish loop as the reference.

    python tests/bench/bench_bridge.py [--n N]

Starts a private RabbitMQ (as the tests do; needs root and rabbitmq-server)
with a durable quorum queue bound to amq.topic, so that every confirmation
means "on disk".  Variants, 1 KB bodies:

- raw pika, one confirmation per message (BlockingChannel.confirm_delivery):
  the loop most pika users write;
- raw pika, confirmations in flight (asynchronous, window 1000): the same
  pre-encoded message, the ceiling for any pika publisher here;
- debpulse-bridge: a signing publisher on the bus (its own process), the
  bridge's subscriber (verify), to_amqp, the publisher with confirms and the
  checkpoint advanced per message; timed from the first message received to
  the last one confirmed.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
os.environ.pop("RUST_BACKTRACE", None)

import pika  # noqa: E402
from bridge.rabbit import Broker  # noqa: E402
from testbus import drop_gpg_key, free_port, make_gpg_key  # noqa: E402

BODY = {"log": "x" * 900}
TOPIC = "org.debian.dev.logger.log"


def bus_publisher(endpoint: str, replay: str, n: int, go, key: str, state: str) -> None:  # type: ignore[no-untyped-def]
    from debpulse.emitters.config import Config
    from debpulse.emitters.event import Event
    from debpulse.emitters.options import BusOptions
    from debpulse.emitters.publisher import Publisher

    args = argparse.Namespace(publish=endpoint, signing_key=key, state_dir=state)
    opts = BusOptions.from_args(args, Config(), name="bench-bridge")
    opts.replay, opts.high_water_mark = replay, 0
    pub = Publisher(opts)
    go.wait()
    for i in range(0, n, 100):
        pub.publish_events([Event("logger.log", BODY) for _ in range(min(100, n - i))])
    time.sleep(120)  # keep the replay endpoint up until the bridge is done (terminated then)


def raw_sync(url: str, n: int) -> float:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.confirm_delivery()
    body = b"x" * 1000
    props = pika.BasicProperties(content_type="application/json", delivery_mode=2)
    t0 = time.perf_counter()
    for _ in range(n):
        ch.basic_publish("amq.topic", TOPIC, body, props)
    elapsed = time.perf_counter() - t0
    conn.close()
    return n / elapsed


def raw_async(url: str, n: int, window: int = 1000) -> float:
    """pika's asynchronous publisher with confirms, nothing else."""
    body = b"x" * 1000
    props = pika.BasicProperties(content_type="application/json", delivery_mode=2)
    state = {"sent": 0, "confirmed": 0, "t0": 0.0, "t1": 0.0}

    def pump(ch) -> None:  # type: ignore[no-untyped-def]
        while state["sent"] < n and state["sent"] - state["confirmed"] < window:
            ch.basic_publish("amq.topic", TOPIC, body, props)
            state["sent"] += 1

    def on_confirm(frame) -> None:  # type: ignore[no-untyped-def]
        m = frame.method
        state["confirmed"] = m.delivery_tag if m.multiple else max(state["confirmed"], m.delivery_tag)
        if state["confirmed"] >= n:
            state["t1"] = time.perf_counter()
            conn.close()
        else:
            pump(channel[0])

    channel: list = []

    def on_channel(ch) -> None:  # type: ignore[no-untyped-def]
        channel.append(ch)
        ch.confirm_delivery(on_confirm, callback=lambda _f: (state.__setitem__("t0", time.perf_counter()), pump(ch)))

    conn = pika.SelectConnection(pika.URLParameters(url),
                                 on_open_callback=lambda c: c.channel(on_open_callback=on_channel),
                                 on_close_callback=lambda c, r: c.ioloop.stop())
    conn.ioloop.start()
    return n / (state["t1"] - state["t0"])


def bridged(url: str, n: int, tmp: Path) -> float:
    from debpulse.consumers.bridge.amqp import AmqpPublisher, connection_parameters
    from debpulse.consumers.bridge.cli import Bridge
    from debpulse.emitters.checkpoint import Checkpoint
    from debpulse.emitters.signing import SequoiaKeyring
    from debpulse.emitters.subscriber import Subscriber
    from debpulse.emitters.verify import Verifier

    key = make_gpg_key()
    ctx = mp.get_context("spawn")
    go = ctx.Event()
    endpoint, replay = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    proc = ctx.Process(target=bus_publisher, args=(endpoint, replay, n, go, str(key.secret_file), str(tmp / "pub")))
    proc.start()
    try:
        time.sleep(1.5)  # let it bind
        sub = Subscriber([endpoint], verifier=Verifier(SequoiaKeyring.from_files([key.public_file])), hwm=0,
                         checkpoint=Checkpoint(tmp / "checkpoints" / "bench.json"), auto_ack=False,
                         catchup_interval=3600)
        sub.follow(replay)
        publisher = AmqpPublisher(connection_parameters([url]))
        publisher.connected.wait(10)
        bridge = Bridge(sub, publisher, window=1000)
        time.sleep(0.5)
        go.set()
        while bridge.bridged == 0 and not bridge._inflight:  # noqa: SLF001 (the first message in)
            bridge.step(timeout=0.01)
        t0 = time.perf_counter()
        deadline = time.monotonic() + 300
        while bridge.bridged < n and time.monotonic() < deadline:
            bridge.step(timeout=0.1)
        elapsed = time.perf_counter() - t0
        if bridge.bridged < n:
            raise SystemExit(f"only {bridge.bridged} of {n} bridged")
        bridge.close()
        return n / elapsed
    finally:
        proc.terminate()
        proc.join(10)
        drop_gpg_key(key)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=5000, help="messages per variant (default 5000)")
    args = p.parse_args()
    broker = Broker()
    broker.start()
    try:
        conn = pika.BlockingConnection(pika.URLParameters(broker.url))
        ch = conn.channel()
        ch.queue_declare("bench", durable=True, arguments={"x-queue-type": "quorum"})
        ch.queue_bind("bench", "amq.topic", "org.debian.#")
        results = []
        with tempfile.TemporaryDirectory() as tmp:
            n_sync = max(200, args.n // 10)  # one fsync per message: slow
            results.append(("raw pika, confirm each message", n_sync, raw_sync(broker.url, n_sync)))
            ch.queue_purge("bench")
            results.append(("raw pika, confirms in flight (window 1000)", args.n, raw_async(broker.url, args.n)))
            ch.queue_purge("bench")
            results.append(("debpulse-bridge: bus -> verify -> AMQP, confirmed", args.n,
                            bridged(broker.url, args.n, Path(tmp))))
        conn.close()
    finally:
        broker.close()
    print("bridge throughput, 1 KB bodies, persistent, to a durable quorum queue on a private RabbitMQ")
    for name, n, rate in results:
        print(f"  {name:<52} {rate:10.0f} msg/s  ({n} messages)")


if __name__ == "__main__":
    main()
