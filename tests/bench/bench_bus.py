"""The bus: signed publish -> receive -> verify throughput, side by side in
one run, with raw pyzmq, the bare signing rate of the same library and
fedmsg 1.1.7 as references; then the cost of the outbox and the catch-up
rate of the replay endpoint.

    python tests/bench/bench_bus.py [--runs R] [--n N] [--n-gpg N] [--catchup N]

Each variant runs its publisher in its own process and the receiver here;
throughput is messages / (the publisher's start -> the last verified
receipt), 1 KB bodies, an ed25519 key (what `gpg --quick-gen-key` makes and
what the deploy notes recommend).  Every debpulse figure is with the outbox
on (committed before sending); the same pipeline without it is shown
beside.  The in-process variants run R times, interleaved, and print the
median with the range; each ratio is taken within one run, against the
reference measured just before it.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
os.environ.pop("RUST_BACKTRACE", None)

from testbus import drop_gpg_key, free_port, make_gpg_key  # noqa: E402

FEDMSG_PY = Path(os.environ.get("DEBPULSE_FEDMSG_VENV", ROOT / ".venv-fedmsg")) / "bin" / "python"
BODY = {"log": "x" * 900}


# -- publishers (child processes) ----------------------------------------------

def raw_publisher(endpoint: str, n: int, go) -> None:  # type: ignore[no-untyped-def]
    import zmq

    from debpulse.emitters import envelope as env

    sock = zmq.Context().socket(zmq.PUB)
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.bind(endpoint)
    e = env.build(topic="org.debian.dev.logger.log", msg=BODY, msg_id=env.new_msg_id(), i=1, username="b")
    frames = env.to_frames(e)  # pre-encoded: the floor of what any Python publisher can do
    go.wait()
    for _ in range(n):
        sock.send_multipart(frames)
    time.sleep(3)


def debpulse_publisher(endpoint: str, n: int, go, scope: str, backend: str, key: str, home: str,
                       state: str, durable: bool = True,
                       signing_processes: int = 1) -> None:  # type: ignore[no-untyped-def]
    from debpulse.emitters.config import Config
    from debpulse.emitters.event import Event
    from debpulse.emitters.options import BusOptions
    from debpulse.emitters.publisher import Publisher

    args = argparse.Namespace(publish=endpoint, signing_key=key, gnupg_home=home, state_dir=state)
    opts = BusOptions.from_args(args, Config(), name=f"bench-{scope}-{backend}", own_key=True)
    opts.scope, opts.backend, opts.high_water_mark = scope, backend, 0
    opts.signing_processes = signing_processes
    opts.replay = f"tcp://127.0.0.1:{free_port()}"
    pub = Publisher(opts)
    go.wait()
    batch = 100  # as the relay stores what its clients send: one transaction per batch
    seq = 0
    for i in range(0, n, batch):
        events = [Event("logger.log", BODY) for _ in range(min(batch, n - i))]
        if durable:
            pub.publish_events(events)
        else:  # the very same code without the outbox: check, build, sign, send
            numbered = [(k, seq + k + 1) for k in range(len(events))]
            seq += len(events)
            pub.send([(e, data, True) for e, data in pub.prepare(events).build(numbered)])
    time.sleep(3)
    pub.close()


def bare_signing(key_file: str, n: int) -> tuple[float, float]:
    """pysequoia alone on one core: signatures and verifications per second
    of canonical 1 KB envelopes (what the signed variants sign), each one
    different, as on the bus.  Sequoia keeps the signatures it has
    verified in a cache: verifying one signature over and over measures
    that cache (about 16 us here), not a verification (about 65 us)."""
    import pysequoia

    from debpulse.emitters import envelope as env
    from debpulse.emitters.signing import SequoiaSigner

    signer = SequoiaSigner.from_file(key_file)
    data = [env.canonical(env.build(topic="org.debian.dev.logger.log", msg=BODY, msg_id=env.new_msg_id(), i=k + 1,
                                    username="bench", extra={"seq_id": k + 1, "publisher": "bench@host/0123456789ab"}))
            for k in range(n)]
    raw_signer, detached = signer._signer, pysequoia.SignatureMode.DETACHED  # noqa: SLF001 (the library alone)
    t0 = time.perf_counter()
    sigs = [pysequoia.sign(raw_signer, d, mode=detached, armor=False) for d in data]
    signing = n / (time.perf_counter() - t0)
    cert = pysequoia.Cert.from_bytes(signer.certificate.encode())  # type: ignore[union-attr]
    t0 = time.perf_counter()
    for d, sig in zip(data, sigs, strict=True):
        pysequoia.verify(bytes=d, store=lambda ids: [cert], signature=pysequoia.Sig.from_bytes(sig))
    verifying = n / (time.perf_counter() - t0)
    return signing, verifying


def bare_signing_in_child(key_file: str, n: int) -> tuple[float, float]:
    """bare_signing in a process of its own, as the publishers run."""
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(bare_signing, (key_file, n))


# -- receivers -----------------------------------------------------------------

def receive_raw(endpoint: str, n: int, go) -> float:  # type: ignore[no-untyped-def]
    import zmq

    sock = zmq.Context.instance().socket(zmq.SUB)
    sock.setsockopt(zmq.RCVHWM, 0)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.connect(endpoint)
    time.sleep(0.5)
    t0 = time.perf_counter()
    go.set()
    for _ in range(n):
        sock.recv_multipart()
    return time.perf_counter() - t0


def receive_debpulse(endpoint: str, n: int, go, keyring: str | None,  # type: ignore[no-untyped-def]
                     verifying_processes: int = 1) -> float:
    from debpulse.emitters.signing import SequoiaKeyring
    from debpulse.emitters.subscriber import Received, Subscriber
    from debpulse.emitters.verify import Verifier

    certs = SequoiaKeyring.from_files([keyring]) if keyring else SequoiaKeyring([])
    certs.processes = verifying_processes
    verifier = Verifier(certs, scopes=("envelope", "fedmsg"), require_signature=keyring is not None)
    sub = Subscriber([endpoint], verifier=verifier, hwm=0, catchup_interval=3600)
    time.sleep(0.5)
    t0 = time.perf_counter()
    go.set()
    got = 0
    while got < n:
        item = sub.receive(timeout=30)
        if item is None:
            raise SystemExit(f"only {got} of {n} arrived")
        if isinstance(item, Received) and item.verdict.ok:
            got += 1
    elapsed = time.perf_counter() - t0
    sub.close()
    return elapsed


def run_variant(name: str, n: int, target, receiver, *args) -> tuple[str, int, float]:  # type: ignore[no-untyped-def]
    ctx = mp.get_context("spawn")
    go = ctx.Event()
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    proc = ctx.Process(target=target, args=(endpoint, n, go, *args[0]))
    proc.start()
    time.sleep(1.0)  # let it bind
    try:
        elapsed = receiver(endpoint, n, go, *args[1])
    finally:
        proc.terminate()
        proc.join(10)
    return name, n, n / elapsed


def run_fedmsg(n: int, home: Path, fpr: str) -> tuple[str, int, float] | None:
    if not FEDMSG_PY.exists():
        print(f"(fedmsg 1.1.7 not installed in {FEDMSG_PY.parent.parent}: run deploy/setup install)")
        return None
    script = str(Path(__file__).with_name("fedmsg_reference.py"))
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    env = {**os.environ, "GNUPGHOME": str(home)}
    pub = subprocess.Popen([str(FEDMSG_PY), script, "publish", str(home), fpr, endpoint, str(n)],
                           stdin=subprocess.PIPE, text=True, env=env)
    time.sleep(1.5)
    rec = subprocess.Popen([str(FEDMSG_PY), script, "receive", str(home), endpoint, str(n)],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    assert rec.stdout is not None and rec.stdin is not None and pub.stdin is not None
    rec.stdout.readline()
    time.sleep(0.5)
    rec.stdin.write("go\n")
    rec.stdin.flush()
    pub.stdin.write("go\n")
    pub.stdin.flush()
    result = json.loads(rec.stdout.readline())
    rec.wait(30)
    pub.wait(60)
    if result["valid"] < n:
        print(f"(fedmsg: only {result['valid']} of {n} validated)")
    return "fedmsg 1.1.7, gpg backend", result["valid"], result["valid"] / result["seconds"]


# -- the outbox ------------------------------------------------------------------

def durability(n: int, key_file: str, tmp: Path) -> list[tuple[str, float]]:
    """Publish throughput (sign, store, send) against signing and sending alone."""
    from debpulse.emitters.config import Config
    from debpulse.emitters.event import Event
    from debpulse.emitters.options import BusOptions
    from debpulse.emitters.publisher import Publisher

    out = []
    for label, sync, batch, processes in (("outbox NORMAL, one event per transaction", "NORMAL", 1, 1),
                                          ("outbox NORMAL, 100 per transaction (relay)", "NORMAL", 100, 1),
                                          ("the same, 2 signing processes", "NORMAL", 100, 2),
                                          ("outbox FULL (fsync), one per transaction", "FULL", 1, 1)):
        args = argparse.Namespace(publish=f"ipc://{tmp}/d-{sync}-{batch}-{processes}.sock", signing_key=key_file,
                                  state_dir=str(tmp / f"d-{sync}-{batch}-{processes}"))
        opts = BusOptions.from_args(args, Config(), name="durability")
        opts.synchronous, opts.signing_processes = sync, processes
        pub = Publisher(opts)
        count = n if sync == "NORMAL" else max(200, n // 20)
        t0 = time.perf_counter()
        for _ in range(0, count, batch):
            pub.publish_events([Event("logger.log", BODY)] * batch)
        out.append((label, count / (time.perf_counter() - t0)))
        if sync == "NORMAL" and batch == 100 and processes == 1:
            # The same work without the outbox: check, build, sign, send.
            t0 = time.perf_counter()
            for seq in range(0, count, 100):
                built = pub.prepare([Event("logger.log", BODY)] * 100).build([(k, seq + k + 1) for k in range(100)])
                pub.send([(e, data, True) for e, data in built])
            out.insert(0, ("no outbox (check, sign, send), 100 per batch", count / (time.perf_counter() - t0)))
        pub.close()
    return out


def catchup(n: int, key_file: str, public: str, tmp: Path) -> float:
    from debpulse.emitters.config import Config
    from debpulse.emitters.event import Event
    from debpulse.emitters.options import BusOptions
    from debpulse.emitters.publisher import Publisher
    from debpulse.emitters.signing import SequoiaKeyring
    from debpulse.emitters.subscriber import Received, Subscriber
    from debpulse.emitters.verify import Verifier

    args = argparse.Namespace(publish=f"tcp://127.0.0.1:{free_port()}", signing_key=key_file,
                              state_dir=str(tmp / "catchup"))
    opts = BusOptions.from_args(args, Config(), name="catchup")
    opts.replay = f"tcp://127.0.0.1:{free_port()}"
    pub = Publisher(opts)
    for _ in range(0, n, 1000):
        pub.publish_events([Event("logger.log", BODY)] * 1000)
    sub = Subscriber([], verifier=Verifier(SequoiaKeyring.from_files([public])), catchup_interval=3600)
    t0 = time.perf_counter()
    sub.follow(pub.replay_endpoint or "", after=0)  # a subscriber that missed all of them
    got = 0
    while got < n:
        item = sub.receive(timeout=30)
        if item is None:
            break
        got += isinstance(item, Received)
    elapsed = time.perf_counter() - t0
    sub.close()
    pub.close()
    return got / elapsed


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):10.0f}  ({min(values):.0f}-{max(values):.0f})"


def ratio(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    load = os.getloadavg()[0]
    return (f"{cpu}, {len(os.sched_getaffinity(0))} CPUs, Python {platform.python_version()}, "
            f"load average {load:.1f} at the start")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3, help="runs of the in-process variants (default 3)")
    p.add_argument("--n", type=int, default=20_000, help="messages per in-process variant")
    p.add_argument("--n-raw", type=int, default=200_000, help="messages for raw pyzmq")
    p.add_argument("--n-gpg", type=int, default=300, help="messages for the gpg-process variants")
    p.add_argument("--catchup", type=int, default=100_000, help="missed messages to catch up")
    a = p.parse_args()
    print(f"machine: {machine()}", flush=True)
    key = make_gpg_key("bench <bench@example.org>", "ed25519")
    tmp = Path(tempfile.mkdtemp(prefix="dp-bench-"))
    try:
        sk, home, fpr, pub = str(key.secret_file), str(key.home), key.fingerprint, str(key.public_file)
        rates: dict[str, list[float]] = {}
        ratios: dict[str, list[float]] = {}
        run = 0

        def variant(name: str, n: int, *args) -> float:  # type: ignore[no-untyped-def]
            r = run_variant(name, n, *args)[2]
            rates.setdefault(name, []).append(r)
            print(f"  run {run + 1}: {name:48} {r:10.0f} msg/s", flush=True)
            return r

        for run in range(a.runs):
            raw = variant("raw pyzmq PUB/SUB, pre-encoded frames", a.n_raw, raw_publisher, receive_raw, (), ())
            unsigned = variant("debpulse unsigned (scope none)", a.n, debpulse_publisher, receive_debpulse,
                               ("none", "sequoia", sk, home, str(tmp / f"u{run}")), (None,))
            variant("debpulse unsigned, no outbox", a.n, debpulse_publisher, receive_debpulse,
                    ("none", "sequoia", sk, home, str(tmp / f"un{run}"), False), (None,))
            signing, verifying = bare_signing_in_child(sk, a.n // 4)
            rates.setdefault("pysequoia alone: signatures, one core", []).append(signing)
            rates.setdefault("pysequoia alone: verifications, one core", []).append(verifying)
            print(f"  run {run + 1}: pysequoia alone: {signing:.0f} signatures/s, {verifying:.0f} "
                  "verifications/s", flush=True)
            signed = variant("debpulse sequoia, envelope scope", a.n, debpulse_publisher, receive_debpulse,
                             ("envelope", "sequoia", sk, home, str(tmp / f"s{run}")), (pub,))
            variant("debpulse sequoia, envelope scope, no outbox", a.n, debpulse_publisher, receive_debpulse,
                    ("envelope", "sequoia", sk, home, str(tmp / f"sn{run}"), False), (pub,))
            variant("debpulse sequoia, envelope scope, 2 signing processes", a.n, debpulse_publisher,
                    receive_debpulse, ("envelope", "sequoia", sk, home, str(tmp / f"s2{run}"), True, 2), (pub,))
            variant("debpulse sequoia, envelope scope, 2 verifying processes", a.n, debpulse_publisher,
                    receive_debpulse, ("envelope", "sequoia", sk, home, str(tmp / f"v2{run}")), (pub, 2))
            variant("debpulse sequoia, envelope scope, 2 signing, 2 verifying", a.n, debpulse_publisher,
                    receive_debpulse, ("envelope", "sequoia", sk, home, str(tmp / f"sv2{run}"), True, 2), (pub, 2))
            fedmsg_scope = variant("debpulse sequoia, fedmsg scope", a.n, debpulse_publisher, receive_debpulse,
                                   ("fedmsg", "sequoia", sk, home, str(tmp / f"f{run}")), (pub,))
            ratios.setdefault("unsigned / raw pyzmq", []).append(unsigned / raw)
            ratios.setdefault("signed (envelope) / pysequoia signing alone", []).append(signed / signing)
            ratios.setdefault("signed (fedmsg scope) / pysequoia signing alone", []).append(fedmsg_scope / signing)
        slow = [
            run_variant("debpulse gnupg backend (signing)", a.n_gpg, debpulse_publisher, receive_debpulse,
                        ("envelope", "gnupg", fpr, home, str(tmp / "g")), (pub,)),
        ]
        fed = run_fedmsg(a.n_gpg, key.home, fpr)
        if fed:
            slow.append(fed)
        print(f"\nsigned publish -> receive -> verify, 1 KB bodies, ed25519 key; median of {a.runs} runs (range)")
        print(f"{'variant':52} {'msg/s':>10}")
        for name, values in rates.items():
            print(f"{name:52} {spread(values)}")
        for name, _, r in slow:
            print(f"{name:52} {r:10.0f}  (one run)")
        print("\nratios, each within one run (median, range):")
        goals = {"unsigned / raw pyzmq": 0.5, "signed (envelope) / pysequoia signing alone": 0.8}
        for name, values in ratios.items():
            goal = f"  (goal >= {goals[name]})" if name in goals else ""
            print(f"  {name:52} {ratio(values)}{goal}")
        if fed:
            f = fed[2]
            signed_median = statistics.median(rates["debpulse sequoia, envelope scope"])
            print(f"  sequoia envelope / fedmsg gpg: {signed_median / f:.0f}x; "
                  f"debpulse gnupg / fedmsg gpg: {slow[0][2] / f:.1f}x")

        print("\nthe cost of durability (publish only: sign, store, send)")
        for label, r in durability(a.n, sk, tmp):
            print(f"{label:52} {r:10.0f} msg/s")
        print(f"\ncatch-up of {a.catchup} missed messages from the replay endpoint (verified): "
              f"{catchup(a.catchup, sk, pub, tmp):.0f} msg/s")
    finally:
        drop_gpg_key(key)


if __name__ == "__main__":
    main()
