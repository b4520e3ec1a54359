"""debpulse-wanna-build as a process, through the real relay, to a verifying subscriber."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
from testbus import start_ready

from .test_source import install_trigger
from .wannabuild_cluster import WannaBuild, WannaBuildCluster

STATE = "org.debian.dev.wannabuild.package.state.update"
BUILD = "org.debian.dev.wannabuild.package.build.complete"


class Adapter:
    def __init__(self, wb: WannaBuildCluster, bus, log: Path, *extra: str) -> None:  # noqa: ANN001
        self.args = ["debpulse-wanna-build", "-v", "--dsn", wb.dsn(), "--arch", "amd64", "--arch", "arm64",
                     "--start", "beginning", *extra]
        self.env = {**os.environ, **bus.env}
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it; ready (READY=1) once it has caught up and LISTENs."""
        self.proc = start_ready(self.args, self.env, self.log)

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(15)
        self.proc = None
        return code


@pytest.fixture
def adapter(wb, bus, tmp_path):  # noqa: ANN001
    made: list[Adapter] = []

    def make(*extra: str) -> Adapter:
        a = Adapter(wb, bus, tmp_path / "adapter.log", *extra)
        a.start()
        made.append(a)
        return a

    yield make
    for a in made:
        if a.proc is not None:
            a.proc.kill()
            a.proc.wait()


def test_state_changes_reach_a_subscriber_signed(wb, writer: WannaBuild, bus, adapter) -> None:
    sub = bus.subscriber("org.debian.dev.wannabuild.")
    adapter("--interval", "0.2")
    writer.change("amd64", "hello", "2.10-3", "--take", "Building", builder="buildd_amd64-x86-01")
    writer.change("amd64", "hello", "2.10-3", "--set-built", "Built", builder="buildd_amd64-x86-01")
    writer.build_result("amd64", "hello", "2.10-3", "successful", 151, 1 << 30, "buildd_amd64-x86-01")
    got = sub.wait(3)
    assert [r.topic for r in got] == [STATE, STATE, BUILD]
    assert all(r.verdict.ok for r in got), [r.verdict.reason for r in got]
    assert [r.summary for r in got] == [
        "hello 2.10-3 on amd64 (sid): Building (new) by buildd_amd64-x86-01",
        "hello 2.10-3 on amd64 (sid): Building → Built by buildd_amd64-x86-01",
        "hello 2.10-3 built successfully on amd64 (sid) in 2m31s",
    ]
    assert got[1].body["old_state"] == "Building" and got[1].body["new_state"] == "Built"
    assert got[2].body["disk_space"] == 1 << 30


def test_restarted_adapter_with_trigger_resumes_without_repeats(wb, writer: WannaBuild, bus, adapter,
                                                               tmp_path) -> None:
    install_trigger(wb)
    sub = bus.subscriber("org.debian.dev.wannabuild.")
    # Polling every minute: within this test only the trigger's NOTIFY wakes it.
    first = adapter("--interval", "60")
    for i in range(3):
        writer.change("arm64", f"before{i}", "1.0-1", "--take", "Building")
    assert [r.body["package"] for r in sub.wait(3)] == ["before0", "before1", "before2"]
    assert first.stop() in (0, 130)

    for i in range(3):  # written while the adapter is down
        writer.change("amd64", f"while{i}", "1.0-1", "--take", "Building")
    adapter("--interval", "60")
    got = sub.wait(3)
    assert sorted(r.body["package"] for r in got) == ["while0", "while1", "while2"]
    writer.change("amd64", "after", "1.0-1", "--set-built", "Built")
    got = sub.wait(2, timeout=3)
    assert [r.body["package"] for r in got] == ["after"]  # and nothing repeated
    marks = tmp_path / "bus" / "state" / "wannabuild" / "marks"
    assert sorted(p.name for p in marks.glob("*.json")) == [
        "amd64.pkg_history.json", "amd64.transactions.json", "arm64.pkg_history.json", "arm64.transactions.json"]
