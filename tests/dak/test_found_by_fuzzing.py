"""Inputs the fuzzer (tests/fuzz) found that made dak's parsers fail in a
way other than InputError, or return events the Emitter refuses; each is
the smallest such input, and now gives InputError or a good result."""

from __future__ import annotations

from pathlib import Path

import pytest

from debpulse.adapters.dak import (
    events,
    messages,  # noqa: F401  (registers the types)
)
from debpulse.adapters.dak.changes import parse_changes
from debpulse.adapters.dak.mail import parse_mail
from debpulse.adapters.dak.removals import parse_stanza
from debpulse.emitters.errors import InputError
from debpulse.emitters.event import Event
from debpulse.emitters.messages import message_type

CHANGES = (b"Source: hello\nVersion: 1.0-1\nDistribution: unstable\nArchitecture: source\n"
           b"Maintainer: Jane <jane@example.org>\nFiles:\n 0123456789abcdef0123456789abcdef 12 utils optional "
           b"hello_1.0-1.dsc\n")
STANZA = b"Date: Fri, 27 Nov 2026 10:00:00 +0000\nSuite: unstable\nSources:\n hello_1.0-1\n"


def _valid(event: Event) -> None:
    message_type(event.topic).validate(event.body)


@pytest.mark.parametrize("header", [b"Debian: \xc3\xa9\n", b"X-Debian: \xff\n"])
def test_a_header_with_8bit_bytes_is_read_as_text(header: bytes) -> None:
    # was: AttributeError / TypeError on the email.header.Header compat32 returns for them
    assert parse_mail(header + b"Subject: x\n\nbody").ignored == "not from dak"


def test_an_8bit_x_debian_header_still_marks_a_dak_mail() -> None:
    assert parse_mail(b"X-Debian: \xff DAK\nSubject: x\n\nbody").ignored == "dak mail of no interest: 'x'"


def test_an_encoded_word_whose_charset_holds_a_nul() -> None:
    # was: ValueError ("embedded null character") from the codec lookup
    result = parse_mail(b"X-DAK: dak process-upload\nSubject: =?x\x00y?q?hello?=\n\nbody")
    assert result.ignored == "dak mail of no interest: '=?x\\x00y?q?hello?='"


@pytest.mark.parametrize("closes", [b"0", b"\xc2\xb2", b"9" * 5000])
def test_closes_must_be_bug_numbers(closes: bytes) -> None:
    # was: an event with closes [0] the Emitter refuses; ValueError from int() on "²" or 5000 digits
    with pytest.raises(InputError, match="Closes .* is not a bug number"):
        parse_changes(CHANGES + b"Closes: " + closes + b"\n")


def test_closes_with_hash_and_leading_zeros() -> None:
    assert parse_changes(CHANGES + b"Closes: #0570704 981361\n").closes == [570704, 981361]


def test_a_negative_file_size_is_malformed() -> None:
    # was: an event whose files/0/size -1 the Emitter refuses
    with pytest.raises(InputError, match="bad line in Files"):
        parse_changes(CHANGES.replace(b" 12 utils", b" -1 utils"))


@pytest.mark.parametrize("bug", [b"0", b"\xc2\xb2", b"9" * 5000])
def test_removal_log_bugs_must_be_bug_numbers(bug: bytes) -> None:
    with pytest.raises(InputError, match="is not a bug number"):
        parse_stanza(STANZA + b"Bug: " + bug + b"\n")


def test_removal_log_stanza_with_a_bug() -> None:
    event = parse_stanza(STANZA + b"Bug: #123\n")
    _valid(event)
    assert event.body["closes"] == [123]


def test_removal_mail_for_bug_zero() -> None:
    # was: an event with closes [0] the Emitter refuses
    mail = (b"X-DAK: dak rm\nSubject: Bug#0: Removed package(s) from unstable\n\n"
            b"      hello |     1.0-1 | source\n------------------- Reason -------------------\nRoQA\n")
    with pytest.raises(InputError, match="removal mail for no bug"):
        parse_mail(mail)


def _current_accept(dak_samples: Path) -> bytes:
    return (dak_samples / "mails" / "04-ACCEPTED-maintainer_xfsprogs_6.12.0-1_source_2024-pgpmime.eml").read_bytes()


def test_a_debian_changes_header_that_names_no_changes_file(dak_samples: Path) -> None:
    # was: an event whose "changes" does not end in .changes, which the Emitter refuses
    mail = _current_accept(dak_samples).replace(b"Debian-Changes: xfsprogs_6.12.0-1_source.changes",
                                                b"Debian-Changes: x")
    with pytest.raises(InputError, match="Debian-Changes 'x' is not a .changes file name"):
        parse_mail(mail)


def test_a_policy_queue_without_a_suite(dak_samples: Path) -> None:
    # was: an event with suites [""] the Emitter refuses
    mail = _current_accept(dak_samples).replace(b"Debian-Suite: unstable", b"Debian-Suite: ->proposed-updates")
    with pytest.raises(InputError, match="accepted into no suite"):
        parse_mail(mail)


def test_a_changed_by_nested_too_deeply_for_parseaddr() -> None:
    # was: RecursionError from email.utils.parseaddr in summary() (debpulse-tail and every consumer)
    changes = parse_changes(CHANGES + b"Changed-By: " + b"a:" * 2000 + b"\n")
    event = events.accepted(changes, "hello_1.0-1_source.changes", "unstable", route="queue")
    _valid(event)
    message = message_type(event.topic)(event.body, event.topic)
    assert message.summary().startswith("a:a:")
    assert message.usernames() == ["jane@example.org"]  # the maintainer; the Changed-By names nobody


def test_a_header_of_hundreds_of_kilobytes_is_refused_before_parsing() -> None:
    data = b"From: dak@ftp-master.debian.org\nSubject: " + b"a," * 150_000 + b"\n\nbody\n"
    with pytest.raises(InputError, match="header of more than"):
        parse_mail(data)
