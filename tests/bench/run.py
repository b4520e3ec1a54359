"""Run every benchmark, one after the other: `deploy/setup bench`.

    python tests/bench/run.py [NAME ...]     # e.g. bus dak; default: all

Each benchmark is a script of its own (tests/bench/bench_<name>.py) that
starts the real components it measures and prints its figures, with the
reference measured in the same run where there is one (raw pyzmq, fedmsg
1.1.7, a push without the hook, a raw pika loop).  They are not tests:
nothing here passes or fails on a number.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    wanted = sys.argv[1:]
    scripts = sorted(HERE.glob("bench_*.py"))
    if wanted:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in wanted]
        if not scripts:
            print(f"no benchmark named {' '.join(wanted)}; have: "
                  + " ".join(s.stem.removeprefix("bench_") for s in sorted(HERE.glob("bench_*.py"))), file=sys.stderr)
            return 2
    failed = []
    for script in scripts:
        print(f"\n=== {script.stem.removeprefix('bench_')} ({script.name})", flush=True)
        t0 = time.monotonic()
        code = subprocess.call([sys.executable, str(script)])
        print(f"=== {script.stem.removeprefix('bench_')}: {time.monotonic() - t0:.0f} s"
              + ("" if code == 0 else f", exit {code}"), flush=True)
        if code:
            failed.append(script.name)
    if failed:
        print("failed to run: " + ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
