"""How fast the fuzz command runs, per parser.

    python tests/bench/bench_fuzz.py [--n 1000] [--rounds 3] [--seed 1] [TARGET ...]

For each target of tests/fuzz/targets.py: inputs per second of the fuzz
command (tests/fuzz/run.py: draw an input, run the parser, check the
result), and as the reference, from the same run, inputs per second of
drawing them alone (the run's time less the time inside the target), with
the target's share.  One process, one target after the other; the best of
a few rounds, as the machine may be busy with other work.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: `fuzz` and `testbus`

from fuzz.run import fuzz  # noqa: E402
from fuzz.targets import TARGETS, samples_present, select  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1000, help="inputs per target and round (default 1000)")
    p.add_argument("--rounds", type=int, default=3, help="rounds per target, the fastest kept (default 3)")
    p.add_argument("--seed", type=int, default=1, help="hypothesis seed: the same inputs in every run (default 1)")
    p.add_argument("targets", nargs="*", metavar="TARGET", help="default all: " + ", ".join(t.name for t in TARGETS))
    args = p.parse_args()
    if not samples_present():
        print("the shared sample data is missing (set DEBPULSE_FIXTURES)", file=sys.stderr)
        return 2
    print(f"{args.n:,} inputs per target, seed {args.seed}")
    print(f"{'target':<20} {'fuzz inputs/s':>14} {'drawing only':>13} {'in target':>13} {'failures':>9}")
    total_inputs = total_seconds = 0.0
    for target in select(args.targets):
        run = max((fuzz(target, args.n, args.seed) for _ in range(args.rounds)), key=lambda t: t.rate)
        drawing = run.inputs / (run.seconds - run.in_target)
        print(f"{target.name:<20} {run.rate:>14,.0f} {drawing:>13,.0f} {run.in_target / run.seconds:>12.0%} "
              f"{run.failures:>9,}", flush=True)
        total_inputs += run.inputs
        total_seconds += run.seconds
    print(f"{'all':<20} {total_inputs / total_seconds:>14,.0f}   (100,000 inputs per target: about "
          f"{100_000 * len(select(args.targets)) / (total_inputs / total_seconds) / 60:.0f} min on one core)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
