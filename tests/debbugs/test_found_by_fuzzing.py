"""Inputs the fuzzer (tests/fuzz) found that made the debbugs parsers fail
in a way other than their declared error (InputError, SoapError), return
events the Emitter refuses, or take hours; each is the smallest such input."""

from __future__ import annotations

import subprocess
import sys

import pytest

from debpulse.adapters.debbugs import (
    messages,  # noqa: F401  (registers the types)
    soap,
)
from debpulse.adapters.debbugs.mail import parse_mail, with_status
from debpulse.adapters.debbugs.soap import SoapError
from debpulse.adapters.debbugs.transcript import parse_command, parse_transcript
from debpulse.emitters.errors import InputError, SchemaError
from debpulse.emitters.messages import message_type

HEAD = "Processing commands for control@bugs.debian.org:\n\n"


def test_a_transcript_about_bug_zero_names_no_bug() -> None:
    # was: bugs [0], which the Emitter refuses in a debbugs.bug.control body
    assert parse_transcript(HEAD + "> close 0\nBug #0 [hello] title\nMarked Bug as done\n").bugs == []


def test_a_control_mail_about_bug_zero_is_refused() -> None:
    mail = (b"X-Loop: owner@bugs.debian.org\nX-Debian-PR-Message: transcript\nSubject: Processed: x\n\n"
            + (HEAD + "> close 0\nBug #0 [hello] title\nMarked Bug as done\n").encode())
    with pytest.raises(InputError, match="names no bug"):
        parse_mail(mail)


@pytest.mark.parametrize("line", [
    "Bug #" + "9" * 5000 + " [hello] title",
    "Merged " + "9" * 5000,
    "Disconnected #" + "9" * 5000 + " from all other report(s).",
    "Added blocking bug(s) of 1: \u00b2",
])
def test_numbers_that_int_cannot_read_are_not_bug_numbers(line: str) -> None:
    # was: ValueError (int() stops at 4300 digits, and "²" is a digit to isdigit() only)
    transcript = parse_transcript(HEAD + "> merge 1 2\n" + line + "\n")
    assert transcript.bugs == [1]


def test_requested_block_with_a_superscript_digit() -> None:
    from debpulse.adapters.debbugs.transcript import requested_changes

    assert requested_changes("block", 1, "2 \u00b2")[0]["by"] == [2]


def _finishes(code: str) -> None:
    """Run `code` in a child process; it must end within a generous bound
    (the backtracking it guards against takes hours, the fix milliseconds)."""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_merged_line_does_not_backtrack_exponentially() -> None:
    # was: "^Merged ((?:\d+ ?)+)$" on 40 digits and a non-digit: 2**40 steps
    _finishes("from debpulse.adapters.debbugs.transcript import parse_transcript\n"
              f"parse_transcript({HEAD!r} + '> merge 1 2\\nMerged ' + '1' * 40 + 'x\\n')")


def test_a_long_command_line_does_not_backtrack_quadratically() -> None:
    # was: "(\S.*?)\s*$" over a long run of inner blanks: minutes for 100,000 of them
    _finishes("from debpulse.adapters.debbugs.transcript import parse_command\n"
              "assert parse_command('tags 1 a' + ' ' * 400_000 + 'b')[0] == 'tags'")


def test_commands_keep_their_arguments() -> None:
    assert parse_command("  tags 1 + patch   ") == ("tags", 1, "+ patch")
    assert parse_command("summary 7") == ("summary", 7, "")
    assert parse_command("close 5 1.2-3  ") == ("close", 5, "1.2-3")


@pytest.mark.parametrize(("pr_message", "subject"), [(b"followup \xc2\xb2", b"Bug#12: x"),
                                                     (b"followup", b"Bug#" + b"9" * 5000 + b": x")])
def test_bug_numbers_in_headers(pr_message: bytes, subject: bytes) -> None:
    # was: ValueError from int() on "²" (isdigit() is true for it) and on 5000 digits
    mail = (b"X-Loop: owner@bugs.debian.org\nX-Debian-PR-Message: " + pr_message + b"\nSubject: " + subject
            + b"\nMessage-ID: <a@b>\n\nhello\n")
    try:
        parsed = parse_mail(mail)
    except InputError as exc:
        assert "no bug number" in exc.reason
    else:
        [event] = parsed.events
        assert event.body["bug"] == 12


def test_a_control_change_its_summary_cannot_read_is_refused() -> None:
    # was: accepted by the schema (from the relay, say), then TypeError in summary()
    body = {"bugs": [1], "packages": [], "from": None, "subject": "", "errors": [], "message_id": None,
            "via": "mail", "changes": [{"bug": 1, "action": "found", "versions": [[{}]]}]}
    with pytest.raises(SchemaError, match="versions"):
        message_type("debbugs.bug.control").validate(body)


@pytest.mark.parametrize("sender", ["(" * 5000, "a:" * 2000])
def test_a_sender_nested_too_deeply_for_parseaddr(sender: str) -> None:
    # was: RecursionError from email.utils.parseaddr in summary() and usernames()
    body = {"bug": 1, "package": "hello", "source": None, "title": "t", "from": sender, "severity": None,
            "tags": [], "message_id": None, "enriched": False, "status": None, "via": "mail"}
    message = message_type("debbugs.bug.followup")(body, "debbugs.bug.followup")
    assert message.summary().startswith("Bug #1 (hello): followup from ") and message.usernames() == []


def test_events_of_a_real_transcript_still_validate(bts_mails) -> None:
    for path in sorted(bts_mails.glob("bts-transcript*.eml")):
        for event in parse_mail(path.read_bytes()).events:
            message_type(event.topic).validate(with_status(event, None).body)


# --- SOAP answers --------------------------------------------------------------

def _answer(method: str, value: str, encoding: str = "UTF-8") -> bytes:
    return (f'<?xml version="1.0" encoding="{encoding}"?><soap:Envelope '
            'xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
            'xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/">'
            f'<soap:Body><{method}Response xmlns="Debbugs/SOAP">{value}</{method}Response>'
            "</soap:Body></soap:Envelope>").encode()


@pytest.mark.parametrize("value", [
    '<s-gensym3 xsi:type="xsd:float">1.5</s-gensym3>',
    '<s-gensym3 soapenc:arrayType="xsd:anyType[1]"><item xsi:type="xsd:string">x</item></s-gensym3>',
    '<s-gensym3 soapenc:arrayType="xsd:anyType[1]"><item xsi:type="xsd:string">\u00b2</item></s-gensym3>',
])
def test_bug_numbers_that_are_not(value: str) -> None:
    # was: TypeError ('float' object is not iterable) and ValueError from int()
    with pytest.raises(SoapError, match="expected bug numbers"):
        soap.read_answer("newest_bugs", _answer("newest_bugs", value))


def test_one_bug_number_alone() -> None:
    # was: TypeError ('int' object is not iterable)
    assert soap.read_answer("newest_bugs", _answer("newest_bugs", '<s-gensym3 xsi:type="xsd:int">7</s-gensym3>')) \
        == [7]


def test_a_float_that_is_not_a_number() -> None:
    # was: ValueError from float()
    with pytest.raises(SoapError, match="is not a number"):
        soap.read_answer("get_usertag", _answer("get_usertag", '<s-gensym3 xsi:type="xsd:float"></s-gensym3>'))


def test_an_unknown_xml_encoding() -> None:
    # was: LookupError from the XML parser
    with pytest.raises(SoapError, match="malformed SOAP response"):
        soap.read_answer("get_status", _answer("get_status", "", encoding="UTF-1e999"))


def test_an_infinite_timestamp_is_no_timestamp() -> None:
    # was: OverflowError from int(inf)
    value = ('<s-gensym3 xsi:type="apachens:Map"><item><key xsi:type="xsd:int">7</key><value>'
             '<last_modified xsi:type="xsd:double">INF</last_modified></value></item></s-gensym3>')
    assert soap.read_answer("get_status", _answer("get_status", value))[7]["last_modified"] is None


def test_a_header_of_hundreds_of_kilobytes_is_refused_before_parsing() -> None:
    """Python's email parser takes minutes over a 300 KB header: one such
    mail would stall the adapter.  It is bad input, refused at once."""
    from debpulse.adapters.common.mailsize import MAX_HEADER_BYTES

    data = b"X-Loop: owner@bugs.debian.org\nSubject: " + b"a," * 150_000 + b"\n\nbody\n"
    with pytest.raises(InputError, match="header of more than"):
        parse_mail(data)
    # A header just under the bound is parsed as usual.
    fine = b"Subject: x\nX-Filler: " + b"y" * (MAX_HEADER_BYTES - 200) + b"\n\nbody\n"
    assert parse_mail(fine).kind == "not-debbugs"
