"""Rows the fuzzer (tests/fuzz) found to make the wanna-build row parser
fail in a way other than InputError, or give events the Emitter refuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from debpulse.adapters.wannabuild.rows import BuildResult, Transaction, identity_digest, row_event
from debpulse.emitters.errors import InputError

WHEN = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def test_a_boolean_build_time_is_not_a_count() -> None:
    # was: an event whose build_time False the Emitter refuses (bool is an int in Python)
    row = (WHEN, "hello", "sid", "2.10-3", "successful", False, 1048576, "x86-ubc-01", WHEN)
    with pytest.raises(InputError, match="build_time is False, not a count"):
        row_event(BuildResult, "amd64", row, identity_digest(BuildResult.identity(row)), 0)


@pytest.mark.parametrize("when", [datetime.min.replace(tzinfo=timezone(timedelta(hours=14))),
                                  datetime.max.replace(tzinfo=timezone(timedelta(hours=-5)))])
def test_a_time_out_of_range_in_utc(when: datetime) -> None:
    # was: OverflowError from astimezone()
    row = (when, "hello", "sid", "2.10-3", None, "(none)", "Needs-Build", "dak", None, when)
    with pytest.raises(InputError, match="is out of range in UTC"):
        row_event(Transaction, "amd64", row, identity_digest(Transaction.identity(row)), 0)
