"""The example /etc/debpulse of each host role, installed below a temporary
root: every absolute path it names moved below that root, and every file or
directory it names made (keys, keyrings, queues, Maildirs), so that the real
programs can run from it unchanged otherwise.

Also running a program as its unit would (ready on READY=1) and a /metrics reader.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from testbus import ROOT, GpgKey, Notify, free_port  # noqa: F401  (Notify: re-exported for the tests here)

EXAMPLES = ROOT / "deploy" / "examples" / "etc-debpulse"
ROLES = sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir())


@dataclass
class Role:
    name: str
    root: Path                      # stands for /
    etc: Path                       # root/etc/debpulse
    dns_port: int                   # the closed port [dns.announce] server points to
    data: dict = field(default_factory=dict)

    @property
    def config(self) -> Path:
        return self.etc / "debpulse.toml"

    @property
    def env(self) -> dict[str, str]:
        # Only what a unit's Environment= would set, moved below root.
        return {**os.environ, "DEBPULSE_RUNTIME_DIR": str(self.root / "run/debpulse"),
                "DEBPULSE_STATE_DIR": str(self.root / "var/lib/debpulse")}

    def path(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")

    def write_config(self, text: str) -> Path:
        self.config.write_text(text)
        return self.config


def install_role(name: str, key: GpgKey) -> Role:
    # Short root: the relay's socket path below it must fit a sockaddr_un.
    root = Path(tempfile.mkdtemp(prefix="dp-", dir="/tmp"))
    role = Role(name, root, root / "etc" / "debpulse", free_port())
    role.etc.mkdir(parents=True)
    for src in (EXAMPLES / name).iterdir():
        (role.etc / src.name).write_text(moved(src.read_text(), role))
    role.data = tomllib.loads(role.config.read_text())
    _make_named_files(role, key)
    return role


def moved(text: str, role: Role) -> str:
    """Absolute paths below role.root; the DNS server to a closed local port
    (the announcement fails at once and the relay goes on, as it does when
    the name server is down)."""
    text = text.replace('"/', f'"{role.root}/').replace("ipc:///", f"ipc://{role.root}/")
    return re.sub(r'server = "[^"]*"', f'server = "127.0.0.1:{role.dns_port}"', text)


def _make_named_files(role: Role, key: GpgKey) -> None:
    def each(table: dict) -> Iterator[tuple[str, object]]:
        for k, v in table.items():
            if isinstance(v, dict):
                yield from each(v)
            else:
                yield k, v

    for k, value in each(role.data):
        for v in value if isinstance(value, list) else [value]:
            if not isinstance(v, str) or not v.startswith(str(role.root)):
                continue
            p = Path(v)
            if k in ("signing_key",):
                _copy(key.secret_file, p, 0o600)
            elif k in ("keyring", "keyrings"):
                _copy(key.public_file, p, 0o644)
            elif k == "tsig_key_file":
                secret = base64.b64encode(os.urandom(32)).decode()
                p.write_text(f"key:\n  - id: debpulse-relay\n    algorithm: hmac-sha256\n    secret: {secret}\n")
            elif k == "token_file":
                p.write_text("s3cret-token\n")
            elif k == "queue_dir":
                for sub in ("done", "new", "reject"):
                    (p / sub).mkdir(parents=True, exist_ok=True)
            elif k == "removals":
                p.parent.mkdir(parents=True, exist_ok=True)
            elif k in ("maildir", "state_dir", "spool", "repo_root"):
                p.mkdir(parents=True, exist_ok=True)
            elif k == "policy":
                assert p.exists(), f"{role.name}: policy {p} is not among the example files"
            else:
                raise AssertionError(f"{role.name}: the test does not know what {k} = {v!r} names")


def _copy(src: Path, dst: Path, mode: int) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, dst)
    dst.chmod(mode)


def drop_role(role: Role) -> None:
    shutil.rmtree(role.root, ignore_errors=True)


# -- running programs ----------------------------------------------------------

def command(script: str) -> list[str]:
    """A console script of this installation, as the units' /usr/bin/... would be."""
    return [str(Path(sys.executable).with_name(script))]


@contextmanager
def service(argv: list[str], role: Role, name: str, notify: Notify) -> Iterator[subprocess.Popen]:
    """Run a long-running program as its unit would (Type=notify): started
    with NOTIFY_SOCKET, ready once READY=1 arrives, stopped with SIGTERM."""
    log_path = role.root / f"{name}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, env={**role.env, "NOTIFY_SOCKET": str(notify.path)},
                                stdout=log, stderr=log)
    proc.log_path = log_path  # type: ignore[attr-defined]
    try:
        notify.wait_for("READY=1", proc)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def scrape(port: int) -> dict[str, float]:
    """/metrics as {'name{labels}': value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = resp.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def wait_metric(port: int, name: str, at_least: float, timeout: float = 15.0) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while True:
        found = scrape(port)
        if found.get(name, 0.0) >= at_least:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} never reached {at_least}: {found}")
        time.sleep(0.1)
