"""debpulse-wanna-build on the buildd database host, started as its unit
starts it with the example configuration, against a real PostgreSQL with
wanna-build's schema: READY=1, then a transition written as wanna-build
writes it is published (it is the publisher there) and counted, with its lag."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from testbus import GpgKey, free_port
from wannabuild.wannabuild_cluster import WannaBuild, WannaBuildCluster

from .roles import Notify, Role, drop_role, install_role, service, wait_metric
from .test_services import unit_argv

LOCAL = "tcp://127.0.0.1"


@pytest.fixture(scope="module")
def cluster(shared_fixtures: Path) -> Iterator[WannaBuildCluster]:
    if not Path("/usr/share/postgresql/15/extension/debversion.control").exists():
        pytest.skip("postgresql-15-debversion is not installed")
    c = WannaBuildCluster(shared_fixtures)
    try:
        c.start()
        c.load_schema()
        yield c
    finally:
        c.destroy()


@pytest.fixture
def buildd_db(gpg_key: GpgKey) -> Iterator[Role]:
    r = install_role("buildd-db", gpg_key)
    # The direct publisher binds [bus] publish and replay: local ports here.
    text = r.config.read_text()
    for public in ("tcp://*:9940", "tcp://*:9941"):
        text = text.replace(f'"{public}"', f'"{LOCAL}:{free_port()}"')
    r.write_config(text)
    yield r
    drop_role(r)


def test_wanna_build_unit_ready_publishes_and_counts(cluster: WannaBuildCluster, buildd_db: Role,
                                                    tmp_path: Path) -> None:
    cluster.reset()
    port = free_port()
    notify = Notify(tmp_path)
    # The example follows Debian's architectures; the test database has amd64 and arm64.
    argv = [*unit_argv("debpulse-wanna-build.service"), "--config", str(buildd_db.config),
            "--dsn", cluster.dsn(), "--arch", "amd64", "--arch", "arm64", "--interval", "0.2",
            "--metrics-port", str(port)]
    try:
        with service(argv, buildd_db, "wanna-build", notify):
            assert any("STATUS=following 4 stream(s)" in m for m in notify.messages)
            # start = "now" is the server clock of the first poll: write after it.
            wait_metric(port, "debpulse_wannabuild_polls_total", 1)
            with psycopg.connect(cluster.dsn(user="wb-buildd")) as conn:
                WannaBuild(conn).change("amd64", "hello", "2.10-3", "--take", "Building",
                                        builder="buildd_amd64-x86-01")
            topic = "org.debian.production.wannabuild.package.state.update"
            found = wait_metric(port, f'debpulse_emitted_total{{topic="{topic}"}}', 1)
            assert 'debpulse_source_lag_seconds{adapter="wannabuild",source="amd64.transactions"}' in found
            assert buildd_db.path("/var/lib/debpulse/wannabuild/outbox.sqlite").exists()  # it publishes itself
    finally:
        notify.close()
