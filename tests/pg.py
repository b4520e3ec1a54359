"""A real PostgreSQL 15 for tests and benchmarks: initdb in a temporary
directory, the server started as user postgres on loopback (owned by PID,
stopped with SIGINT), and optionally a streaming replica of it made with
pg_basebackup.  Import it as `pg` (tests/ is on sys.path).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def available() -> str | None:
    """Why a server cannot be started here, or None when it can."""
    if not (PG_BIN / "postgres").exists():
        return f"PostgreSQL 15 is not installed ({PG_BIN}; apt-get install postgresql-15)"
    if os.geteuid() != 0:
        return "starting PostgreSQL as the postgres user needs root"
    return None


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    """One server.  `settings` are extra `-c name=value` options."""

    def __init__(self, *, prefix: str = "pg-", settings: dict[str, str] | None = None,
                 data: Path | None = None, base: Path | None = None) -> None:
        # Short path: the Unix socket path has a length limit.
        self.dir = base or Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
        self.data = data or self.dir / "data"
        self.port = _free_port()
        self.settings = {"fsync": "off", "max_connections": "50", **(settings or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        shutil.chown(self.dir, "postgres", "postgres")
        if data is None:
            subprocess.run(
                [PG_BIN / "initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"],
                user="postgres", group="postgres", check=True, capture_output=True,
            )

    @property
    def log(self) -> Path:
        return self.dir / "server.log"

    def start(self, timeout: float = 30) -> None:
        options = [a for k, v in self.settings.items() for a in ("-c", f"{k}={v}")]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [PG_BIN / "postgres", "-D", self.data, "-p", str(self.port), "-k", self.dir,
                 "-c", "listen_addresses=127.0.0.1", *options],
                user="postgres", group="postgres", stdout=subprocess.DEVNULL, stderr=log,
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg.connect(self.dsn(user="postgres", dbname="postgres"), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"postgres did not start: {self.log.read_text()[-2000:]}") from None
                time.sleep(0.05)

    def stop(self, sig: int = signal.SIGINT) -> None:
        """SIGINT: fast shutdown; SIGKILL: a crash (recovery at the next start)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def dsn(self, user: str = "postgres", dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} dbname={dbname} user={user}"

    def connect(self, user: str = "postgres", dbname: str = "postgres", **kw: object) -> psycopg.Connection:
        return psycopg.connect(self.dsn(user=user, dbname=dbname), **kw)  # type: ignore[arg-type]

    def create_database(self, name: str, *, owner: str = "postgres") -> str:
        """A fresh database (dropped first if it exists); returns its DSN."""
        with self.connect(autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            c.execute(f'CREATE DATABASE "{name}" OWNER "{owner}"')
        return self.dsn(user=owner, dbname=name)

    def replica(self) -> Postgres:
        """A hot standby streaming from this server (pg_basebackup -R), started."""
        base = Path(tempfile.mkdtemp(prefix="pgr-", dir="/tmp"))
        shutil.chown(base, "postgres", "postgres")
        subprocess.run([PG_BIN / "pg_basebackup", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                        "-D", base / "data", "-R", "-X", "stream", "--no-sync"],
                       user="postgres", group="postgres", check=True, capture_output=True, timeout=120)
        standby = Postgres(data=base / "data", base=base, settings=self.settings)
        standby.start()
        return standby
