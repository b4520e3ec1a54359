"""The hook's source side without a relay: bad input kept aside, a bus that
cannot take the push keeps it pending, and the hook never fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .conftest import Git

CLI = [sys.executable, "-m", "debpulse.adapters.scm.cli"]


def run_hook(git: Git, bare: Path, stdin: bytes, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*CLI, "hook", "--git-dir", str(bare), *args], input=stdin, capture_output=True,
                          env=git.env, check=False, timeout=60)


def spooled(git: Git) -> list[dict]:  # type: ignore[type-arg]
    spool = Path(git.env["DEBPULSE_STATE_DIR"]) / "spool"
    return [json.loads(p.read_text()) for p in sorted(spool.glob("*.json"))]


def repo_with_commit(git: Git, tmp_path: Path) -> tuple[Path, str]:
    bare = git.bare(tmp_path / "hello.git")
    work = git.clone(bare, tmp_path / "work")
    rev = git.commit(work, "Initial packaging")
    git(work, "push", "-q", "origin", "master")  # no hook installed: nothing published yet
    return bare, rev


def test_bad_lines_are_kept_aside_and_good_ones_published(git: Git, tmp_path: Path) -> None:
    bare, rev = repo_with_commit(git, tmp_path)
    stdin = f"garbage line\n{'0' * 40} {rev} refs/heads/master\n".encode()
    done = run_hook(git, bare, stdin)
    assert done.returncode == 0, done.stderr
    assert [item["topic"] for item in spooled(git)] == ["git.ref.create", "git.receive"]
    [reason] = (bare / "debpulse" / "rejected").glob("*.reason")
    assert "not '<old> <new> <ref>'" in reason.read_text()
    assert reason.with_suffix("").read_bytes() == b"garbage line\n"


def test_bus_unavailable_keeps_the_push_pending_then_drains(git: Git, tmp_path: Path) -> None:
    bare, rev = repo_with_commit(git, tmp_path)
    spool = Path(git.env["DEBPULSE_STATE_DIR"]) / "spool"
    spool.parent.mkdir(parents=True)
    spool.write_text("not a directory: nothing can be spooled")
    stdin = f"{'0' * 40} {rev} refs/heads/master\n".encode()
    done = run_hook(git, bare, stdin)
    assert done.returncode == 0
    assert done.stderr.decode().count("\n") == 1 and "kept in" in done.stderr.decode()
    [pending] = (bare / "debpulse" / "pending").iterdir()
    assert pending.read_bytes() == stdin

    spool.unlink()
    drained = run_hook(git, bare, b"", "--pending", str(bare / "debpulse" / "pending"))
    assert drained.returncode == 0, drained.stderr
    assert not any((bare / "debpulse" / "pending").iterdir())
    assert [item["body"].get("commit", {}).get("rev") for item in spooled(git)] == [None, rev]


def test_hook_never_fails(git: Git, tmp_path: Path) -> None:
    missing = run_hook(git, tmp_path / "no-such.git", f"{'0' * 40} {'1' * 40} refs/heads/master\n".encode())
    assert missing.returncode == 0
    assert missing.stderr.decode().startswith("debpulse-git: push not published:")
    assert missing.stderr.decode().count("\n") == 1
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text("[git]\nmax_comits = 3\n")
    configured = run_hook(git, tmp_path, b"", "--config", str(bad_config))
    assert configured.returncode == 0 and "unknown key 'max_comits'" in configured.stderr.decode()


def test_pending_pushes_are_drained_in_order_once(git: Git, tmp_path: Path) -> None:
    bare = git.bare(tmp_path / "hello.git")
    work = git.clone(bare, tmp_path / "work")
    pending = bare / "debpulse" / "pending"
    pending.mkdir(parents=True)
    old = "0" * 40
    for i in range(3):
        rev = git.commit(work, f"change {i}")
        git(work, "push", "-q", "origin", "master")
        (pending / f"100{i}.000000000.1").write_text(f"{old} {rev} refs/heads/master\n")
        old = rev
    # A push another job is working on is left to it.
    import fcntl
    with open(pending / "1002.000000000.1") as busy:
        fcntl.flock(busy, fcntl.LOCK_EX)
        assert run_hook(git, bare, b"", "--pending", str(pending)).returncode == 0
        assert [p.name for p in pending.iterdir()] == ["1002.000000000.1"]
    assert run_hook(git, bare, b"", "--pending", str(pending)).returncode == 0
    summaries = [item["body"]["commit"]["summary"] for item in spooled(git) if item["topic"] == "git.receive"]
    assert summaries == ["change 0", "change 1", "change 2"]
    assert not os.listdir(pending)


def test_a_late_job_uses_the_refs_of_its_push(git: Git, tmp_path: Path) -> None:
    """The background job of a push may run after the next push: it must
    judge "new" against the refs of its own push, which the hook saved."""
    from debpulse.adapters.scm.gitobjects import REFS_FORMAT
    from debpulse.adapters.scm.refs import END_MARK, REFS_MARK

    bare = git.bare(tmp_path / "hello.git")
    work = git.clone(bare, tmp_path / "work")
    pending = bare / "debpulse" / "pending"
    pending.mkdir(parents=True)

    def saved_push(name: str, line: str) -> None:
        refs = git(bare, "for-each-ref", f"--format={REFS_FORMAT}")
        (pending / name).write_text(f"{line}\n{REFS_MARK}\n{refs}\n{END_MARK}\n")

    base = git.commit(work, "base")
    git(work, "push", "-q", "origin", "master")
    saved_push("1.0.1", f"{'0' * 40} {base} refs/heads/master")
    git(work, "checkout", "-q", "-b", "feature")
    feature = git.commit(work, "feature")
    git(work, "push", "-q", "origin", "feature")
    saved_push("2.0.1", f"{'0' * 40} {feature} refs/heads/feature")
    # Both jobs run only now, when feature (which contains base) exists.
    assert run_hook(git, bare, b"", "--pending", str(pending)).returncode == 0
    described = [(i["body"]["commit"]["branch"], i["body"]["commit"]["rev"]) for i in spooled(git)
                 if i["topic"] == "git.receive"]
    assert described == [("master", base), ("feature", feature)]
