"""A real PostgreSQL 15 with wanna-build's published schema (session scope),
emptied before each test, and a source running in a thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from debpulse.adapters.wannabuild.poller import Settings, WannaBuildSource
from debpulse.emitters.errors import EmitError
from debpulse.emitters.event import Event

from .wannabuild_cluster import WannaBuild, WannaBuildCluster


@pytest.fixture(scope="session")
def wb_cluster(shared_fixtures: Path) -> Iterator[WannaBuildCluster]:
    if not Path("/usr/share/postgresql/15/extension/debversion.control").exists():
        pytest.skip("postgresql-15-debversion is not installed")
    cluster = WannaBuildCluster(shared_fixtures)
    try:
        cluster.start()
        cluster.load_schema()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def wb(wb_cluster: WannaBuildCluster) -> Iterator[WannaBuildCluster]:
    """The cluster, running and emptied."""
    if wb_cluster.proc is None:
        wb_cluster.start()
    wb_cluster.reset()
    yield wb_cluster


@pytest.fixture
def writer(wb: WannaBuildCluster) -> Iterator[WannaBuild]:
    """wanna-build itself, writing as a member of wb_all."""
    conn = psycopg.connect(wb.dsn(user="wb-buildd"))
    yield WannaBuild(conn)
    conn.close()


class Recorder:
    """What a source handed over, in order; can refuse like an emitter whose relay is down."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.refuse = False
        self.lock = threading.Lock()

    def emit(self, event: Event) -> None:
        if self.refuse:
            raise EmitError("refusing on purpose")
        from debpulse.emitters.messages import message_type

        message_type(event.topic).validate(event.body)
        with self.lock:
            self.events.append(event)

    def close(self) -> None:
        pass

    def wait(self, n: int, timeout: float = 10.0) -> list[Event]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.events) >= n:
                    return list(self.events)
            time.sleep(0.01)
        with self.lock:
            return list(self.events)


class RunningSource:
    def __init__(self, source: WannaBuildSource) -> None:
        self.source = source
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.source.run()
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    def ready(self, timeout: float = 10.0) -> RunningSource:
        """Wait for the first poll (every stream has its mark): with start
        "now", only rows of transactions begun after it are published."""
        deadline = time.monotonic() + timeout
        while len(self.source.marks) < len(self.source.streams):
            assert time.monotonic() < deadline and self.thread.is_alive(), "source did not poll"
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.source.stop.set()
        self.thread.join(15)
        assert not self.thread.is_alive(), "source did not stop"
        if self.error:
            raise self.error


@pytest.fixture
def make_source(wb: WannaBuildCluster, tmp_path: Path) -> Iterator[Callable[..., RunningSource]]:
    started: list[RunningSource] = []

    def make(emitter: object, *, run: bool = True, **overrides: object) -> RunningSource | WannaBuildSource:
        options: dict[str, object] = dict(
            dsn=wb.dsn(), architectures=["amd64", "arm64"], interval=0.2, lookback=timedelta(seconds=60),
            start="beginning", connect_timeout=2,
        )
        options.update(overrides)
        source = WannaBuildSource(Settings(**options), emitter, tmp_path / "state")  # type: ignore[arg-type]
        if not run:
            return source
        running = RunningSource(source)
        started.append(running)
        return running

    yield make  # type: ignore[misc]
    for running in started:
        running.source.stop.set()
        running.thread.join(15)
    errors = [r.error for r in started if r.error]
    if errors:
        raise errors[0]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()
