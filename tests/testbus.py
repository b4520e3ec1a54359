"""Test support shared by the tests and the benchmarks: real gpg keys, free
ports, the shared sample data, a real debpulse-relay process (`Bus`), and
readiness the way systemd sees it (`Notify`, `start_ready`: READY=1 on a
NOTIFY_SOCKET).

Import it as `testbus` (tests/ is on sys.path for every test module, and
the benchmarks put it there); tests/conftest.py turns it into fixtures.
Real components only: each starts the real thing on loopback and stops it
by PID.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.pop("RUST_BACKTRACE", None)
# The suite depends on no setting of the caller's but the sample data's
# place (DEBPULSE_FIXTURES): a configuration, state or runtime directory,
# or a service manager's socket in the environment would leak into every
# program the tests start.
for _name in [n for n in os.environ if n.startswith("DEBPULSE_") and n != "DEBPULSE_FIXTURES"]:
    del os.environ[_name]
os.environ.pop("NOTIFY_SOCKET", None)


def fixtures_dir() -> Path:
    return Path(os.environ.get("DEBPULSE_FIXTURES") or ROOT.parent / "shared" / "fixtures")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class GpgKey:
    home: Path           # GNUPGHOME holding the secret key
    fingerprint: str     # upper-case hex
    secret_file: Path    # armored, unprotected secret key (for the in-process backend)
    public_file: Path    # armored certificate (for keyrings)


def make_gpg_key(uid: str = "debpulse test <test@example.org>", algo: str = "ed25519") -> GpgKey:
    # Short path: gpg-agent's socket path has a length limit.
    home = Path(tempfile.mkdtemp(prefix="gh-", dir="/tmp"))
    home.chmod(0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    subprocess.run(
        ["gpg", "--batch", "--passphrase", "", "--quick-gen-key", uid, algo, "sign", "never"],
        env=env, check=True, capture_output=True,
    )
    out = subprocess.run(
        ["gpg", "--batch", "--with-colons", "--list-secret-keys"],
        env=env, check=True, capture_output=True, text=True,
    ).stdout
    fpr = next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:"))
    secret = home / "secret.asc"
    public = home / "public.asc"
    secret.write_bytes(subprocess.run(
        ["gpg", "--batch", "--armor", "--export-secret-keys", fpr],
        env=env, check=True, capture_output=True).stdout)
    public.write_bytes(subprocess.run(
        ["gpg", "--batch", "--armor", "--export", fpr],
        env=env, check=True, capture_output=True).stdout)
    return GpgKey(home, fpr, secret, public)


def drop_gpg_key(key: GpgKey) -> None:
    subprocess.run(["gpgconf", "--kill", "gpg-agent"],
                   env={**os.environ, "GNUPGHOME": str(key.home)}, capture_output=True)
    shutil.rmtree(key.home, ignore_errors=True)


# -- the bus: a real debpulse-relay process ------------------------------------

RELAY_MODULE = "debpulse.emitters.commands.relay"


class BusSubscriber:
    """A subscriber connected to the test relay, already following it."""

    def __init__(self, bus: Bus, topic: str) -> None:
        from debpulse.emitters.signing import SequoiaKeyring
        from debpulse.emitters.subscriber import Subscriber
        from debpulse.emitters.verify import Verifier

        verifier = Verifier(SequoiaKeyring.from_files([bus.key.public_file]))
        self.sub = Subscriber([bus.endpoint], verifier=verifier, topics=[topic] if topic else None,
                              catchup_interval=0.5)
        # Follow through the replay endpoint too: messages sent before the
        # SUB socket has joined are fetched instead of missed.
        self.sub.follow(bus.replay)

    def wait(self, n: int, timeout: float = 10.0) -> list:
        from debpulse.emitters.subscriber import Received

        got: list = []
        deadline = time.monotonic() + timeout
        while len(got) < n and time.monotonic() < deadline:
            item = self.sub.receive(timeout=max(0.01, deadline - time.monotonic()))
            if isinstance(item, Received):
                got.append(item)
        return got

    def close(self) -> None:
        self.sub.close()


class Notify:
    """The service manager's end of sd_notify: a datagram socket whose path
    a process gets as NOTIFY_SOCKET.  A process of ours sends READY=1 once
    it is really up (the relay: sockets bound and the DNS announcement
    made), which is what tests wait for, never for a file or a port."""

    def __init__(self, directory: Path | None = None) -> None:
        # Short path: AF_UNIX paths have a length limit.
        self._own = directory is None
        self.dir = Path(tempfile.mkdtemp(prefix="ns-", dir="/tmp")) if directory is None else directory
        self.path = self.dir / "notify.sock"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.messages: list[str] = []

    @property
    def env(self) -> dict[str, str]:
        return {"NOTIFY_SOCKET": str(self.path)}

    def wait_for(self, state: str, proc: subprocess.Popen, timeout: float = 30.0,
                 log: Path | None = None) -> list[str]:
        """Every message so far, once one has the line `state` (READY=1,
        STOPPING=1); AssertionError if `proc` exits first or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(state in m.split("\n") for m in self.messages):
                return self.messages
            if proc.poll() is not None:
                self.drain()
                if any(state in m.split("\n") for m in self.messages):
                    return self.messages
                raise AssertionError(f"exited with {proc.returncode} before {state}: {_tail(proc, log)}")
            self.sock.settimeout(0.1)
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                pass
        raise AssertionError(f"no {state} within {timeout} s (got {self.messages}): {_tail(proc, log)}")

    def drain(self) -> list[str]:
        """Every message received so far."""
        self.sock.settimeout(0)
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return self.messages

    def close(self) -> None:
        self.sock.close()
        if self._own:  # a directory given is the caller's, socket file and all
            shutil.rmtree(self.dir, ignore_errors=True)


def _tail(proc: subprocess.Popen, log: Path | None) -> str:
    log = log or getattr(proc, "log_path", None)
    return Path(log).read_text(errors="replace")[-2000:] if log and Path(log).exists() else ""


def start_ready(argv: list[str], env: dict[str, str], log: Path, timeout: float = 30.0) -> subprocess.Popen:
    """Start a long-running debpulse program with a NOTIFY_SOCKET of its own
    and return once it has sent READY=1 (stdout and stderr go to `log`)."""
    notify = Notify()
    try:
        with open(log, "ab") as fh:
            proc = subprocess.Popen(argv, env={**env, **notify.env}, stdout=fh, stderr=fh)
        proc.log_path = log  # type: ignore[attr-defined]
        try:
            notify.wait_for("READY=1", proc, timeout, log)
        except BaseException:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            raise
        return proc
    finally:
        notify.close()


def connect_and_wait(sock, endpoint: str, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    """Connect a ZeroMQ socket and return once the ZMTP handshake with the
    peer is done (the socket's own monitor says so): a SUB socket has then
    sent its subscriptions, instead of a test hoping a fixed sleep is enough."""
    import zmq
    from zmq.utils.monitor import recv_monitor_message

    monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
    try:
        sock.connect(endpoint)
        if not monitor.poll(int(timeout * 1000)):
            raise AssertionError(f"no handshake with {endpoint} within {timeout} s")
        recv_monitor_message(monitor)
    finally:
        sock.disable_monitor()
        monitor.close(0)


class Bus:
    def __init__(self, base: Path, key: GpgKey) -> None:
        self.key = key
        base.mkdir(parents=True, exist_ok=True)
        self.state = base / "state"
        self.runtime = base / "run"
        self.port = free_port()
        self.endpoint = f"tcp://127.0.0.1:{self.port}"
        self.replay = f"tcp://127.0.0.1:{free_port()}"
        self.relay_socket = f"ipc://{self.runtime}/relay.sock"
        self.env = {"DEBPULSE_STATE_DIR": str(self.state), "DEBPULSE_RUNTIME_DIR": str(self.runtime)}
        self.proc: subprocess.Popen | None = None
        self.log = base / "relay.log"
        self._subs: list[BusSubscriber] = []

    def start(self, *extra: str) -> None:
        """Start the relay and return once it says READY=1: its sockets are
        bound and, with [dns.announce], its announcement made."""
        import sys

        self.proc = start_ready(
            [sys.executable, "-m", RELAY_MODULE, "--publish", self.endpoint, "--replay", self.replay,
             "--signing-key", str(self.key.secret_file), *extra],
            {**os.environ, **self.env}, self.log,
        )

    def stop(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)
        self.proc = None

    def subscriber(self, topic: str = "") -> BusSubscriber:
        sub = BusSubscriber(self, topic)
        self._subs.append(sub)
        return sub

    def close(self) -> None:
        for s in self._subs:
            s.close()
        self.stop(signal.SIGTERM)


def median_time(fn: Callable[[], object], rounds: int) -> float:
    """Median wall time of `fn` over `rounds` calls, for the benchmarks."""
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)
