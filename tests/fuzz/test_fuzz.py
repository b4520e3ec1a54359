"""Every parser, fuzzed: it returns a result of its declared type or raises
its declared error with a one-line reason, never anything else.

A few thousand inputs per target (tests/fuzz/targets.py), derandomized so
that a run is reproducible, with no deadline (a busy machine must not make
a parser look slow).  `DEBPULSE_FUZZ_PROFILE=fuzz-explore` draws random
inputs instead, and more of them; tests/fuzz/run.py runs as many as asked
and prints the counts.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings

from .targets import TARGETS, Target, classify, samples_present, short

_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
          HealthCheck.large_base_example]
settings.register_profile("fuzz-suite", max_examples=2000, derandomize=True, database=None, deadline=None,
                          suppress_health_check=_QUIET, phases=[Phase.explicit, Phase.generate, Phase.shrink],
                          print_blob=False)
settings.register_profile("fuzz-explore", parent=settings.get_profile("fuzz-suite"), max_examples=20_000,
                          derandomize=False)
PROFILE = settings.get_profile(os.environ.get("DEBPULSE_FUZZ_PROFILE", "fuzz-suite"))


def _param(target: Target) -> Any:
    marks = [pytest.mark.xfail(strict=False, reason=target.known_crash)] if target.known_crash else []
    return pytest.param(target, id=target.name, marks=marks)


@pytest.mark.parametrize("target", [_param(t) for t in TARGETS])
def test_parser_gives_a_result_or_its_declared_error(target: Target) -> None:
    if not samples_present():
        pytest.skip("shared sample data not found (set DEBPULSE_FIXTURES)")

    @settings(PROFILE)
    @given(target.inputs())
    def holds(value: Any) -> None:
        outcome = classify(target, value)
        if outcome.kind == "failure":
            assert outcome.error is not None
            raise outcome.error

    for value in target.explicit:
        holds = example(value)(holds)
    holds()


@pytest.mark.parametrize("target", [pytest.param(t, id=t.name) for t in TARGETS])
def test_the_real_samples_give_results(target: Target) -> None:
    """The samples the mutations start from parse: a target whose inputs
    never get past the first check would fuzz nothing."""
    if not samples_present():
        pytest.skip("shared sample data not found (set DEBPULSE_FIXTURES)")
    samples = list(target.samples())
    assert samples
    for value in samples:
        outcome = classify(target, value)
        assert outcome.kind == "result", f"{short(value)}: {outcome.error!r}"
