"""debpulse-demo end to end: the real command, with its real relay,
adapters, git, PostgreSQL and tail, as a newcomer runs it."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from debpulse.emitters.demo.wannabuild_db import postgres_bin

DEMO = [sys.executable, "-m", "debpulse.emitters.commands.demo"]
TOPICS = ("git.receive", "dak.package.accept", "wannabuild.package.state.update", "debbugs.bug.report")


@pytest.fixture
def tmpdir_env() -> Iterator[tuple[Path, dict[str, str]]]:
    """A short TMPDIR of its own: the demo's directory is made inside it, so
    what it leaves behind (files, processes) can be found."""
    top = Path(tempfile.mkdtemp(prefix="dpd-", dir="/tmp"))
    top.chmod(0o711)  # PostgreSQL runs as postgres when the tests run as root
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEBPULSE_")}
    env["TMPDIR"] = str(top)
    yield top, env
    shutil.rmtree(top, ignore_errors=True)


def _processes_mentioning(text: str) -> list[str]:
    """Processes whose command line or environment names `text`."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        for what in ("cmdline", "environ"):
            try:
                data = Path(f"/proc/{pid}/{what}").read_bytes()
            except OSError:
                continue
            if text.encode() in data:
                shown = data.replace(b"\0", b" ").decode(errors="replace")[:200]
                found.append(f"{pid}: {shown}")
                break
    return found


def _wanted_topics(out: str) -> tuple[str, ...]:
    bindir, why = postgres_bin()
    if bindir is None:
        assert f"[wanna-build] skipped: {why}" in out
        return tuple(t for t in TOPICS if not t.startswith("wannabuild"))
    return TOPICS


def test_demo_shows_every_adapters_message_verified_and_leaves_nothing(tmpdir_env) -> None:
    top, env = tmpdir_env
    done = subprocess.run(DEMO, env=env, capture_output=True, text=True, timeout=60)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr

    # Verified by the key the relay made for itself, and by nothing else.
    fingerprint = re.search(r"signing with a key it made: ([0-9A-F]{40})", out)
    assert fingerprint, out
    for topic in _wanted_topics(out):
        line = re.search(rf"^\d\d:\d\d:\d\d \[ok envelope (\w+)\] {re.escape(topic)}: (.+)$", out, re.M)
        assert line, f"no verified {topic} in:\n{out}"
        assert fingerprint[1].endswith(line[1])
    assert "Łukasz Uploader uploaded hello 2.10-3 to unstable" in out
    assert "Jane Maintainer committed" in out
    assert "REJECTED" not in out and "!!" not in out
    assert re.search(r"^all [34] adapters' messages arrived; \d+ messages, every one verified", out, re.M), out

    # Everything it started is stopped, and its directory is gone.
    assert _processes_mentioning(str(top)) == []
    assert list(top.iterdir()) == []


def test_keep_leaves_the_directory_with_the_logs(tmpdir_env) -> None:
    top, env = tmpdir_env
    done = subprocess.run([*DEMO, "--keep"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    kept = re.search(r"^kept (\S+) ", done.stdout, re.M)
    assert kept, done.stdout
    base = Path(kept[1])
    assert base.parent == top
    logs = {p.name for p in (base / "logs").iterdir()}
    assert {"debpulse-relay.log", "debpulse-dak.log", "debpulse-debbugs.log", "debpulse-git.log"} <= logs
    # The relay's outbox and the adapters' Maildirs stay for a look.
    assert list((base / "mail" / "dak" / "cur").iterdir())
    assert _processes_mentioning(str(top)) == []


def test_ctrl_c_stops_everything(tmpdir_env) -> None:
    top, env = tmpdir_env
    proc = subprocess.Popen(DEMO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            # In the middle: the relay, the tail and maybe PostgreSQL are up.
            if line.startswith("[wanna-build]") or line.startswith("[debbugs]"):
                break
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, rest + err
    assert "interrupted: stopping" in rest
    assert "Traceback" not in err
    deadline = time.monotonic() + 1
    while _processes_mentioning(str(top)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_mentioning(str(top)) == []
    assert list(top.iterdir()) == []


def test_bad_usage_is_one_line_and_exit_2() -> None:
    done = subprocess.run([*DEMO, "--no-such-flag"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("debpulse-demo: "), done.stderr
