"""Rows of the public views -> Events (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from debpulse.adapters.wannabuild.messages import BuildComplete, StateUpdate
from debpulse.adapters.wannabuild.rows import (
    BUILD_COMPLETE,
    STATE_UPDATE,
    BuildResult,
    Transaction,
    identity_digest,
    row_event,
)
from debpulse.emitters.errors import InputError
from debpulse.emitters.messages import message_type

NAIVE = datetime(2024, 12, 2, 14, 0, 0, 123456)
AWARE = NAIVE.replace(tzinfo=UTC)


def tx_row(**over: object) -> tuple[object, ...]:
    row = dict(time=NAIVE, package=b"hello", distribution=b"sid", version=b"2.10-3", action=b"--set-built",
               prevstate=b"Building", state=b"Built", real_user=b"buildd", set_user=b"buildd_amd64-x86-01",
               utc=AWARE)
    row.update(over)
    return tuple(row.values())


def test_transaction_row_becomes_state_update() -> None:
    event = row_event(Transaction, "amd64", tx_row(), "d1g", 0)
    assert event.topic == STATE_UPDATE
    assert dict(event.body) == {
        "architecture": "amd64", "package": "hello", "version": "2.10-3", "suite": "sid",
        "old_state": "Building", "new_state": "Built", "action": "--set-built",
        "user": "buildd_amd64-x86-01", "real_user": "buildd", "time": "2024-12-02T14:00:00.123456Z",
    }
    assert event.key == "wannabuild:amd64:transaction:d1g:0"
    StateUpdate.validate(event.body)
    assert message_type(event.topic) is StateUpdate


def test_new_package_has_no_old_state_and_str_columns_work() -> None:
    row = tx_row(prevstate="(none)", state="Needs-Build", action="--merge-v3: needs-build", package="hello")
    body = row_event(Transaction, "arm64", row, "x", 0).body
    assert body["old_state"] is None and body["new_state"] == "Needs-Build"
    StateUpdate.validate(body)


def test_time_is_converted_to_utc() -> None:
    local = NAIVE.replace(tzinfo=timezone(timedelta(hours=2)))
    body = row_event(Transaction, "amd64", tx_row(utc=local), "x", 0).body
    assert body["time"] == "2024-12-02T12:00:00.123456Z"


@pytest.mark.parametrize("over, reason", [
    ({"package": None}, "package is NULL"),
    ({"state": None}, "state is NULL"),
    ({"distribution": b""}, "distribution is empty"),
    ({"real_user": b"caf\xe9"}, "real_user is not UTF-8"),
    ({"utc": None}, "time is not a timestamp"),
])
def test_bad_transaction_rows_are_input_errors(over: dict[str, object], reason: str) -> None:
    with pytest.raises(InputError) as exc:
        row_event(Transaction, "amd64", tx_row(**over), "x", 0)
    assert exc.value.reason.startswith(reason)


def test_pkg_history_row_becomes_build_complete() -> None:
    row = (NAIVE, b"hello", b"sid", b"2.10-3", b"successful", 151, 123456789, b"buildd_amd64-x86-01", AWARE)
    event = row_event(BuildResult, "amd64", row, "x", 0)
    assert event.topic == BUILD_COMPLETE
    assert event.body["build_time"] == 151 and event.body["disk_space"] == 123456789
    assert event.key == "wannabuild:amd64:build:hello:sid:2.10-3:2024-12-02T14:00:00.123456Z"
    BuildComplete.validate(event.body)
    msg = BuildComplete(event.body)
    assert msg.summary() == "hello 2.10-3 built successfully on amd64 (sid) in 2m31s"
    assert msg.link() == "https://buildd.debian.org/status/package.php?p=hello"
    assert msg.usernames() == ["buildd_amd64-x86-01"]


def test_negative_build_time_is_bad_input() -> None:
    row = (NAIVE, b"hello", b"sid", b"2.10-3", b"failed", -1, None, None, AWARE)
    with pytest.raises(InputError, match="build_time"):
        row_event(BuildResult, "amd64", row, "x", 0)


def test_identity_digest_ignores_bytes_versus_str_but_not_values() -> None:
    a = Transaction.identity(tx_row())
    b = Transaction.identity(tx_row(package="hello", state="Built"))
    c = Transaction.identity(tx_row(time=NAIVE + timedelta(microseconds=1)))
    assert identity_digest(a) == identity_digest(b)
    assert identity_digest(a) != identity_digest(c)
    # NULL is not the empty string
    assert identity_digest((None, "x")) != identity_digest(("", "x"))


@pytest.mark.parametrize("result, took, summary", [
    ("failed", 3725, "hello 2.10-3 failed to build on arm64 (sid) after 1h02m"),
    ("successful", 45, "hello 2.10-3 built successfully on arm64 (sid) in 45s"),
    ("successful", None, "hello 2.10-3 built successfully on arm64 (sid)"),
    ("given-back", 10, "hello 2.10-3 build on arm64 (sid): given-back"),
])
def test_build_summaries(result: str, took: int | None, summary: str) -> None:
    row = (NAIVE, b"hello", b"sid", b"2.10-3", result.encode(), took, None, None, AWARE)
    body = row_event(BuildResult, "arm64", row, "x", 0).body
    assert BuildComplete(body).summary() == summary


def test_state_update_names_the_package_and_the_people() -> None:
    body = row_event(Transaction, "amd64", tx_row(package=b"libc++"), "x", 0).body
    msg = StateUpdate(body)
    assert msg.packages() == ["libc++"]
    assert msg.link() == "https://buildd.debian.org/status/package.php?p=libc%2B%2B"
    assert msg.usernames() == ["buildd", "buildd_amd64-x86-01"]
