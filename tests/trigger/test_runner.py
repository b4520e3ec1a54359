"""The runner with real commands: stdin and environment, retries with
backoff, dead letters with the command's output, timeouts, stopping."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from debpulse.consumers.trigger.runner import DeadLetters, RetryPolicy, Runner, for_messages

RECORDER = str(Path(__file__).with_name("recorder.py"))


def records(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]


def alive(pid: int) -> bool:
    """Running (a killed orphan may stay a zombie until something reaps it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def accept(source: str = "hello", msg_id: str = "2026-1") -> dict:
    return {"topic": "org.debian.dev.dak.package.accept", "msg_id": msg_id, "seq_id": 1, "publisher": "p",
            "msg": {"source": source, "version": "2.10-3", "suites": ["unstable"]}}


@pytest.fixture
def out(tmp_path: Path) -> Path:
    d = tmp_path / "out"
    d.mkdir()
    return d


def runner(tmp_path: Path, **retry: float) -> Runner:
    policy = RetryPolicy(**{"backoff": 0.05, "attempts": 3, **retry})  # type: ignore[arg-type]
    return Runner(policy, DeadLetters(tmp_path / "dead-letter"), base_env={**os.environ, "DEBPULSE_PACKAGE": "stale"})


def test_recorder_records_exactly_the_variables_the_trigger_sets() -> None:
    import runpy

    from debpulse.consumers.trigger.runner import ENV_NAMES

    assert runpy.run_path(RECORDER, run_name="recorder")["ENV_NAMES"] == ENV_NAMES


def test_command_gets_stdin_and_environment(tmp_path: Path, out: Path) -> None:
    inv = for_messages([sys.executable, RECORDER, str(out)], [accept()])
    outcome = runner(tmp_path).run(inv)
    assert outcome.ok and outcome.handled and len(outcome.attempts) == 1
    [rec] = records(out)
    assert rec["argv"] == [str(out)]
    assert json.loads(rec["stdin"]) == accept()
    assert rec["env"] == inv.env and rec["env"]["DEBPULSE_PACKAGE"] == "hello"  # not the inherited "stale"


def test_fails_twice_then_succeeds_with_backoff(tmp_path: Path, out: Path) -> None:
    inv = for_messages([sys.executable, RECORDER, str(out), "--fail-times", "2"], [accept()])
    t0 = time.monotonic()
    outcome = runner(tmp_path, backoff=0.2).run(inv)
    elapsed = time.monotonic() - t0
    assert outcome.ok and [a.status for a in outcome.attempts] == ["exit 3", "exit 3", "exit 0"]
    assert b"failing on purpose (2)" in outcome.attempts[1].output
    assert outcome.dead_letter is None and not (tmp_path / "dead-letter").exists()
    assert len(records(out)) == 1
    assert elapsed >= 0.2 + 0.4  # waited 0.2 s, then 0.4 s


def test_always_failing_command_ends_in_the_dead_letter_directory(tmp_path: Path, out: Path) -> None:
    inv = for_messages([sys.executable, RECORDER, str(out), "--say", "importing", "--fail-package", "hello"],
                       [accept(msg_id="2026-0f/../x")])
    outcome = runner(tmp_path).run(inv)
    assert not outcome.ok and outcome.handled and len(outcome.attempts) == 3
    dead = outcome.dead_letter
    assert dead is not None and dead.parent == tmp_path / "dead-letter"
    assert dead.name.endswith("2026-0f_.._x") and "/" not in dead.name[len(str(dead.parent)):]
    assert (dead / "messages.jsonl").read_bytes() == inv.stdin
    output = (dead / "output").read_text()
    assert output.count("cannot import hello") == 3 and output.count("importing on stderr") == 3
    assert output.count("== attempt ") == 3 and "exit 1 after" in output
    assert (dead / "reason").read_text().strip().endswith("exit 1 on each of 3 attempts")
    meta = json.loads((dead / "invocation.json").read_text())
    assert meta["argv"] == list(inv.argv) and meta["env"] == inv.env
    assert [a["status"] for a in meta["attempts"]] == ["exit 1"] * 3
    assert not list(dead.parent.glob(".tmp-*"))
    assert records(out) == []


def test_missing_command_and_signals_are_failures_with_a_reason(tmp_path: Path) -> None:
    gone = runner(tmp_path, attempts=1).run(for_messages([str(tmp_path / "deleted-importer")], [accept()]))
    assert gone.attempts[0].status.startswith("cannot run: No such file")
    assert gone.dead_letter is not None
    script = tmp_path / "segv.sh"
    script.write_text("#!/bin/sh\nkill -SEGV $$\n")
    script.chmod(0o755)
    killed = runner(tmp_path, attempts=1).run(for_messages([str(script)], [accept()]))
    assert killed.attempts[0].status == "killed by SIGSEGV"


def test_timeout_ends_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    script = tmp_path / "slow.sh"
    script.write_text(f"#!/bin/sh\nsleep 30 &\necho $! > {pidfile}\nwait\n")
    script.chmod(0o755)
    t0 = time.monotonic()
    outcome = runner(tmp_path, attempts=1, timeout=0.5, stop_timeout=1).run(for_messages([str(script)], [accept()]))
    assert time.monotonic() - t0 < 5
    assert outcome.attempts[0].status == "timed out after 0.5 s" and outcome.dead_letter is not None
    grandchild = int(pidfile.read_text())
    time.sleep(0.1)
    assert not alive(grandchild)


def test_stop_abandons_the_running_command_without_dead_letter(tmp_path: Path, out: Path) -> None:
    r = runner(tmp_path, stop_timeout=2)
    inv = for_messages([sys.executable, RECORDER, str(out), "--sleep", "30"], [accept()])
    result: list = []
    worker = threading.Thread(target=lambda: result.append(r.run(inv)))
    worker.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    r.stop()
    worker.join(10)
    assert time.monotonic() - t0 < 3
    [outcome] = result
    assert outcome.interrupted and not outcome.handled and outcome.dead_letter is None
    assert records(out) == []  # the recorder writes only at its end: it was stopped before
    assert r.run(inv).interrupted  # nothing starts after a stop


def test_stop_during_backoff_returns_at_once(tmp_path: Path, out: Path) -> None:
    r = runner(tmp_path, backoff=60)
    inv = for_messages([sys.executable, RECORDER, str(out), "--fail-times", "5"], [accept()])
    result: list = []
    worker = threading.Thread(target=lambda: result.append(r.run(inv)))
    worker.start()
    deadline = time.monotonic() + 10
    while not (out / "failures").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    r.stop()
    worker.join(5)
    assert result and result[0].interrupted and result[0].dead_letter is None


def test_large_batch_on_stdin_to_a_command_that_does_not_read_it(tmp_path: Path) -> None:
    envs = [accept(f"pkg{i}", f"2026-{i}") for i in range(2000)]  # ~300 KB, more than a pipe holds
    outcome = runner(tmp_path, attempts=1).run(for_messages(["true"], envs))
    assert outcome.ok


def test_stdin_is_whole_before_the_command_starts(tmp_path: Path) -> None:
    """The messages are in a file when the command starts: a trigger killed
    right after starting it cannot leave the command an empty or cut stdin."""
    probe = tmp_path / "probe.py"
    probe.write_text("import os, stat, sys\n"
                     "st = os.fstat(0)\n"
                     "print(f'file {st.st_size}' if stat.S_ISREG(st.st_mode) else 'pipe')\n")
    inv = for_messages([sys.executable, str(probe)], [accept(msg_id=f"2026-{n}") for n in range(500)])
    outcome = runner(tmp_path).run(inv)
    assert outcome.ok, outcome.attempts
    assert f"file {len(inv.stdin)}".encode() in outcome.attempts[-1].output
