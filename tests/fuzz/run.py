"""Fuzz every parser at length and print what happened: `deploy/setup fuzz`.

    python tests/fuzz/run.py [--examples 100000] [--target NAME ...] [--seed N]
    python tests/fuzz/run.py --target NAME --reproduce FILE

Runs each target of tests/fuzz/targets.py on --examples inputs drawn from
the same strategies as the suite (random seeds unless --seed), and prints
per target: inputs run, results, declared errors, other failures, inputs
per second and the slowest input.  The first input that fails a target is
saved to --failures (raw bytes for byte inputs, a Python literal
otherwise) and shown with the command that replays it.  Exit status 1 when
a target without a known crash failed.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import multiprocessing
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/: `fuzz` and `testbus`, as under pytest

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402

from fuzz.targets import BY_NAME, TARGETS, Outcome, Target, classify, samples_present, select, short  # noqa: E402

CHUNK = 10_000  # examples per hypothesis run: bounds the memory hypothesis keeps per run


@dataclass
class Tally:
    """What happened to one target's inputs (plain data: it crosses processes)."""

    name: str
    known_crash: str | None = None
    inputs: int = 0
    results: int = 0
    declared: int = 0
    failures: int = 0
    seconds: float = 0.0          # wall time, drawing the inputs included
    in_target: float = 0.0        # time inside the target (the parser and the check of its result)
    slowest: float = 0.0
    slowest_input: Any = None
    first_failure: Any = None
    first_trace: str = ""
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.inputs / self.seconds if self.seconds else 0.0

    def add(self, value: Any, outcome: Outcome) -> None:
        self.inputs += 1
        self.in_target += outcome.seconds
        if outcome.seconds > self.slowest:
            self.slowest, self.slowest_input = outcome.seconds, value
        if outcome.kind == "result":
            self.results += 1
        elif outcome.kind == "declared":
            self.declared += 1
        else:
            self.failures += 1
            assert outcome.error is not None
            kind = type(outcome.error).__name__
            self.errors[kind] = self.errors.get(kind, 0) + 1
            if self.first_failure is None:
                self.first_failure = value
                self.first_trace = "".join(traceback.format_exception(outcome.error))


def fuzz(target: Target, examples: int, start_seed: int, *, call: bool = True) -> Tally:
    """Run `examples` inputs through `target`; with call=False only draw
    them (the harness' own cost, the benchmark's reference)."""
    tally = Tally(target.name, target.known_crash)
    strategy = target.inputs()
    done = 0
    run = 0
    t0 = time.perf_counter()
    for value in target.explicit if call else ():
        tally.add(value, classify(target, value))
    while done < examples:
        n = min(CHUNK, examples - done)
        before = tally.inputs

        @seed(start_seed + run)
        @settings(max_examples=n, database=None, deadline=None, derandomize=False, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck), print_blob=False)
        @given(strategy)
        def one(value: Any) -> None:
            if call:
                tally.add(value, classify(target, value))
            else:
                tally.inputs += 1

        one()
        run += 1
        done += n
        if tally.inputs == before:  # hypothesis found nothing new to try
            break
    tally.seconds = time.perf_counter() - t0
    return tally


def _fuzz_one(job: tuple[str, int, int]) -> Tally:
    name, examples, start_seed = job
    return fuzz(BY_NAME[name], examples, start_seed)


def fuzz_all(targets: Sequence[Target], examples: int, start_seed: int, jobs: int) -> Iterator[Tally]:
    """Each target in a process of its own, `jobs` at a time, in the given order."""
    work = [(t.name, examples, start_seed) for t in targets]
    if jobs <= 1:
        yield from map(_fuzz_one, work)
        return
    with multiprocessing.get_context("fork").Pool(jobs, maxtasksperchild=1) as pool:
        yield from pool.imap(_fuzz_one, work)


def save(directory: Path, name: str, value: Any) -> Path:
    """The input in a file of its own: raw bytes, or a Python literal."""
    directory.mkdir(parents=True, exist_ok=True)
    if isinstance(value, bytes):
        data, suffix = value, "bin"
    else:
        data, suffix = repr(value).encode("utf-8", "surrogatepass"), "repr"
    path = directory / f"{name}-{hashlib.sha256(data).hexdigest()[:12]}.{suffix}"
    path.write_bytes(data)
    return path


def load(path: Path) -> Any:
    data = path.read_bytes()
    return data if path.suffix == ".bin" else ast.literal_eval(data.decode("utf-8", "surrogatepass"))


def reproduce(target: Target, path: Path) -> int:
    value = load(path)
    outcome = classify(target, value)
    print(f"{target.name} on {path} ({len(value) if hasattr(value, '__len__') else '?'} long): {outcome.kind}"
          f" in {outcome.seconds * 1000:.1f} ms")
    if outcome.error is not None:
        print("".join(traceback.format_exception(outcome.error)).rstrip())
    return 1 if outcome.kind == "failure" else 0


def table(tallies: Sequence[Tally]) -> str:
    rows = [("target", "inputs", "results", "declared", "failures", "inputs/s", "in target", "slowest")]
    for t in tallies:
        rows.append((t.name, f"{t.inputs:,}", f"{t.results:,}", f"{t.declared:,}", f"{t.failures:,}",
                     f"{t.rate:,.0f}", f"{100 * t.in_target / t.seconds:.0f}%" if t.seconds else "-",
                     f"{t.slowest * 1000:,.0f} ms"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tests/fuzz/run.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--examples", type=int, default=100_000, metavar="N", help="inputs per target (default 100000)")
    p.add_argument("--target", action="append", default=[], metavar="NAME",
                   help="only this target (repeatable); default all: " + ", ".join(t.name for t in TARGETS))
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, metavar="N",
                   help="targets fuzzed at the same time, each in its own process (default: one per CPU)")
    p.add_argument("--seed", type=int, help="the first hypothesis seed (default: random); the same seed draws "
                   "the same inputs")
    p.add_argument("--failures", type=Path, default=Path(tempfile.gettempdir()) / "debpulse-fuzz", metavar="DIR",
                   help="where failing and slow inputs are saved (default: debpulse-fuzz in the temporary "
                   "directory)")
    p.add_argument("--slow", type=float, default=1.0, metavar="SECONDS",
                   help="save an input that took longer than this (default 1)")
    p.add_argument("--reproduce", type=Path, metavar="FILE", help="run one saved input through --target and show "
                   "what happens")
    args = p.parse_args(argv)
    try:
        targets = select(args.target)
    except KeyError as exc:
        p.error(exc.args[0])
    if not samples_present():
        print("the shared sample data is missing (set DEBPULSE_FIXTURES)", file=sys.stderr)
        return 2
    if args.reproduce:
        if len(targets) != 1:
            p.error("--reproduce needs exactly one --target")
        return reproduce(targets[0], args.reproduce)
    start = args.seed if args.seed is not None else int.from_bytes(hashlib.sha256(str(time.time_ns()).encode())
                                                                    .digest()[:4], "big")
    print(f"fuzzing {len(targets)} target(s), {args.examples:,} inputs each, seed {start}", flush=True)
    tallies = []
    for tally in fuzz_all(targets, args.examples, start, args.jobs):
        tallies.append(tally)
        print(f"  {tally.name}: {tally.inputs:,} inputs, {tally.failures:,} failures, "
              f"{tally.rate:,.0f}/s", flush=True)
    print()
    print(table(tallies))
    unexpected = False
    for t in tallies:
        if t.slowest >= args.slow:
            path = save(args.failures, f"{t.name}-slow", t.slowest_input)
            print(f"\n{t.name}: slowest input took {t.slowest:.1f} s, saved to {path}")
        if not t.failures:
            continue
        path = save(args.failures, t.name, t.first_failure)
        kinds = ", ".join(f"{k} {n:,}" for k, n in sorted(t.errors.items(), key=lambda kv: -kv[1]))
        known = f" (known: {t.known_crash})" if t.known_crash else ""
        unexpected |= not t.known_crash
        print(f"\n{t.name}: {t.failures:,} failures ({kinds}){known}")
        print(f"  first failing input: {short(t.first_failure)}")
        print(f"  saved to {path}; replay it with")
        print(f"    python tests/fuzz/run.py --target {t.name} --reproduce {path}")
        print("  " + t.first_trace.rstrip().replace("\n", "\n  "))
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
