"""debpulse-demo: how long the README's first command takes, and where.

    python tests/bench/bench_demo.py [--runs 5]

Runs the real `debpulse-demo` --runs times and stamps each line of its
output as it arrives: the relay and tail ready, each adapter's step
started, each adapter's message shown verified, the summary, and the
process exit (everything stopped and removed).  Prints the median and
the range of each, in seconds from the start of the command.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time

DEMO = [sys.executable, "-m", "debpulse.emitters.commands.demo"]
MARKS = [
    ("relay up", re.compile(r"^\[relay\] ")),
    ("tail subscribed", re.compile(r"^\[tail\] ")),
    ("git step", re.compile(r"^\[git\] ")),
    ("  git.receive verified", re.compile(r"^\S+ \[ok \w+ \w+\] git\.receive: ")),
    ("dak step", re.compile(r"^\[dak\] ")),
    ("  dak.package.accept verified", re.compile(r"^\S+ \[ok \w+ \w+\] dak\.package\.accept: ")),
    ("wanna-build step", re.compile(r"^\[wanna-build\] ")),
    ("  wannabuild...state.update verified", re.compile(r"^\S+ \[ok \w+ \w+\] wannabuild\.package\.state\.update: ")),
    ("debbugs step", re.compile(r"^\[debbugs\] ")),
    ("  debbugs.bug.report verified", re.compile(r"^\S+ \[ok \w+ \w+\] debbugs\.bug\.report: ")),
    ("summary", re.compile(r"^--- after ")),
]


def one_run() -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEBPULSE_")}
    start = time.monotonic()
    proc = subprocess.Popen(DEMO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    stamps: dict[str, float] = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        now = time.monotonic() - start
        for name, pattern in MARKS:
            if name not in stamps and pattern.search(line):
                stamps[name] = now
    code = proc.wait()
    stamps["exit (all stopped)"] = time.monotonic() - start
    if code != 0:
        raise SystemExit(f"debpulse-demo exited with {code}")
    return stamps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    runs = [one_run() for _ in range(args.runs)]
    print(f"debpulse-demo, {args.runs} runs: seconds from the start of the command (median, min-max)")
    for name in [n for n, _ in MARKS] + ["exit (all stopped)"]:
        values = [r[name] for r in runs if name in r]
        if values:
            print(f"  {name:<38} {statistics.median(values):6.2f}  ({min(values):.2f}-{max(values):.2f})")
        else:
            print(f"  {name:<38}      -  (not seen)")


if __name__ == "__main__":
    main()
