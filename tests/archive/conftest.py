"""A real PostgreSQL 15 (one per session, a fresh database per test),
debpulse-archive and debpulse-web as real processes (ready on READY=1),
and HTTP on loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pg
import pytest
from testbus import Bus, free_port


@pytest.fixture(scope="session")
def pg_server() -> Iterator[pg.Postgres]:
    why = pg.available()
    if why:
        pytest.skip(why)
    server = pg.Postgres(prefix="arch-")
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture
def archive_dsn(pg_server: pg.Postgres, request: pytest.FixtureRequest) -> str:
    if pg_server.proc is None:
        pg_server.start()
    return pg_server.create_database("archive")


class Ready:
    """The service manager's end of sd_notify."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))

    def wait(self, proc: subprocess.Popen, log: Path, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"exited with {proc.returncode}: {log.read_text()[-3000:]}")
            self.sock.settimeout(0.1)
            try:
                if b"READY=1" in self.sock.recv(4096):
                    return
            except TimeoutError:
                pass
        raise AssertionError(f"not ready within {timeout} s: {log.read_text()[-3000:]}")

    def close(self) -> None:
        self.sock.close()


class Service:
    """A debpulse program as its unit runs it: started, ready on READY=1, stopped by PID."""

    def __init__(self, argv: list[str], base: Path, name: str, env: dict[str, str]) -> None:
        self.argv, self.base, self.name, self.env = argv, base, name, env
        self.log = base / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0

    def start(self) -> Service:
        ready = Ready(self.base / f"{self.name}-{self.runs}.notify")
        self.runs += 1
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=out,
                                         env={**os.environ, **self.env, "NOTIFY_SOCKET": str(ready.path)})
        try:
            ready.wait(self.proc, self.log)
        finally:
            ready.close()
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def services(tmp_path: Path) -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for s in started:
        s.stop(signal.SIGKILL)


@pytest.fixture
def start_archive(bus: Bus, archive_dsn: str, tmp_path: Path, services: list[Service]):  # type: ignore[no-untyped-def]
    def start(*extra: str, dsn: str | None = None) -> Service:
        argv = [sys.executable, "-m", "debpulse.consumers.archive.cli", "--dsn", dsn or archive_dsn,
                "--endpoint", bus.endpoint, "--keyring", str(bus.key.public_file), *extra]
        s = Service(argv, tmp_path, f"archive{len(services)}", bus.env)
        services.append(s)
        return s.start()
    return start


class Web:
    def __init__(self, service: Service, port: int) -> None:
        self.service = service
        self.url = f"http://127.0.0.1:{port}"

    def get(self, path: str, accept: str = "application/json",
            method: str = "GET") -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(self.url + path, headers={"Accept": accept}, method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def json(self, path: str, status: int = 200) -> Any:
        code, _, body = self.get(path)
        assert code == status, (path, code, body[:500])
        return json.loads(body)


@pytest.fixture
def start_web(archive_dsn: str, tmp_path: Path, services: list[Service]):  # type: ignore[no-untyped-def]
    def start(*extra: str, dsn: str | None = None, config: str | None = None) -> Web:
        port = free_port()
        argv = [sys.executable, "-m", "debpulse.consumers.web.cli", "--dsn", dsn or archive_dsn,
                "--listen", f"127.0.0.1:{port}", *extra]
        if config:
            conf = tmp_path / f"web{len(services)}.toml"
            conf.write_text(config)
            argv += ["--config", str(conf)]
        s = Service(argv, tmp_path, f"web{len(services)}", {})
        services.append(s)
        return Web(s.start(), port)
    return start
