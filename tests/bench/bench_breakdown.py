"""Where a message's time goes: each step of the publisher's and the
subscriber's path timed alone, with the real code, per message.

    python tests/bench/bench_breakdown.py [--n N] [--repeats R]

1 KB bodies (logger.log), batches of 100 as the relay stores them, an
ed25519 key.  Each step runs N times, R times over; the figure is the
fastest of the R (the one least disturbed by whatever else the machine
runs), so the steps add up to what one core spends on a message when
nothing else competes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
os.environ.pop("RUST_BACKTRACE", None)

from testbus import drop_gpg_key, free_port, make_gpg_key  # noqa: E402

BODY = {"log": "x" * 900}
BATCH = 100


def per_message(step: Callable[[], object], n: int, repeats: int, per_call: int = 1) -> float:
    """Microseconds per message: `step` handles `per_call` messages."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n // per_call):
            step()
        best = min(best, time.perf_counter() - t0)
    return best / (n // per_call * per_call) * 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args()
    import zmq

    from debpulse.emitters import envelope as env
    from debpulse.emitters.checkpoint import Checkpoint
    from debpulse.emitters.config import Config
    from debpulse.emitters.event import Event
    from debpulse.emitters.messages import message_type
    from debpulse.emitters.options import BusOptions
    from debpulse.emitters.publisher import Publisher
    from debpulse.emitters.signing import SequoiaKeyring, SequoiaSigner
    from debpulse.emitters.subscriber import Subscriber
    from debpulse.emitters.verify import Verifier

    key = make_gpg_key("bench <bench@example.org>", "ed25519")
    tmp = Path(tempfile.mkdtemp(prefix="dp-breakdown-"))
    n, r = a.n, a.repeats
    rows: list[tuple[str, str, float]] = []

    def row(side: str, what: str, us: float) -> None:
        rows.append((side, what, us))
        print(f"  {side:10} {what:58} {us:8.2f} us", flush=True)

    try:
        endpoint = f"tcp://127.0.0.1:{free_port()}"
        args = argparse.Namespace(publish=endpoint, signing_key=str(key.secret_file), state_dir=str(tmp / "p"))
        opts = BusOptions.from_args(args, Config(), name="breakdown")
        opts.scope, opts.high_water_mark, opts.replay = "none", 0, f"tcp://127.0.0.1:{free_port()}"
        pub = Publisher(opts)
        sink = zmq.Context.instance().socket(zmq.SUB)  # a subscriber that reads later: sending is real
        sink.setsockopt(zmq.RCVHWM, 0)
        sink.setsockopt(zmq.SUBSCRIBE, b"")
        sink.connect(endpoint)
        time.sleep(0.5)
        events = [Event("logger.log", BODY) for _ in range(BATCH)]
        numbered = [(k, k + 1) for k in range(BATCH)]
        mtype = message_type("logger.log")

        row("publisher", "schema check (compiled)", per_message(lambda: mtype.validate(BODY), n, r))
        row("publisher", "body: canonical bytes, size and depth", per_message(lambda: env.body_bytes(BODY), n, r))
        row("publisher", "topic, checks, bodies of a batch (prepare)",
            per_message(lambda: pub.prepare(events), n, r, BATCH))
        batch = pub.prepare(events)
        row("publisher", "envelope: msg_id, i, canonical bytes from pieces",
            per_message(lambda: batch.build(numbered), n, r, BATCH))
        built = batch.build(numbered)
        signer = SequoiaSigner.from_file(key.secret_file)
        data = built[0][1]
        row("publisher", "signature (pysequoia, ed25519), envelope scope",
            per_message(lambda: signer.sign(data), n // 5, r))

        def store(keyed: bool) -> None:
            # Random msg_ids and keys, as real ones: where they land in an index matters.
            def build(numbered_: list[tuple[int, int]]) -> list[tuple[dict, bytes]]:
                return [({**built[i][0], "msg_id": env.new_msg_id()}, built[i][1]) for i, _ in numbered_]
            pub.outbox.append_batch([f"id:{uuid.uuid4()}" if keyed else None for _ in range(BATCH)], build)
        row("publisher", "outbox: insert and commit (no idempotency key)",
            per_message(lambda: store(False), n, r, BATCH))
        row("publisher", "outbox: the same with keys (relay: one lookup per batch)",
            per_message(lambda: store(True), n, r, BATCH))
        stored = [(e, d, True) for e, d in built]
        row("publisher", "send on the PUB socket, counters", per_message(lambda: pub.send(stored), n, r, BATCH))
        row("publisher", "all of it, unsigned: publish_events (sum check)",
            per_message(lambda: pub.publish_events(events), n, r, BATCH))

        # The subscriber, on frames the publisher made.
        frames_plain = [b"org.debian.dev.logger.log", built[0][1]]
        sopts = BusOptions.from_args(argparse.Namespace(publish=f"ipc://{tmp}/s.sock", signing_key=str(key.secret_file),
                                                        state_dir=str(tmp / "s")), Config(), name="signed")
        spub = Publisher(sopts, bind=False)
        signed_env = spub.store([Event("logger.log", BODY)])[0][0]
        sink.close(0)
        feed = zmq.Context.instance().socket(zmq.PUSH)
        feed.setsockopt(zmq.SNDHWM, 0)
        port = free_port()
        feed.bind(f"tcp://127.0.0.1:{port}")
        drain = zmq.Context.instance().socket(zmq.PULL)
        drain.setsockopt(zmq.RCVHWM, 0)
        drain.connect(f"tcp://127.0.0.1:{port}")
        time.sleep(0.3)

        def recv_many() -> None:
            for _ in range(n):
                feed.send_multipart(frames_plain)
            time.sleep(0.5)  # queued at the receiver: what is timed is taking them
            t0 = time.perf_counter()
            for _ in range(n):
                drain.recv_multipart()
            took.append(time.perf_counter() - t0)
        took: list[float] = []
        for _ in range(r):
            recv_many()
        row("subscriber", "receive the frames (pyzmq)", min(took) / n * 1e6)
        row("subscriber", "parse: decode (orjson) and envelope checks",
            per_message(lambda: env.from_frames(frames_plain), n, r))
        row("subscriber", "signed data: the envelope re-canonicalised",
            per_message(lambda: env.signed_data(signed_env, "envelope"), n, r))
        keyring = SequoiaKeyring.from_files([key.public_file])
        # Each check on a signature of its own: Sequoia caches what it has
        # verified, and checking one signature again measures that cache.
        sdata = env.signed_data(signed_env, "envelope")
        fresh = iter([(sdata, sig) for sig in signer.sign_many([sdata] * (n // 5 * r))])

        def check() -> None:
            keyring.verify(*next(fresh))
        row("subscriber", "signature check (pysequoia: parse and verify)", per_message(check, n // 5, r))
        verifier = Verifier(keyring, require_signature=False, remember=100_000)
        parsed = env.from_frames(frames_plain)
        ids = iter(range(1 << 40))

        def bookkeeping() -> None:
            parsed["msg_id"] = f"m-{next(ids)}"
            verifier.check(parsed)
        row("subscriber", "verifier bookkeeping (time window, duplicate msg_id)", per_message(bookkeeping, n, r))
        sub = Subscriber([], verifier=Verifier(keyring, require_signature=False), catchup_interval=3600)
        seqs = iter(range(1, 1 << 40))

        def deliver() -> None:
            parsed["seq_id"], parsed["msg_id"] = next(seqs), f"d-{next(ids)}"
            sub._accept_safely(parsed, replayed=False)  # noqa: SLF001 (the very step)
            sub.receive(0)
        row("subscriber", "accept, deliver, acknowledge (no checkpoint)", per_message(deliver, n, r))
        checkpoint = Checkpoint(tmp / "checkpoint.json")
        checkpoint.streams = {"breakdown@host/0123456789ab": {"last": 1, "replay": "tcp://h:9941", "missing": []}}
        row("subscriber", "checkpoint written on each acknowledgement", per_message(checkpoint.save, n // 5, r))
        feed.close(0)
        drain.close(0)
        sub.close()
        pub.close()
        spub.close()
    finally:
        drop_gpg_key(key)


if __name__ == "__main__":
    main()
