"""What the post-receive hook adds to a one-commit `git push`, and how long a
push takes to reach a subscriber, against a real relay on loopback.

    python tests/bench/bench_git.py [--pushes 40]

Pushes alternate between a bare repository without the hook and one with
it (so drift hits both alike); each prints the median push time and the
difference, with the relay up and then killed.  The hook's own work runs
in the background after the push; before the next push the bench waits for
it, so that it does not slow the next one.  Also printed: the median time
from the start of a push to a subscriber holding its git.receive message,
and what the same work costs when run in the push's foreground
(`debpulse-git hook` on stdin).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/: the relay and key fixtures as plain classes

from scm.conftest import Git, wait_drained  # noqa: E402
from testbus import Bus, drop_gpg_key, make_gpg_key  # noqa: E402

from debpulse.adapters.scm.install import default_command, hook_text, install  # noqa: E402


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


class Pusher:
    """A bare repository and a clone that pushes one new commit at a time."""

    def __init__(self, git: Git, base: Path, name: str, hooked: bool) -> None:
        self.git = git
        self.bare = git.bare(base / f"{name}.git")
        if hooked:
            install(self.bare, hook_text(default_command()))
        self.work = git.clone(self.bare, base / name)
        self.n = 0
        self.push()  # the first push creates master

    def push(self) -> tuple[float, str]:
        self.n += 1
        rev = self.git.commit(self.work, f"entry {self.n}", {"changelog": f"entry {self.n}\n"})
        started = time.perf_counter()
        subprocess.run(["git", "push", "-q", "origin", "master"], cwd=self.work, env=self.git.env, check=True,
                       capture_output=True)
        return time.perf_counter() - started, rev


def compare(plain: Pusher, hooked: Pusher, pushes: int, sub=None) -> tuple[list[float], list[float], list[float]]:  # type: ignore[no-untyped-def]
    without, with_hook, latency = [], [], []
    for _ in range(pushes):
        without.append(plain.push()[0])
        started = time.perf_counter()
        took, rev = hooked.push()
        with_hook.append(took)
        if sub is not None:
            while True:
                got = sub.wait(1, timeout=10)
                if not got:
                    raise SystemExit("no message within 10 s")
                if got[0].topic.endswith("git.receive") and got[0].body["commit"]["rev"] == rev:
                    latency.append(time.perf_counter() - started)
                    break
        wait_drained(hooked.bare)
        time.sleep(0.05)  # let the background job exit before the next pair
    return without, with_hook, latency


def hook_alone(git: Git, pusher: Pusher, rounds: int) -> float:
    """The installed hook script by itself, as git runs it after a push: what
    the push waits for (save the push and the refs, start the job)."""
    rev = git(pusher.work, "rev-parse", "HEAD")
    parent = git(pusher.work, "rev-parse", "HEAD~1")
    stdin = f"{parent} {rev} refs/heads/master\n".encode()
    env = {**git.env, "GIT_DIR": "."}
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        subprocess.run(["hooks/post-receive"], cwd=pusher.bare, input=stdin, env=env, check=True)
        samples.append(time.perf_counter() - t0)
        wait_drained(pusher.bare)
        time.sleep(0.05)
    return statistics.median(samples)


def report(label: str, without: list[float], with_hook: list[float]) -> None:
    a, b = statistics.median(without), statistics.median(with_hook)
    print(f"{label}: push without hook {ms(a)}, with hook {ms(b)}, added {ms(b - a)} (ratio {b / a:.2f}), "
          f"{len(without)} pushes each")


def foreground(git: Git, pusher: Pusher, rounds: int) -> float:
    """The hook's work (Python start, git plumbing, hand-over) run in the
    foreground for the last pushed commit, as `debpulse-git hook` on stdin."""
    rev = git(pusher.work, "rev-parse", "HEAD")
    parent = git(pusher.work, "rev-parse", "HEAD~1")
    stdin = f"{parent} {rev} refs/heads/master\n".encode()
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        subprocess.run([*default_command(), "hook", "--git-dir", str(pusher.bare)], input=stdin, env=git.env,
                       check=True, capture_output=True)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pushes", type=int, default=40)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-git-"))
    key = make_gpg_key()
    bus = Bus(base / "bus", key)
    try:
        bus.start()
        git = Git(base / "home", bus.env)
        plain = Pusher(git, base, "plain", hooked=False)
        hooked = Pusher(git, base, "hooked", hooked=True)
        sub = bus.subscriber()
        sub.wait(2, timeout=10)  # the hooked repository's first push
        without, with_hook, latency = compare(plain, hooked, args.pushes, sub)
        report("relay up", without, with_hook)
        print(f"push to subscriber (git.receive in hand): median {ms(statistics.median(latency))}, "
              f"max {ms(max(latency))}")
        print(f"the installed hook script alone (what the push waits for): {ms(hook_alone(git, hooked, 20))}")
        print(f"the same work in the push's foreground (debpulse-git hook on stdin, relay up): "
              f"{ms(foreground(git, hooked, 10))} per push")
        bus.stop()
        without, with_hook, _ = compare(plain, hooked, args.pushes)
        report("relay down", without, with_hook)
        print(f"the same work in the push's foreground, relay down (to the spool): "
              f"{ms(foreground(git, hooked, 10))} per push")
    finally:
        bus.close()
        drop_gpg_key(key)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    os.environ.pop("RUST_BACKTRACE", None)
    main()
