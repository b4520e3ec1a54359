"""Put the post-receive hook into repositories, and take it out again.

The hooks directory is asked from git (`rev-parse --git-path hooks`), so
core.hooksPath is honoured.  A post-receive hook that is already there is
kept beside ours as `post-receive.debpulse-chained` and still runs first
with the same input; its exit status stays the hook's.  Installing twice
changes nothing; uninstalling puts the old hook back.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from debpulse.emitters.errors import DebpulseError

from .gitobjects import REFS_FORMAT
from .refs import END_MARK, REFS_MARK

HOOK = "post-receive"
CHAINED = HOOK + ".debpulse-chained"
MARKER = "# debpulse-git post-receive hook"

TEMPLATE = """#!/bin/sh
{marker}
# Installed by "debpulse-git install", removed by "debpulse-git uninstall".
# Publishes each push on the debpulse bus.  The hook that was here before is
# kept as {chained} and still runs first, with the same input;
# its exit status is this hook's.  Publishing happens in the background, so
# the push never waits for the bus and never fails because of it.  Shell
# builtins where possible: every program started here delays the push.
input=
while IFS= read -r line || [ -n "$line" ]; do
\tinput="$input$line
"
done
status=0
if [ -x "$0.debpulse-chained" ]; then
\tprintf '%s' "$input" | "$0.debpulse-chained" "$@"
\tstatus=$?
fi
pending="${{GIT_DIR:-.}}/debpulse/pending"
tmp="$pending/.push.$$"
saved=
if {{ [ -d "$pending" ] || mkdir -p "$pending" 2>/dev/null; }} &&
\tprintf '%s%s\\n' "$input" '{refs_mark}' 2>/dev/null >"$tmp"; then
\t# The refs of this moment go with the push: the background job may run
\t# after a later push has moved them.  Without the end mark it reads them then.
\tgit for-each-ref --format='{refs_format}' >>"$tmp" 2>/dev/null && echo '{end_mark}' >>"$tmp"
\t# Pushes are taken oldest first by modification time; the name only has to be new.
\tname="$pending/push.$$"
\tn=0
\twhile [ -e "$name" ]; do n=$((n + 1)); name="$pending/push.$$.$n"; done
\tmv "$tmp" "$name" && saved=1
fi
if [ -n "$saved" ]; then
\tlog="$pending/../hook.log"
\t{{ : >>"$log"; }} 2>/dev/null || log=/dev/null  # another member's log in a shared repository
\tsetsid {command} hook --pending "$pending"{args} </dev/null >>"$log" 2>&1 &
else
\techo "debpulse-git: cannot write to $pending: this push is not published" >&2
fi
exit $status
"""


class InstallError(DebpulseError):
    """A repository cannot take the hook (not a repository, a conflict)."""


def hooks_dir(repo: Path) -> Path:
    """The directory git runs this repository's hooks from."""
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--path-format=absolute", "--git-path", "hooks"],
            capture_output=True, text=True, check=False,
        )
    except OSError as exc:
        raise InstallError(f"cannot run git: {exc}") from None
    if out.returncode != 0:
        raise InstallError(f"{repo}: not a git repository")
    return Path(out.stdout.strip())


def _git(repo: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)
    except OSError as exc:
        raise InstallError(f"cannot run git: {exc}") from None
    return out.stdout.strip() if out.returncode == 0 else None


def prepare_state(repo: Path) -> Path:
    """Create <git dir>/debpulse/pending ahead of the first push.  In a
    repository shared by a group (core.sharedRepository), every member's
    push must be able to add to it, so it is group-writable and setgid."""
    git_dir = _git(repo, "rev-parse", "--absolute-git-dir")
    if git_dir is None:
        raise InstallError(f"{repo}: not a git repository")
    state = Path(git_dir) / "debpulse"
    (state / "pending").mkdir(parents=True, exist_ok=True)
    shared = (_git(repo, "config", "--get", "core.sharedRepository") or "").lower()
    mode = {"group": 0o2775, "true": 0o2775, "1": 0o2775,
            "all": 0o2777, "world": 0o2777, "everybody": 0o2777, "2": 0o2777}.get(shared)
    if mode is None and shared.startswith("0"):  # an octal file mode such as 0660
        mode = 0o2777 if int(shared, 8) & 0o006 else 0o2775
    if mode is not None:
        group = os.stat(git_dir).st_gid
        for d in (state, state / "pending"):
            os.chown(d, -1, group)
            d.chmod(mode)
    return state


def default_command() -> list[str]:
    """How the hook starts debpulse-git: the script installed beside this
    interpreter (right in a virtualenv, and no wrapper such as a pyenv shim
    in between), else the one on PATH, else the module."""
    beside = Path(sys.executable).parent / "debpulse-git"
    if os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which("debpulse-git")
    if found:
        return [os.path.abspath(found)]
    return [sys.executable, "-m", "debpulse.adapters.scm.cli"]


def hook_text(command: Sequence[str], args: Sequence[str] = ()) -> str:
    return TEMPLATE.format(
        refs_mark=REFS_MARK,
        end_mark=END_MARK,
        refs_format=REFS_FORMAT,
        marker=MARKER,
        chained=CHAINED,
        command=shlex.join(command),
        args="".join(" " + shlex.quote(a) for a in args),
    )


def is_ours(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return MARKER.encode() in fh.read(4096)
    except (FileNotFoundError, IsADirectoryError):
        return False


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.debpulse-tmp")
    tmp.write_text(text)
    tmp.chmod(0o755)
    os.replace(tmp, path)


def install(repo: Path, text: str) -> str:
    """Install the hook `text` in `repo`; returns what was done
    ("installed", "installed, chaining the existing hook", "updated",
    "unchanged")."""
    hooks = hooks_dir(repo)
    hooks.mkdir(parents=True, exist_ok=True)
    prepare_state(repo)
    hook, chained = hooks / HOOK, hooks / CHAINED
    if is_ours(hook):
        if hook.read_text() == text:
            return "unchanged"
        _write(hook, text)
        return "updated"
    if os.path.lexists(hook):
        if os.path.lexists(chained):
            raise InstallError(f"{hook}: both a hook and {CHAINED} exist; merge them by hand first")
        os.rename(hook, chained)  # a symlink stays a symlink
        _write(hook, text)
        return "installed, chaining the existing hook"
    _write(hook, text)
    return "installed"


def uninstall(repo: Path) -> str:
    hooks = hooks_dir(repo)
    hook, chained = hooks / HOOK, hooks / CHAINED
    if not is_ours(hook):
        return "not installed"
    if os.path.lexists(chained):
        os.replace(chained, hook)
        return "removed, the previous hook restored"
    hook.unlink()
    return "removed"
