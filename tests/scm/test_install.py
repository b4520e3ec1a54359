"""Installing the hook: chaining, idempotence, core.hooksPath, uninstall."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from debpulse.adapters.scm.install import CHAINED, HOOK, InstallError, hooks_dir, install, is_ours, uninstall

from .conftest import Git

CLI = [sys.executable, "-m", "debpulse.adapters.scm.cli"]

OLD_HOOK = """#!/bin/sh
# the site's own hook: record what it was given
cat >> "$(dirname "$0")/../old-hook-ran"
exit 3
"""


def debpulse_git(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, check=False)


def test_install_twice_changes_nothing_and_uninstall_restores(git: Git, tmp_path: Path) -> None:
    bare = git.bare(tmp_path / "hello.git")
    old = bare / "hooks" / HOOK
    old.write_text(OLD_HOOK)
    old.chmod(0o755)

    first = debpulse_git("install", str(bare))
    assert first.returncode == 0, first.stderr
    assert "chaining the existing hook" in first.stdout
    assert is_ours(old) and (bare / "hooks" / CHAINED).read_text() == OLD_HOOK
    installed = {p.name: p.read_bytes() for p in (bare / "hooks").iterdir()}

    second = debpulse_git("install", str(bare))
    assert second.returncode == 0 and "unchanged" in second.stdout
    assert {p.name: p.read_bytes() for p in (bare / "hooks").iterdir()} == installed

    gone = debpulse_git("uninstall", str(bare))
    assert gone.returncode == 0 and "restored" in gone.stdout
    assert old.read_text() == OLD_HOOK and not (bare / "hooks" / CHAINED).exists()
    assert debpulse_git("uninstall", str(bare)).stdout.strip().endswith("not installed")


def test_existing_hook_still_runs_with_the_push(git: Git, tmp_path: Path) -> None:
    bare = git.bare(tmp_path / "hello.git")
    old = bare / "hooks" / HOOK
    old.write_text(OLD_HOOK)
    old.chmod(0o755)
    assert debpulse_git("install", str(bare)).returncode == 0
    work = git.clone(bare, tmp_path / "work")
    rev = git.commit(work, "Initial packaging")
    git(work, "push", "-q", "origin", "master")
    assert (bare / "old-hook-ran").read_text() == f"{'0' * 40} {rev} refs/heads/master\n"


def test_hooks_path_is_honoured_and_changed_flags_update(git: Git, tmp_path: Path) -> None:
    bare = git.bare(tmp_path / "hello.git")
    shared = tmp_path / "shared-hooks"
    git(bare, "config", "core.hooksPath", str(shared))
    assert hooks_dir(bare) == shared
    assert install(bare, "#!/bin/sh\n# debpulse-git post-receive hook\n") == "installed"
    assert is_ours(shared / HOOK) and not (bare / "hooks" / HOOK).exists()
    assert install(bare, "#!/bin/sh\n# debpulse-git post-receive hook\n# v2\n") == "updated"
    assert not (shared / CHAINED).exists()
    assert uninstall(bare) == "removed" and not (shared / HOOK).exists()


def test_symlinked_hook_is_chained_as_a_symlink(git: Git, tmp_path: Path) -> None:
    bare = git.bare(tmp_path / "hello.git")
    common = tmp_path / "common-post-receive"
    common.write_text(OLD_HOOK)
    (bare / "hooks" / HOOK).symlink_to(common)
    install(bare, "#!/bin/sh\n# debpulse-git post-receive hook\n")
    assert (bare / "hooks" / CHAINED).is_symlink()
    uninstall(bare)
    assert (bare / "hooks" / HOOK).is_symlink() and common.read_text() == OLD_HOOK


def test_conflict_and_not_a_repository(git: Git, tmp_path: Path) -> None:
    bare = git.bare(tmp_path / "hello.git")
    for name in (HOOK, CHAINED):
        (bare / "hooks" / name).write_text("#!/bin/sh\n")
    with pytest.raises(InstallError):
        install(bare, "#!/bin/sh\n# debpulse-git post-receive hook\n")
    bad = debpulse_git("install", str(tmp_path / "nowhere"))
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "not a git repository" in bad.stderr


def test_flags_are_baked_into_the_hook_and_shared_repositories_get_a_group_directory(
        git: Git, tmp_path: Path) -> None:
    bare = tmp_path / "shared.git"
    git(tmp_path, "init", "-q", "--bare", "--shared=group", str(bare))
    done = debpulse_git("install", "--web-url", "https://salsa.debian.org/{repo}", "--max-commits", "5",
                        "--repo-root", str(tmp_path), "--relay", "ipc:///run/debpulse/relay.sock", str(bare))
    assert done.returncode == 0, done.stderr
    text = (bare / "hooks" / HOOK).read_text()
    assert "--web-url 'https://salsa.debian.org/{repo}' --max-commits 5" in text
    assert f"--repo-root {tmp_path}" in text and "--relay ipc:///run/debpulse/relay.sock" in text
    pending = bare / "debpulse" / "pending"
    assert pending.is_dir() and pending.stat().st_mode & 0o7777 == 0o2775
