"""Real git for the scm tests: bare repositories, clones, commits, pushes."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

IDENTITY = {
    "GIT_AUTHOR_NAME": "Jane Maintainer",
    "GIT_AUTHOR_EMAIL": "jane@example.org",
    "GIT_COMMITTER_NAME": "Jane Maintainer",
    "GIT_COMMITTER_EMAIL": "jane@example.org",
}


class Git:
    """Runs git with a clean, fixed configuration (no user or system files)."""

    def __init__(self, home: Path, extra_env: Mapping[str, str] | None = None) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "HOME": str(home),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": str(home / "gitconfig"),
            **IDENTITY,
            # Never the system's /var/lib/debpulse or /run/debpulse from a test.
            "DEBPULSE_STATE_DIR": str(home / "state"),
            "DEBPULSE_RUNTIME_DIR": str(home / "run"),
            **(extra_env or {}),
        }
        for var in ("GIT_DIR", "GIT_WORK_TREE", "GL_USERNAME", "GL_USER"):
            self.env.pop(var, None)
        (home / "gitconfig").write_text("[init]\n\tdefaultBranch = master\n[advice]\n\tdetachedHead = false\n")

    def __call__(self, cwd: Path, *args: str, input: bytes | None = None,
                 env: Mapping[str, str] | None = None) -> str:
        done = subprocess.run(["git", *args], cwd=cwd, input=input, capture_output=True,
                              env={**self.env, **(env or {})}, check=False)
        if done.returncode != 0:
            raise AssertionError(f"git {' '.join(args)}: {done.stderr.decode(errors='replace')}")
        return done.stdout.decode(errors="replace").strip()

    def bare(self, path: Path) -> Path:
        self(path.parent, "init", "-q", "--bare", path.name)
        return path

    def clone(self, bare: Path, path: Path) -> Path:
        self(bare.parent, "clone", "-q", str(bare), str(path))
        return path

    def commit(self, work: Path, message: str, files: Mapping[str, str] | None = None) -> str:
        for name, text in (files or {f"file-{time.time_ns()}": message}).items():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            (work / name).write_text(text)
            self(work, "add", name)
        self(work, "commit", "-q", "-m", message)
        return self(work, "rev-parse", "HEAD")


@pytest.fixture
def git(tmp_path: Path) -> Git:
    return Git(tmp_path / "home")


@pytest.fixture
def bus_git(tmp_path: Path, bus) -> Git:  # type: ignore[no-untyped-def]
    """git whose pushes (and so the hook's background job) talk to the test relay."""
    return Git(tmp_path / "home", bus.env)


@pytest.fixture
def hello_bundle(shared_fixtures: Path) -> Path:
    bundle = shared_fixtures / "git" / "hello-packaging.bundle"
    if not bundle.is_file():
        pytest.skip(f"{bundle} not found")
    return bundle


def wait_drained(bare: Path, timeout: float = 20.0) -> None:
    """Until the installed hook's background job has handed over every push."""
    pending = bare / "debpulse" / "pending"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pending.is_dir() or not any(pending.iterdir()):
            return
        time.sleep(0.02)
    log = bare / "debpulse" / "hook.log"
    raise AssertionError(f"pushes still pending: {os.listdir(pending)}; "
                         f"log: {log.read_text() if log.exists() else '(none)'}")
