"""A real knot DNS server on loopback, owned by PID: zones that take
TSIG-signed updates to their _fedmsg._tcp SRV and TXT records only, one of
them DNSSEC-signed; and a UDP proxy that tampers with its answers."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import dns.exception
import dns.message
import dns.opcode
import dns.query
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.update
import pytest

KNOTD = shutil.which("knotd") or "/usr/sbin/knotd"
KEYMGR = shutil.which("keymgr") or "/usr/sbin/keymgr"
ZONES = ("update.test", "lookup.test", "refresh.test", "e2e.test", "signed.test", "nsec3.test")
SIGNED = {"signed.test": "fast", "nsec3.test": "hashed"}  # zone -> DNSSEC policy

CONF = """\
server:
    listen: 127.0.0.1@{port}
    rundir: {dir}
database:
    storage: {dir}/db
log:
  - target: stderr
    any: notice
include: {dir}/debpulse.key
include: {dir}/stranger.key
acl:
  # Each key may change the _fedmsg._tcp SRV and TXT records and nothing else
  # (the same rule as deploy/dns/knot.conf).
  - id: fedmsg-update
    key: debpulse
    action: update
    update-type: [SRV, TXT]
    update-owner: name
    update-owner-match: equal
    update-owner-name: [_fedmsg._tcp]
policy:
  - id: fast
    algorithm: ecdsap256sha256
  - id: hashed
    algorithm: ecdsap256sha256
    nsec3: on
    nsec3-iterations: 1
    nsec3-salt-length: 8
template:
  - id: default
    storage: {dir}
    acl: fedmsg-update
zone:
{zones}"""

ZONE = """\
$ORIGIN {zone}.
$TTL 60
@ SOA ns hostmaster 1 3600 600 86400 60
@ NS ns
ns A 127.0.0.1
"""


@dataclass
class Knot:
    dir: Path
    port: int
    process: subprocess.Popen[bytes]
    key_file: Path          # the key the ACL allows, as `keymgr -t` writes it
    key: dns.tsig.Key
    stranger_key_file: Path  # a key the server knows but no ACL names
    anchors: dict[str, Path] = field(default_factory=dict)

    @property
    def server(self) -> str:
        return f"127.0.0.1:{self.port}"

    def anchor(self, zone: str, kind: str = "ds") -> Path:
        """The zone's KSK as the admin exports it: `keymgr ZONE ds` (or dnskey)."""
        path = self.dir / f"{zone}.{kind}"
        if not path.exists():
            out = subprocess.run([KEYMGR, "-c", str(self.dir / "knot.conf"), zone, kind],
                                 check=True, capture_output=True, text=True).stdout
            path.write_text(out)
        return path

    def records(self, domain: str, rdtype: str) -> list[str]:
        q = dns.message.make_query(f"_fedmsg._tcp.{domain}.", rdtype)
        r = dns.query.tcp(q, "127.0.0.1", port=self.port, timeout=3)
        rrset = r.get_rrset(r.answer, q.question[0].name, q.question[0].rdclass, dns.rdatatype.from_text(rdtype))
        return sorted(rd.to_text() for rd in rrset) if rrset else []

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tsig_key(path: Path, name: str) -> dns.tsig.Key:
    out = subprocess.run([KEYMGR, "-t", name, "hmac-sha256"], check=True, capture_output=True, text=True).stdout
    path.write_text(out)
    secret = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.strip().startswith("secret:"))
    return dns.tsig.Key(name, secret, "hmac-sha256")


def start_knot(zones: tuple[str, ...] = ZONES) -> Knot:
    d = Path(tempfile.mkdtemp(prefix="knot-"))
    key = _tsig_key(d / "debpulse.key", "debpulse")
    _tsig_key(d / "stranger.key", "stranger")
    lines = []
    for zone in zones:
        (d / f"{zone}.zone").write_text(ZONE.format(zone=zone))
        lines.append(f"  - domain: {zone}\n")
        if zone in SIGNED:
            lines.append(f"    dnssec-signing: on\n    dnssec-policy: {SIGNED[zone]}\n")
    port = free_port()
    (d / "knot.conf").write_text(CONF.format(port=port, dir=d, zones="".join(lines)))
    proc = run_knotd(d, port, {z: z in SIGNED for z in zones})
    return Knot(d, port, proc, d / "debpulse.key", key, d / "stranger.key")


def run_knotd(d: Path, port: int, zones: dict[str, bool]) -> subprocess.Popen[bytes]:
    """knotd -c d/knot.conf in the foreground, once every zone answers
    (signed where `zones` says so)."""
    if not os.path.exists(KNOTD):
        pytest.skip("knotd not installed (apt-get install knot knot-dnsutils)")
    (d / "db").mkdir(exist_ok=True)
    with (d / "knotd.log").open("wb") as log:
        proc = subprocess.Popen([KNOTD, "-c", str(d / "knot.conf")], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    pending = list(zones)
    while pending:
        if proc.poll() is not None:
            raise RuntimeError(f"knotd exited: {(d / 'knotd.log').read_text()}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"knotd did not load {pending}: {(d / 'knotd.log').read_text()}")
        try:
            q = dns.message.make_query(f"{pending[0]}.", "SOA", want_dnssec=True)
            r = dns.query.udp(q, "127.0.0.1", port=port, timeout=0.2)
            signed = any(rr.rdtype == dns.rdatatype.RRSIG for rr in r.answer)
            if r.answer and (signed or not zones[pending[0]]):
                pending.pop(0)
                continue
        except (dns.exception.Timeout, OSError):
            pass
        time.sleep(0.02)
    return proc


def drop_knot(knot: Knot) -> None:
    knot.stop()
    shutil.rmtree(knot.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def knot_tools() -> SimpleNamespace:
    """For tests that write their own knot configuration (test modules
    cannot import this conftest: tests/dns is no package, so that it never
    shadows dnspython's `dns`)."""
    return SimpleNamespace(run_knotd=run_knotd, free_port=free_port, keymgr=KEYMGR)


@pytest.fixture(scope="session")
def knot() -> Iterator[Knot]:
    server = start_knot()
    yield server
    drop_knot(server)


@pytest.fixture
def own_knot() -> Iterator[Knot]:
    """A knot of the test's own (about 20 ms), for tests that stop it."""
    server = start_knot(("lookup.test",))
    yield server
    drop_knot(server)


class TamperingProxy:
    """A UDP DNS proxy on loopback that hands each answer from `upstream`
    through `tamper(message)` before passing it on (an on-path attacker)."""

    def __init__(self, upstream_port: int, tamper: Callable[[dns.message.Message], None]) -> None:
        self.upstream_port = upstream_port
        self.tamper = tamper
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def server(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                wire, client = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            query = dns.message.from_wire(wire)
            answer = dns.query.udp(query, "127.0.0.1", port=self.upstream_port, timeout=2)
            self.tamper(answer)
            self.sock.sendto(answer.to_wire(), client)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def tampering_proxy(knot: Knot) -> Iterator[Callable[[Callable[[dns.message.Message], None]], TamperingProxy]]:
    proxies: list[TamperingProxy] = []

    def make(tamper: Callable[[dns.message.Message], None]) -> TamperingProxy:
        proxies.append(TamperingProxy(knot.port, tamper))
        return proxies[-1]

    yield make
    for p in proxies:
        p.close()



@pytest.fixture
def clean(knot: Knot) -> Iterator[None]:
    """Leave update.test as found: remove whatever the test announced there."""
    yield
    u = dns.update.UpdateMessage("update.test", keyring=knot.key)
    u.delete("_fedmsg._tcp", "SRV")
    u.delete("_fedmsg._tcp", "TXT")
    dns.query.tcp(u, "127.0.0.1", port=knot.port, timeout=3)


class TcpDnsProxy:
    """A DNS-over-TCP proxy on loopback in front of knot, for updates in
    flight: with `hold_next_update()` the next UPDATE message waits (and
    `update_seen` is set) until `release()`, then goes to knot whether or
    not its sender is still there, as a packet already on the wire would.
    `down = True` makes it accept and close at once (a server that drops
    connections); queries pass straight through otherwise."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.down = False
        self.updates = 0
        self.update_seen = threading.Event()
        self._hold = False
        self._release = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._serve, daemon=True)
        self._accept.start()

    @property
    def server(self) -> str:
        return f"127.0.0.1:{self.port}"

    def hold_next_update(self) -> None:
        self._hold = True
        self._release.clear()
        self.update_seen.clear()

    def release(self) -> None:
        self._release.set()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            if self.down:
                conn.close()
                continue
            t = threading.Thread(target=self._client, args=(conn,), daemon=True)
            self._threads.append(t)
            t.start()

    def _client(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(30)
            while True:
                wire = _read_framed(conn)
                if wire is None:
                    return
                if len(wire) > 3 and (int.from_bytes(wire[2:4], "big") >> 11) & 0xF == dns.opcode.UPDATE:
                    self.updates += 1
                    if self._hold:
                        self._hold = False
                        self.update_seen.set()
                        self._release.wait(60)
                answer = self._upstream(wire)
                try:
                    conn.sendall(len(answer).to_bytes(2, "big") + answer)
                except OSError:
                    return  # the sender gave up; the update reached knot all the same

    def _upstream(self, wire: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", self.upstream_port), timeout=10) as up:
            up.sendall(len(wire).to_bytes(2, "big") + wire)
            answer = _read_framed(up)
        assert answer is not None, "knot closed the connection"
        return answer

    def close(self) -> None:
        self._stop.set()
        self._release.set()
        self._accept.join(2)
        self.sock.close()


def _read_framed(conn: socket.socket) -> bytes | None:
    head = _read_exactly(conn, 2)
    return None if head is None else _read_exactly(conn, int.from_bytes(head, "big"))


def _read_exactly(conn: socket.socket, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        try:
            chunk = conn.recv(n - len(data))
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
    return data


@pytest.fixture
def tcp_proxy(knot: Knot) -> Iterator[TcpDnsProxy]:
    proxy = TcpDnsProxy(knot.port)
    yield proxy
    proxy.close()
