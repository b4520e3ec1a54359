"""debpulse-trigger end to end: a real relay, real signed messages, the
trigger as a real process running real commands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from .conftest import RECORDER, records, wait_for


def hostile(canary: Path) -> list[str]:
    c = str(canary)
    return [f"$(touch {c}1)", f"`touch {c}2`", f"'; touch {c}3; '", f'"; touch {c}4 #', f"x\ntouch {c}5",
            f"a && touch {c}6 || touch {c}6; touch {c}6 | cat > {c}6", f"${{IFS}}touch${{IFS}}{c}7", f"\\'\\\"{c}8"]


def test_hostile_messages_run_nothing_extra(bus, trigger, publish, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    canary = tmp_path / "pwned-"
    # A shell-script importer too: quoting its variables, it runs nothing extra either.
    script = tmp_path / "import.sh"
    script.write_text('#!/bin/sh\nset -eu\nprintf "%s|%s|%s|%s\\n" "$DEBPULSE_PACKAGE" "$DEBPULSE_VERSION" '
                      '"$DEBPULSE_SUITE" "$DEBPULSE_MSG_ID" >> "$1/env.txt"\ncat >> "$1/stdin.jsonl"\n')
    script.chmod(0o755)
    shell_out = tmp_path / "shell"
    shell_out.mkdir()
    recorder = trigger("hostile", [sys.executable, RECORDER, str(out)], "--topic", "dak.package.note")
    shell = trigger("hostile-sh", [str(script), str(shell_out)], "--topic", "dak.#")
    recorder.wait_joined(publish)
    shell.wait_joined(publish)
    payloads = hostile(canary)
    bodies = [{"source": p, "package": p, "version": p, "suite": p, "title": p, "from": p, "nested": {p: [p]}}
              for p in payloads]
    publish("dak.package.note", *bodies)
    wait_for(lambda: len(records(out)) == len(bodies), what="the recorder runs")
    wait_for(lambda: (shell_out / "stdin.jsonl").exists()
             and len((shell_out / "stdin.jsonl").read_text().splitlines()) == len(bodies), what="the script runs")
    got = records(out)
    assert [json.loads(r["stdin"])["msg"] for r in got] == bodies
    for r, p in zip(got, payloads, strict=True):
        envelope = json.loads(r["stdin"])
        assert r["argv"] == [str(out)]
        assert r["env"] == {"DEBPULSE_TOPIC": "org.debian.dev.dak.package.note", "DEBPULSE_MSG_ID": envelope["msg_id"],
                            "DEBPULSE_PACKAGE": p, "DEBPULSE_VERSION": p, "DEBPULSE_SUITE": p, "DEBPULSE_COUNT": "1",
                            "DEBPULSE_TOPICS": "org.debian.dev.dak.package.note",
                            "DEBPULSE_PACKAGES": "" if any(c.isspace() for c in p) else p,
                            "DEBPULSE_SUITES": "" if any(c.isspace() for c in p) else p}
    lines = [json.loads(line) for line in (shell_out / "stdin.jsonl").read_text().splitlines()]
    assert [e["msg"] for e in lines] == bodies
    env_text = (shell_out / "env.txt").read_text()
    for p, e in zip(payloads, lines, strict=True):
        assert f"{p}|{p}|{p}|{e['msg_id']}\n" in env_text
    time.sleep(0.3)
    assert sorted(tmp_path.glob("pwned-*")) == []
    assert len(records(out)) == len(bodies)  # one run per message, nothing extra
    assert recorder.stop() == 0 and shell.stop() == 0


@pytest.fixture(scope="module")
def real_accept(shared_fixtures: Path) -> dict:
    """The body dak's adapter makes of a real ACCEPTED mail."""
    from debpulse.adapters.dak.mail import parse_mail

    mail = shared_fixtures / "dak/mails/04-ACCEPTED-maintainer_xfsprogs_6.12.0-1_source_2024-pgpmime.eml"
    [event] = parse_mail(mail.read_bytes()).events
    return event.body


def test_debounce_runs_once_per_window_with_the_whole_batch(bus, trigger, publish, tmp_path: Path,
                                                            real_accept: dict) -> None:
    out = tmp_path / "out"
    out.mkdir()
    t = trigger("burst", [sys.executable, RECORDER, str(out)], "--topic", "dak.package.accept", "--debounce", "1")
    t.wait_joined(publish)
    publish("dak.package.accept", *[{**real_accept, "source": f"pkg{i}"} for i in range(100)])
    wait_for(lambda: len(records(out)) == 1, what="the first window")
    publish("dak.package.accept", *[{**real_accept, "source": f"late{i}", "suites": ["experimental"]}
                                    for i in range(10)])
    wait_for(lambda: len(records(out)) == 2, what="the second window")
    first, second = records(out)
    lines = [json.loads(line) for line in first["stdin"].splitlines()]
    assert [e["msg"]["source"] for e in lines] == [f"pkg{i}" for i in range(100)]
    assert [e["seq_id"] for e in lines] == sorted(e["seq_id"] for e in lines)
    assert first["env"]["DEBPULSE_COUNT"] == "100" and first["env"]["DEBPULSE_SUITE"] == "unstable"
    assert first["env"]["DEBPULSE_VERSION"] == "6.12.0-1" and "DEBPULSE_PACKAGE" not in first["env"]
    assert first["env"]["DEBPULSE_PACKAGES"].split() == [f"pkg{i}" for i in range(100)]
    assert first["env"]["DEBPULSE_MSG_ID"] == lines[-1]["msg_id"]
    assert second["env"]["DEBPULSE_COUNT"] == "10" and second["env"]["DEBPULSE_SUITES"] == "experimental"
    assert [json.loads(line)["msg"]["source"] for line in second["stdin"].splitlines()] == [
        f"late{i}" for i in range(10)]
    assert t.stop() == 0


def test_failing_message_goes_to_dead_letters_and_the_rest_goes_on(bus, trigger, publish, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    command = [sys.executable, RECORDER, str(out), "--fail-package", "broken"]
    options = ("--topic", "dak.package.note", "--attempts", "2", "--backoff", "0.05")
    t = trigger("dlq", command, *options)
    t.wait_joined(publish)
    publish("dak.package.note", {"source": "good1"}, {"source": "broken"}, {"source": "good2"})
    wait_for(lambda: len(records(out)) == 2 and len(t.dead_letters) == 1, what="two runs and a dead letter")
    [dead] = t.dead_letters
    assert json.loads((dead / "messages.jsonl").read_text())["msg"] == {"source": "broken"}
    assert (dead / "output").read_text().count("cannot import broken") == 2
    assert (dead / "reason").read_text().strip().endswith("exit 1 on each of 2 attempts")
    assert [json.loads(r["stdin"])["msg"]["source"] for r in records(out)] == ["good1", "good2"]
    assert t.stop() == 0
    # The dead-lettered message was handled: a restart does not run it again.
    t.start()
    publish("dak.package.note", {"source": "good3"})
    wait_for(lambda: len(records(out)) == 3, what="the run after the restart")
    assert len(t.dead_letters) == 1
    assert "gave up on" in t.log.read_text()


@pytest.mark.parametrize("concurrency", [1, 3])
def test_stopped_and_restarted_with_resume_handles_each_message_once(
        bus, trigger, publish, tmp_path: Path, concurrency: int) -> None:
    out = tmp_path / "out"
    out.mkdir()
    command = [sys.executable, RECORDER, str(out), "--sleep", "0.05"]
    options = ("--topic", "dak.package.note", "--concurrency", str(concurrency))
    t = trigger(f"stream{concurrency}", command, *options)
    t.wait_joined(publish)
    total = 16
    publish("dak.package.note", *[{"source": f"pkg{i}", "n": i} for i in range(total)])
    wait_for(lambda: len(records(out)) >= 4, what="a few runs")
    assert t.stop(signal.SIGTERM) == 0
    before = len(records(out))
    assert before < total, "the stream ended before the stop: the test proves nothing"
    publish("dak.package.note", *[{"source": f"pkg{i}", "n": i} for i in range(total, total + 5)])  # while down
    t.start()
    wait_for(lambda: len(records(out)) >= total + 5, what="the rest of the stream", timeout=30)
    time.sleep(0.5)
    ns = [json.loads(r["stdin"])["msg"]["n"] for r in records(out)]  # in order of completion
    assert set(ns) == set(range(total + 5)), f"lost: {sorted(set(range(total + 5)) - set(ns))}"
    if concurrency == 1:
        assert ns == list(range(total + 5)), f"repeated or out of order: {ns}"
    else:  # ran side by side, never more than asked
        # A command may finish while an earlier message's is abandoned at the
        # stop: acknowledgements follow the message order, so it is not acked
        # and runs once more after the restart (at least once, as the manual
        # says). Only such a message may repeat, once.
        counts = Counter(ns)
        first_run = ns[:before]
        abandoned = min(set(range(total)) - set(first_run))
        repeated = sorted(n for n, c in counts.items() if c > 1)
        assert all(counts[n] == 2 and n in first_run and n > abandoned for n in repeated), (ns, before)
        spans = [(r["started"], r["ended"]) for r in records(out)]
        most = max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)
        assert 2 <= most <= concurrency
    assert "abandoning running commands" in t.log.read_text()
    assert t.stop() == 0


def test_killed_hard_and_restarted_loses_nothing(bus, trigger, publish, tmp_path: Path) -> None:
    """SIGKILL gives the trigger no chance to ack what already ran: those
    few run again (importers re-import), but nothing is lost."""
    out = tmp_path / "out"
    out.mkdir()
    t = trigger("hard", [sys.executable, RECORDER, str(out), "--sleep", "0.05"], "--topic", "dak.package.note")
    t.wait_joined(publish)
    publish("dak.package.note", *[{"n": i} for i in range(16)])
    wait_for(lambda: len(records(out)) >= 5, what="a few runs")
    t.stop(signal.SIGKILL)
    time.sleep(0.3)  # the orphaned run finishes
    t.start()
    wait_for(lambda: {json.loads(r["stdin"])["msg"]["n"] for r in records(out)} == set(range(16)),
             what="every message", timeout=30)
    ns = [json.loads(r["stdin"])["msg"]["n"] for r in records(out)]
    assert len(ns) - 16 <= 2, f"more than the run in flight repeated: {ns}"


def test_usage_and_configuration_errors_are_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    from debpulse.consumers.trigger.cli import main

    monkeypatch.setenv("DEBPULSE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("DEBPULSE_CONFIG", raising=False)
    cases = [
        (("--topic", "dak"), "give the command to run after --"),
        (("--", "true"), "--topic"),
        (("--topic", "dak", "--", str(tmp_path / "absent")), "not an executable file"),
        (("--topic", "dak", "--", "no-such-importer-here"), "not found in PATH"),
        (("--topic", "dak", "--concurrency", "0", "--", "true"), "--concurrency must be at least 1"),
        (("--topic", "dak", "--attempts", "0", "--", "true"), "--attempts must be at least 1"),
        (("--topic", "dak", "--debounce", "-1", "--", "true"), "--debounce must not be negative"),
        (("--topic", "dak package", "--", "true"), "topic pattern"),
        (("--topic", "dak", "--resume", "../x", "--", "true"), "--resume name"),
    ]
    for args, message in cases:
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's own errors
            code = exc.code
        err = capsys.readouterr().err
        assert code == 2, (args, err)
        assert message in err and len(err.strip().splitlines()) == 1, (args, err)
    bad_config = tmp_path / "debpulse.toml"
    bad_config.write_text("[trigger]\nconcurency = 4\n")
    assert main(["--config", str(bad_config), "--topic", "dak", "--", "true"]) == 2
    err = capsys.readouterr().err
    assert str(bad_config) in err and "concurency" in err


def test_real_process_errors_and_help(tmp_path: Path) -> None:
    env = {**os.environ, "DEBPULSE_STATE_DIR": str(tmp_path / "state"), "DEBPULSE_RUNTIME_DIR": str(tmp_path / "run")}
    cmd = [sys.executable, "-m", "debpulse.consumers.trigger.cli"]
    r = subprocess.run([*cmd, "--topic", "dak", "--", "no-such-importer-here"], capture_output=True, text=True,
                       env=env, timeout=30)
    assert r.returncode == 2 and r.stderr.strip().endswith("not found in PATH") and "Traceback" not in r.stderr
    r = subprocess.run([*cmd, "--help"], capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 0 and "examples:" in r.stdout and "-- /usr/local/lib/debpulse/udd-import-sources" in r.stdout
