"""A real command for the trigger tests: records what it was given.

Usage: recorder.py OUTDIR [--fail-times N] [--fail-package NAME] [--sleep S] [--say TEXT]

Writes OUTDIR/<ns>-<pid>.json with its argv, stdin and the DEBPULSE_* variables
the trigger sets,
atomically and only at the very end, so a run stopped half-way leaves nothing.
"""

import json
import os
import signal
import sys
import time
from pathlib import Path

# The variables the trigger sets (runner.ENV_NAMES, which test_runner checks
# this against): written out so that each run starts without importing debpulse.
ENV_NAMES = (
    "DEBPULSE_TOPIC", "DEBPULSE_MSG_ID", "DEBPULSE_PACKAGE", "DEBPULSE_VERSION", "DEBPULSE_SUITE",
    "DEBPULSE_COUNT", "DEBPULSE_TOPICS", "DEBPULSE_PACKAGES", "DEBPULSE_SUITES",
)


def main() -> int:
    # Like a transactional importer: stopped before its commit it leaves
    # nothing; once committed it finishes and exits 0.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(143))
    out = Path(sys.argv[1])
    args = sys.argv[2:]
    opts = {args[i]: args[i + 1] for i in range(0, len(args) - 1, 2)}
    stdin = sys.stdin.buffer.read()
    # The variables the trigger sets, not whatever else of the caller's
    # environment passes through (DEBPULSE_FIXTURES, say).
    env = {k: v for k, v in os.environ.items() if k in ENV_NAMES}
    started = time.time()
    if "--say" in opts:
        print(opts["--say"], flush=True)
        print(opts["--say"] + " on stderr", file=sys.stderr, flush=True)
    if "--fail-times" in opts:
        counter = out / "failures"
        n = int(counter.read_text()) if counter.exists() else 0
        if n < int(opts["--fail-times"]):
            counter.write_text(str(n + 1))
            print(f"failing on purpose ({n + 1})", file=sys.stderr)
            return 3
    if opts.get("--fail-package") and env.get("DEBPULSE_PACKAGE") == opts["--fail-package"]:
        print(f"cannot import {env['DEBPULSE_PACKAGE']}", file=sys.stderr)
        return 1
    time.sleep(float(opts.get("--sleep", 0)))
    record = {"argv": sys.argv[1:], "stdin": stdin.decode("utf-8"), "env": env, "pid": os.getpid(),
              "started": started, "ended": time.time()}
    tmp = out / f".{os.getpid()}.tmp"
    tmp.write_text(json.dumps(record))
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    os.rename(tmp, out / f"{time.time_ns()}-{os.getpid()}.json")
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    return 0


if __name__ == "__main__":
    sys.exit(main())
