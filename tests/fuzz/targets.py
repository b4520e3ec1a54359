"""The fuzz targets: one per parser, each naming the pure function under
test, the one error it declares for bad input, what a result must look
like, and the inputs to try (mutations of the real samples, structure-aware
documents, and plain garbage).

The property is the same for all (see `classify`): the call returns a
result of the declared type, or raises the declared error with a one-line
reason.  Anything else is a failure: RecursionError, UnicodeError,
KeyError, IndexError, TypeError, AttributeError, a ValueError leaking, and
also a result the program would trip over next, such as an Event whose
body its message type refuses (the Emitter raises SchemaError for that,
which stops an adapter instead of setting one input aside).

Used by tests/fuzz/test_fuzz.py (a few thousand inputs per target, in the
suite) and tests/fuzz/run.py (as many as asked, with counts and rates).
"""

from __future__ import annotations

import argparse
import email
import email.policy
import functools
import json
import string
import time
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from testbus import fixtures_dir

from debpulse.adapters.dak import changes as dak_changes
from debpulse.adapters.dak import events as dak_events
from debpulse.adapters.dak import mail as dak_mail
from debpulse.adapters.dak import removals as dak_removals
from debpulse.adapters.dak.cli import DAK
from debpulse.adapters.debbugs import mail as bts_mail
from debpulse.adapters.debbugs import reconcile, soap
from debpulse.adapters.debbugs import transcript as bts_transcript
from debpulse.adapters.debbugs.cli import DEBBUGS
from debpulse.adapters.scm import push, refs, webhook
from debpulse.adapters.scm.cli import GIT
from debpulse.adapters.scm.commits import PushFacts, RefCommits
from debpulse.adapters.scm.gitobjects import parse_commit, parse_refs, parse_tag
from debpulse.adapters.wannabuild import rows as wb_rows
from debpulse.adapters.wannabuild.cli import WANNABUILD
from debpulse.consumers.bridge.cli import BRIDGE
from debpulse.consumers.trigger.cli import TRIGGER
from debpulse.emitters import envelope, relay
from debpulse.emitters.announce import ANNOUNCE, Announcement, announce_section, announcement_from
from debpulse.emitters.config import Config, merge_config, parse_toml
from debpulse.emitters.discovery import DNS, PublisherInfo, parse_endpoints_file
from debpulse.emitters.errors import ConfigError, InputError, SchemaError
from debpulse.emitters.event import Event
from debpulse.emitters.messages import _REGISTRY, load_message_types, message_for, message_type
from debpulse.emitters.options import BUS, SUBSCRIBE, BusOptions
from debpulse.emitters.policy import SIGNER, Policy

from . import generate as gen
from .mutate import Corpus, dumps, json_mutants, mutants

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Target:
    name: str
    parse: Callable[[Any], Any]                           # the pure function (or a thin wrapper of it)
    error: type[BaseException] | tuple[type[BaseException], ...]  # what it declares for bad input
    check: Callable[[Any], None]                          # raises AssertionError for a wrong result
    inputs: Callable[[], st.SearchStrategy[Any]]          # built on first use: reads the samples
    about: str
    # A crash known and being fixed elsewhere: the suite expects this target to fail (strict=False).
    known_crash: str | None = None
    # Inputs always tried first (hypothesis' explicit examples), such as the known crash.
    explicit: tuple[Any, ...] = ()
    # Real inputs the mutations start from, which must give results.
    samples: Callable[[], Sequence[Any]] = tuple


class WrongResult(AssertionError):
    """The parser returned something its callers would trip over."""


@dataclass(frozen=True)
class Outcome:
    kind: str                     # "result", "declared" or "failure"
    error: BaseException | None = None
    seconds: float = 0.0


def classify(target: Target, value: Any) -> Outcome:
    """Run one input through a target and say how it went."""
    start = time.perf_counter()
    try:
        result = target.parse(value)
    except target.error as exc:
        took = time.perf_counter() - start
        reason = str(getattr(exc, "reason", None) or exc)
        if not reason.strip() or "\n" in reason or "\r" in reason:
            return Outcome("failure", WrongResult(f"{type(exc).__name__} without a one-line reason: {reason!r}"),
                           took)
        return Outcome("declared", exc, took)
    except Exception as exc:  # the point: anything else (RecursionError included) is a finding
        return Outcome("failure", exc, time.perf_counter() - start)
    try:
        target.check(result)
    except Exception as exc:
        wrong = exc if isinstance(exc, WrongResult) else WrongResult(
            f"checking the result: {type(exc).__name__}: {exc}")
        return Outcome("failure", wrong, time.perf_counter() - start)
    return Outcome("result", None, time.perf_counter() - start)


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise WrongResult(what)


def check_event(event: Any) -> None:
    """An Event the Emitter takes, and whose message type can describe it."""
    expect(isinstance(event, Event), f"not an Event: {event!r:.200}")
    expect(isinstance(event.topic, str) and isinstance(event.key, str | None), f"bad topic or key in {event!r:.200}")
    try:
        message_type(event.topic).validate(event.body)
    except SchemaError as exc:
        raise WrongResult(f"the Emitter would refuse it: {exc}") from None
    try:
        json.dumps(event.body, allow_nan=False)  # it goes on the wire as JSON
    except ValueError:
        raise WrongResult("the body holds NaN or Infinity, which JSON has not") from None
    message = message_for(event.topic, event.body)
    expect(isinstance(message.summary(), str), "summary is not text")
    expect(isinstance(message.link(), str | None), "link is not text")
    expect(isinstance(message.packages(), list) and isinstance(message.usernames(), list), "packages, usernames")
    expect(isinstance(message.agent(), str | None), "agent is not text")


# --- samples --------------------------------------------------------------------

def _files(folder: str, pattern: str) -> tuple[bytes, ...]:
    found = tuple(p.read_bytes() for p in sorted((fixtures_dir() / folder).glob(pattern)))
    if not found:
        raise FileNotFoundError(f"no samples {pattern} in {fixtures_dir() / folder} (set DEBPULSE_FIXTURES)")
    return found


def samples_present() -> bool:
    return (fixtures_dir() / "dak" / "mails").is_dir()


def _garbage() -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=512), st.text(max_size=256).map(lambda t: t.encode("utf-8", "surrogatepass")))


def _mix(*parts: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """Strategies by weight (hypothesis' one_of picks each alike)."""
    return st.one_of(*[s for weight, s in parts for _ in range(weight)])


# --- dak ------------------------------------------------------------------------

_SUITES = ["unstable", "experimental", "stable-proposed-updates", "bookworm", "stable->proposed-updates",
           "testing", "sid", "unstable, experimental", "a and b", ""]
_ARCHES = ["source", "all", "amd64", "i386", "source all amd64", "m68k", "any", ""]


def _changes_fields() -> dict[str, st.SearchStrategy[str]]:
    md5 = st.one_of(st.text("0123456789abcdef", min_size=32, max_size=32), st.text("0123456789abcdef", max_size=66))
    sha256 = st.one_of(st.text("0123456789abcdef", min_size=64, max_size=64), md5)
    names = st.one_of(st.sampled_from(["hello_1.0-1.dsc", "hello_1.0-1_amd64.deb", "hello_1.0.orig.tar.xz"]),
                      st.tuples(gen.package_names, st.sampled_from([".dsc", ".deb", ".udeb", ""])).map("".join))
    sizes = st.one_of(st.integers(0, 10**7).map(str), st.integers(0, 10**7).map(str), gen.words, st.just("-1"))
    files = st.lists(st.tuples(md5, sizes, st.sampled_from(["admin", "utils", "-"]),
                               st.sampled_from(["optional", "-", ""]), names), min_size=1, max_size=3).map(
        lambda rows: "\n" + "\n".join(" ".join(r) for r in rows))
    sums = st.lists(st.tuples(sha256, sizes, names), max_size=3).map(
        lambda rows: "\n" + "\n".join(" ".join(r) for r in rows))
    bugs = st.lists(st.one_of(st.integers(0, 2**40).map(str), st.just("#123"), gen.words), max_size=4).map(" ".join)
    return {
        "Format": gen.pick(["1.8", "1.7"], gen.words),
        "Date": gen.pick(["Mon, 15 Dec 2025 12:00:00 +0100"], gen.words),
        "Source": st.one_of(gen.package_names, st.tuples(gen.package_names, gen.versions).map(
            lambda t: f"{t[0]} ({t[1]})")),
        "Binary": st.lists(gen.package_names, max_size=3).map(" ".join),
        "Architecture": gen.pick(_ARCHES[:-1], gen.words),
        "Version": gen.versions,
        "Distribution": gen.pick(_SUITES[:-1], gen.words),
        "Urgency": gen.pick(["medium", "low", "high", "critical", ""], gen.words),
        "Maintainer": gen.pick(["Jane Maintainer <jane@example.org>"], gen.words),
        "Changed-By": gen.pick(["Łukasz Uploader <lukasz@debian.org>"], gen.words),
        "Closes": bugs,
        "Files": files,
        "Checksums-Sha256": sums,
        "Changes": st.text(max_size=200),
    }


def _changes_documents() -> st.SearchStrategy[bytes]:
    return gen.clearsigned(gen.deb822(_changes_fields(), dak_changes.REQUIRED))


def _removal_text() -> st.SearchStrategy[str]:
    row = st.tuples(gen.package_names, gen.versions, st.sampled_from(["source", "amd64", "source, amd64, i386",
                                                                           "all", ""]))
    return st.tuples(st.lists(row, max_size=4), gen.words, st.booleans()).map(
        lambda t: "package(s) have been removed:\n\n" + "".join(f"{p:>10} | {v:>10} | {a}\n" for p, v, a in t[0])
        + ("\n" + dak_removals.REASON_START + "\n" + t[1] + "\n" + dak_removals.REASON_END + "\n" if t[2] else ""))


def _dak_mail_documents() -> st.SearchStrategy[bytes]:
    changes_name = st.one_of(st.tuples(gen.package_names, gen.versions, st.sampled_from(["source", "amd64"])).map(
        lambda t: f"{t[0]}_{t[1]}_{t[2]}.changes"), gen.words.map(lambda w: w + ".changes"))
    bug = st.integers(0, 2**40)
    subject = st.one_of(
        st.tuples(changes_name, gen.pick(_SUITES)).map(lambda t: f"{t[0]} ACCEPTED into {t[1]}"),
        st.tuples(gen.package_names, gen.versions, gen.pick(_ARCHES), gen.pick(_SUITES)).map(
            lambda t: f"Accepted {t[0]} {t[1]} ({t[2]}) into {t[3]}"),
        st.tuples(bug, gen.package_names, gen.versions).map(lambda t: f"Bug#{t[0]}: fixed in {t[1]} {t[2]}"),
        changes_name.map(lambda n: f"{n} is NEW"),
        changes_name.map(lambda n: f"{n} REJECTED"),
        st.tuples(bug, gen.pick(_SUITES)).map(lambda t: f"Bug#{t[0]}: Removed package(s) from {t[1]}"),
    )
    headers = {
        "Subject": subject,
        "From": st.just("Debian FTP Masters <ftpmaster@ftp-master.debian.org>"),
        "Date": gen.pick(["Sat, 27 Aug 2022 09:52:26 +0000", "Mon, 31 Feb 2022 99:00:00 +9999", "yesterday"]),
        "Message-Id": gen.pick(["<E1oS1p0-00BEVf-FV@fasolo.debian.org>", "<>", "<a@b> <c@d>"]),
        "X-DAK": gen.pick(["dak process-upload", "dak rm"]),
        "X-Debian": st.just("DAK"),
        "Debian": st.just("DAK"),
        "X-Katie": st.just("$Revision: 1.1 $"),
        "Debian-Archive-Action": gen.pick(["accept", "policy", "new", "reject", "remove"], gen.words),
        "Debian-Changes": changes_name,
        "Debian-Source": gen.package_names,
        "Debian-Version": gen.versions,
        "Debian-Architecture": gen.pick(_ARCHES),
        "Debian-Suite": gen.pick(_SUITES),
        "X-DAK-Rejection": gen.pick(["automatic", "manual"], gen.words),
    }
    body = st.one_of(
        _changes_documents().map(lambda b: "Accepted:\n\n" + b.decode("utf-8", "replace")),
        _removal_text(),
        st.text(max_size=300).map(lambda t: t + "\n\n===\n\nPlease feel free to respond"),
        st.text(max_size=300),
    )
    return gen.mails(headers, body, required=("Subject", "X-DAK"))


DAK_TOKENS = (b"Subject: ", b"X-DAK: dak process-upload\n", b"Debian: DAK\n", b"Debian-Archive-Action: remove\n",
              b"Debian-Suite: ", b"Debian-Changes: ", b"Content-Type: multipart/mixed; boundary=x\n",
              b"Content-Transfer-Encoding: base64\n", b"charset=", b"=?utf-8?q?", b"?=", b"\n\n", b" ACCEPTED into ",
              b" REJECTED", b" is NEW", b"Bug#", b": fixed in ", b"Removed package(s) from ", b"->",
              dak_changes.BEGIN_SIGNED, dak_changes.BEGIN_SIGNATURE, dak_changes.END_SIGNATURE, b"\n- ",
              b"Files:\n", b"Checksums-Sha256:\n", b"Closes: ", b"Version: ", b"Source: ", b"Architecture: ",
              b"Distribution: ", b" | ", dak_removals.REASON_START.encode(), dak_removals.REASON_END.encode(),
              b"\n===\n", b"=\n", b"=C3=", b"=FF")


@functools.cache
def _dak_corpus() -> Corpus:
    changes = _files("dak/changes", "*.changes")
    return Corpus(_files("dak/mails", "*.eml"), DAK_TOKENS, splice=changes)


@functools.cache
def _changes_corpus() -> Corpus:
    return Corpus(_files("dak/changes", "*.changes"), DAK_TOKENS)


def _dak_mail_inputs() -> st.SearchStrategy[bytes]:
    corpus = _dak_corpus()
    return _mix((6, mutants(corpus)), (3, _dak_mail_documents()), (2, mutants(corpus, _dak_mail_documents())),
                (1, _garbage()))


def _check_dak_mail(result: Any) -> None:
    expect(isinstance(result, dak_mail.MailResult), f"not a MailResult: {result!r:.200}")
    expect(result.ignored is None or isinstance(result.ignored, str), "ignored is not a reason")
    expect(bool(result.events) != (result.ignored is not None), "neither events nor a reason to ignore")
    for event in result.events:
        check_event(event)


def _changes_inputs() -> st.SearchStrategy[bytes]:
    corpus = _changes_corpus()
    return _mix((6, mutants(corpus)), (3, _changes_documents()), (2, mutants(corpus, _changes_documents())),
                (1, _garbage()))


def _check_changes(result: Any) -> None:
    """A Changes, and the events the queue source builds from it (done/:
    one accept per suite; new/: one new) are taken by the Emitter."""
    expect(isinstance(result, dak_changes.Changes), f"not a Changes: {result!r:.200}")
    expect(bool(result.suites) and bool(result.architectures), "no suite or no architecture")
    name = result.filename()
    for suite in result.suites:
        check_event(dak_events.accepted(result, name, suite, route="queue"))
    check_event(dak_events.new(name, result.fields(), day="2026-01-01", route="queue"))


def _stanza_documents() -> st.SearchStrategy[bytes]:
    nv = st.tuples(gen.package_names, gen.versions).map(lambda t: f"{t[0]}_{t[1]}")
    fields = {
        "Date": gen.pick(["Fri, 27 Nov 2026 10:00:00 +0000"], gen.words),
        "Ftpmaster": gen.pick(["Ftp Master"], gen.words),
        "Suite": gen.pick(_SUITES, gen.words),
        "Sources": st.lists(nv, max_size=3).map(lambda xs: "\n" + "\n".join(xs)),
        "Binaries": st.lists(st.tuples(nv, gen.pick(["amd64", "amd64, i386", "", "all"])), max_size=3).map(
            lambda xs: "\n" + "\n".join(f"{n} [{a}]" for n, a in xs)),
        "Reason": st.text(max_size=80),
        "Bug": st.lists(st.integers(0, 2**40).map(str), max_size=3).map(", ".join),
        "Also-Bugs": st.lists(st.integers(0, 2**40).map(str), max_size=2).map(" ".join),
        "Also-WNPP": gen.pick(["", "#12345"], gen.words),
    }
    return gen.deb822(fields, ["Date", "Suite", "Sources", "Binaries", "Reason"]).map(
        lambda s: s.encode("utf-8", "surrogatepass"))


@functools.cache
def _stanza_corpus() -> Corpus:
    # No real removals.822 is public: dak's format (daklib/rm.py) filled with real values.
    one = (b"Date: Fri, 27 Nov 2026 10:00:00 +0000\nFtpmaster: Ftp Master\nSuite: unstable\n"
           b"Sources:\n xfsprogs_5.6.0-1\nBinaries:\n xfsprogs_5.6.0-1 [amd64, i386]\n xfslibs-dev_5.6.0-1 [amd64]\n"
           b"Reason: RoM; superseded\n see #123\nBug: 570704, 981361\n")
    two = b"Date: Sat, 28 Nov 2026 10:00:00 +0000\nFtpmaster: x\nSuite: stable and testing\nSources: hello_2.10-3\n" \
          b"Reason: RoQA\nAlso-Bugs: 1 2\nAlso-WNPP: #3\n"
    return Corpus((one, two), (b"Suite: ", b"Sources:\n", b"Binaries:\n", b" [", b"]", b"_", b", ", b"Bug: ",
                               b"Also-Bugs: ", b"Also-WNPP: ", b"\n\n", b"\n ", b"#"))


def _stanza_inputs() -> st.SearchStrategy[bytes]:
    corpus = _stanza_corpus()
    return _mix((4, mutants(corpus)), (4, _stanza_documents()), (2, mutants(corpus, _stanza_documents())),
                (1, _garbage()))


def removal_log(data: bytes) -> list[Event]:
    """What the queue source does with what it read of removals.822: split it
    into complete stanzas, then parse each (the first bad one raises)."""
    return [dak_removals.parse_stanza(stanza) for stanza, _ in dak_removals.split_stanzas(data + b"\n\n")]


def _check_events(result: Any) -> None:
    expect(isinstance(result, list), f"not a list of events: {result!r:.200}")
    for event in result:
        check_event(event)


# --- debbugs ------------------------------------------------------------------

_PR_KINDS = ["report", "followup", "closed", "they-closed", "forwarded", "transcript", "ack", "ack-info", "list",
             "error", "bogus"]
_ACTIONS = [
    "Severity set to '{a}' from '{b}'", "Severity set to '{a}'", "Bug reassigned from package '{a}' to '{b}'.",
    "Bug assigned to package '{a}'.", "Changed Bug title to '{a}' from '{b}'.", "Set Bug title to '{a}'.",
    "Changed Bug submitter to '{a}' from '{b}'.", "Owner changed from {a} to {b}.", "Owner recorded as {a}.",
    "Removed annotation that Bug was owned by {a}.", "Marked Bug as done", "Bug reopened", "Bug archived.",
    "Summary recorded from message bug {n} message {m}", "Removed summary", "Merged {n} {m}", "Merged {a}",
    "Disconnected #{n} from all other report(s).", "Bug {n} cloned as bugs {m}, {a} and {b}",
    "Bug {n} cloned as bug {a}", "Added indication that {n} affects {a} and {b}",
    "Removed indication that {n} affects {a}",
    "Added tag(s) {a}.", "Removed tag(s) {a} and {b}.", "Marked as found in versions {a}; added tag(s) {b}.",
    "Marked as fixed in versions {a} and reopened.", "No longer marked as found in versions {a}.",
    "Added blocking bug(s) of {n}: {m} and {a}", "Removed blocking bug(s) of {n}: {a}", "Unknown tag/s: {a}.",
    "Failed to {a}", "Recognized are: {a}", "Bug #{n} [{a}] {b}", "Bug #{n} {{Done: {a}}} [{b}] title",
    "Bug number {n} belongs to package {a}, skipping.", "Limit key {a}",
    "{a} is not a valid e-mail address; not changing submitter",
]
_VERBS = ["close", "reassign", "reopen", "notfound", "found", "notfixed", "fixed", "submitter", "notforwarded",
          "forwarded", "severity", "tags", "tag", "unblock", "block", "retitle", "unmerge", "forcemerge", "merge",
          "clone", "affects", "summary", "outlook", "noowner", "owner", "unarchive", "archive", "user", "usertag",
          "thanks", "quit", "--", "#"]


_NUMBER = st.one_of(st.integers(-3, 2**40).map(str), st.just("-1"), gen.words)
_COMMAND_ARGS = st.lists(st.one_of(_NUMBER, gen.words, st.sampled_from(["by", "+", "-", "=", "!"])), max_size=4).map(
    " ".join)
_PROCESSING = gen.pick(["Processing commands for control@bugs.debian.org:", "Processing control commands:",
                        "Processing commands for 123-submit@bugs.debian.org:"], gen.words)
_ENDING = st.sampled_from([[], ["> thanks", "Stopping processing here."], ["--"]])
_FEW = st.integers(0, 4)


@st.composite
def _transcript_text(draw: st.DrawFn) -> str:
    lines = [draw(_PROCESSING), ""]
    for _ in range(draw(_FEW) + draw(_FEW) % 3):
        lines.append(f"> {draw(st.sampled_from(_VERBS))} {draw(_NUMBER)} {draw(_COMMAND_ARGS)}".rstrip())
        for _ in range(draw(_FEW)):
            template = draw(st.sampled_from(_ACTIONS))
            # Draw only the fields the line has: fewer draws, faster drawing.
            fields = {f for _, f, _, _ in string.Formatter().parse(template) if f}
            lines.append(template.format(**{f: draw(gen.words if f in "ab" else _NUMBER) for f in fields}))
    lines += draw(_ENDING)
    return "\n".join(lines) + "\n"


def _transcript_subjects() -> st.SearchStrategy[str]:
    return st.one_of(st.tuples(st.integers(0, 9), gen.words).map(lambda t: f"Processed (with {t[0]} errors): {t[1]}"),
                     gen.words.map(lambda w: f"Processed: {w}"), gen.words)


@functools.cache
def _transcript_samples() -> tuple[tuple[str, str], ...]:
    out = []
    for data in _files("debbugs/mails", "bts-transcript*.eml"):
        msg = email.message_from_bytes(data, policy=email.policy.default)
        out.append((msg.get_content(), str(msg["Subject"])))
    return tuple(out)


def _transcript_inputs() -> st.SearchStrategy[tuple[str, str]]:
    samples = _transcript_samples()
    texts = Corpus(tuple(t.encode() for t, _ in samples), tuple(a.split("{")[0].encode() for a in _ACTIONS)
                   + (b"> ", b"\n> ", b"Processing ", b":\n", b"#", b"-1", b"Bug #", b" [", b"] ", b"{Done: ", b"}",
                      b"'", b" and ", b", ", b"; "))
    subject = st.one_of(st.sampled_from([s for _, s in samples]), _transcript_subjects())
    text = _mix((5, mutants(texts)), (3, _transcript_text()), (2, mutants(texts, _transcript_text().map(str.encode))),
                (1, _garbage()))
    return st.tuples(text.map(lambda b: b.decode("utf-8", "replace") if isinstance(b, bytes) else b), subject)


def transcript(value: tuple[str, str]) -> bts_transcript.Transcript:
    text, subject = value
    return bts_transcript.parse_transcript(text, subject)


def _check_transcript(result: Any) -> None:
    expect(isinstance(result, bts_transcript.Transcript), f"not a Transcript: {result!r:.200}")
    expect(all(isinstance(b, int) and b > 0 for b in result.bugs), f"bugs {result.bugs!r:.200}")
    expect(isinstance(result.changes, list) and isinstance(result.errors, list), "changes or errors")
    json.dumps(result.changes, allow_nan=False)


def _debbugs_mail_documents() -> st.SearchStrategy[bytes]:
    bug = st.integers(-1, 2**40)
    title = gen.words
    headers = {
        "X-Loop": gen.pick(["owner@bugs.debian.org", "Owner@Bugs.Debian.Org"], gen.words),
        "X-Debian-PR-Message": st.tuples(gen.pick(_PR_KINDS, gen.words), bug).map(lambda t: f"{t[0]} {t[1]}"),
        "X-Debian-PR-Package": st.lists(gen.package_names, max_size=3).map(" ".join),
        "X-Debian-PR-Source": gen.package_names,
        "X-Debian-PR-Keywords": st.lists(gen.pick(["patch", "moreinfo", "sid"], gen.words), max_size=3).map(" ".join),
        "Subject": st.one_of(
            st.tuples(bug, title).map(lambda t: f"Bug#{t[0]}: {t[1]}"),
            st.tuples(bug, title).map(lambda t: f"Re: Bug#{t[0]}: {t[1]}"),
            st.tuples(bug, title).map(lambda t: f"Bug#{t[0]}: marked as done ({t[1]})"),
            st.tuples(bug, title).map(lambda t: f"Bug#{t[0]}: marked as forwarded ({t[1]})"),
            st.tuples(bug, gen.words, title).map(lambda t: f"Bug#{t[0]} closed by {t[1]} ({t[2]})"),
            _transcript_subjects(),
        ),
        "References": st.lists(gen.pick(["<a@example.org>", "<>", "<a b>"], gen.words), max_size=3).map(" ".join),
        "Message-ID": gen.pick(["<x@example.org>", "<>", "none"], gen.words),
        "From": gen.pick(["Jane <jane@debian.org>", "owner@bugs.debian.org (Debian Bug Tracking System)"], gen.words),
        "To": gen.pick(["Jane <jane@debian.org>"], gen.words),
    }
    body = st.one_of(
        _transcript_text(),
        st.tuples(gen.package_names, gen.versions, gen.pick(["grave", "normal"], gen.words), gen.words).map(
            lambda t: f"Package: {t[0]}\nVersion: {t[1]}\nSeverity: {t[2]}\nDone: {t[3]}\n\nText.\n"),
        st.text(max_size=300),
    )
    return gen.mails(headers, body, required=("X-Loop", "X-Debian-PR-Message", "Subject", "Message-ID"))


DEBBUGS_TOKENS = (b"X-Loop: owner@bugs.debian.org\n", b"X-Debian-PR-Message: ", b"transcript", b"closed ",
                  b"followup ", b"report ", b"forwarded ", b"they-closed ", b"X-Debian-PR-Package: ",
                  b"X-Debian-PR-Keywords: ", b"References: <", b"Message-ID: <", b">", b"Subject: ", b"Bug#",
                  b": marked as done (", b"Processed (with 1 errors): ", b"Content-Type: message/rfc822\n\n",
                  b"Content-Type: multipart/mixed; boundary=", b"Content-Transfer-Encoding: quoted-printable\n",
                  b"charset=", b"=?utf-8?b?", b"?=", b"Done: ", b"Version: ", b"Severity: ", b"\n> ", b"Processing ")


@functools.cache
def _debbugs_corpus() -> Corpus:
    return Corpus(_files("debbugs/mails", "*.eml"), DEBBUGS_TOKENS, splice=_files("dak/mails", "*.eml"))


def _debbugs_mail_inputs() -> st.SearchStrategy[bytes]:
    corpus = _debbugs_corpus()
    return _mix((6, mutants(corpus)), (3, _debbugs_mail_documents()),
                (2, mutants(corpus, _debbugs_mail_documents())), (1, _garbage()))


def _check_debbugs_mail(result: Any) -> None:
    expect(isinstance(result, bts_mail.ParsedMail), f"not a ParsedMail: {result!r:.200}")
    for event in result.events:
        check_event(bts_mail.with_status(event, None))  # as published when SOAP cannot tell


# --- debbugs SOAP -------------------------------------------------------------

SOAP_METHODS = {
    "testSampleGetStatus": "get_status", "test_mergedwith-1": "get_status", "test_mergedwith-2": "get_status",
    "testGetStatusAffects": "get_status", "testEmptyGetStatus": "get_status", "testGetBugs": "get_bugs",
    "testGetBugsList": "get_bugs", "testNewestBugs": "newest_bugs", "testGetBugLog": "get_bug_log",
    "testGetUsertagEmpty": "get_usertag",
}
_STATUS_KEYS = ("package", "source", "subject", "severity", "tags", "keywords", "done", "forwarded", "owner",
                "pending", "found_versions", "fixed_versions", "mergedwith", "blocks", "blockedby", "affects",
                "archived", "date", "last_modified", "log_modified", "bug_num", "originator", "msgid", "header",
                "body", "msg_num", "attachments")


@functools.cache
def _soap_samples() -> tuple[tuple[str, bytes], ...]:
    folder = fixtures_dir() / "debbugs-soap"
    found = tuple((method, (folder / f"{name}.response.xml").read_bytes()) for name, method in SOAP_METHODS.items()
                  if (folder / f"{name}.response.xml").is_file())
    if not found:
        raise FileNotFoundError(f"no SOAP answers in {folder} (set DEBPULSE_FIXTURES)")
    return found


def _soap_inputs() -> st.SearchStrategy[tuple[str, bytes]]:
    samples = _soap_samples()
    methods = sorted(set(SOAP_METHODS.values()))
    corpus = Corpus(tuple(b for _, b in samples),
                    (b'xsi:type="xsd:int"', b'xsi:type="xsd:base64Binary"', b'xsi:type="soapenc:Array"',
                     b'xsi:type="apachens:Map"', b'xsi:nil="true"', b"<item>", b"</item>", b"<key>", b"<value>",
                     b'xsi:type="xsd:float"', b"&amp;", b"&#0;", b"&#xD800;", b"<!DOCTYPE x [<!ENTITY a 'aaaa'>]>",
                     b"&a;", b"<![CDATA[", b"]]>", b"<soap:Fault>", b"<?xml version='1.0' encoding='latin-1'?>"),
                    nesting=((b"<a>", b"</a>"), (b'<i xsi:type="soapenc:Array">', b"</i>"),
                             (b'<i xsi:type="apachens:Map"><item><key>k</key><value xsi:type="apachens:Map">',
                              b"</value></item></i>")))
    by_sample = st.sampled_from(samples).flatmap(lambda s: st.tuples(
        gen.pick([s[0]], st.sampled_from(methods)),  # mostly the method it answers
        mutants(Corpus((s[1],), corpus.tokens, corpus.nesting, corpus.samples))))
    generated = gen.soap_answers(methods, _STATUS_KEYS)
    mutated_generated = generated.flatmap(lambda g: st.tuples(st.just(g[0]), mutants(corpus, st.just(g[1]))))
    return _mix((6, by_sample), (3, generated), (2, mutated_generated),
                (1, st.tuples(st.sampled_from(methods), _garbage())))


def soap_answer(value: tuple[str, bytes]) -> Any:
    method, data = value
    return method, soap.read_answer(method, data)


def _check_soap(result: Any) -> None:
    """What the client returns, and the events the reconciler builds from it."""
    method, answer = result
    if method == "get_status":
        expect(isinstance(answer, dict) and all(isinstance(b, int) for b in answer), f"statuses {answer!r:.200}")
        for bug, status in answer.items():
            if bug > 0:
                check_event(reconcile.report_event(bug, status))
    elif method == "get_bug_log":
        expect(isinstance(answer, list), f"bug log {answer!r:.200}")
        status = soap.status_of({})
        for record in answer:
            expect(isinstance(record.get("msg_num"), int), f"msg_num of {record!r:.200}")
            for event in reconcile.record_events(1, record, status):
                check_event(event)
    elif method in ("newest_bugs", "get_bugs"):
        expect(isinstance(answer, list) and all(isinstance(b, int) for b in answer), f"bug numbers {answer!r:.200}")


# --- git -----------------------------------------------------------------------

@functools.cache
def _hook_corpus() -> Corpus:
    stdin = _files("git", "post-receive-stdin-*.txt")
    saved = tuple(s + f"{refs.REFS_MARK}\n".encode()
                  + b"a7e336ab45d3934e789c412e0ec08763ef7ea06c commit  refs/heads/master\n"
                  + b"55ef7f76d15f396c18e679b3909239829e6daece tag commit refs/tags/debian/1.0-1\n"
                  + f"{refs.END_MARK}\n".encode() for s in stdin)
    return Corpus(stdin + saved, (b"0" * 40, b"0" * 64, b" refs/heads/", b" refs/tags/", b"refs/", b" ", b"\n",
                                  refs.REFS_MARK.encode() + b"\n", refs.END_MARK.encode() + b"\n", b"commit", b"tag",
                                  b"\r\n", b"a" * 40))


_REF = st.one_of(st.sampled_from(["refs/heads/master", "refs/tags/debian/1.0-1", "refs/notes/x", "HEAD"]),
                 gen.words.map(lambda w: "refs/heads/" + w), gen.words)
_OBJECT_KIND = st.sampled_from(["commit", "tag", "tree", "blob", ""])


@st.composite
def _hook_documents(draw: st.DrawFn) -> bytes:
    lines = [f"{draw(gen.oids)} {draw(gen.oids)} {draw(_REF)}" for _ in range(draw(_FEW))]
    out = "\n".join(lines) + "\n"
    if draw(st.booleans()):
        snapshot = [f"{draw(gen.oids)} {draw(_OBJECT_KIND)} {draw(_OBJECT_KIND)} {draw(_REF)}"
                    for _ in range(draw(_FEW))]
        end = refs.END_MARK + "\n" if draw(st.booleans()) else ""
        out += refs.REFS_MARK + "\n" + "\n".join(snapshot) + "\n" + end
    return out.encode("utf-8", "surrogatepass")


def hook_stdin(data: bytes) -> tuple[list[refs.RefUpdate], dict[str, str] | None]:
    """What the hook's background job reads from a saved push (PushSource.events
    before it asks git): the ref updates and the refs at push time."""
    stdin, snapshot = refs.split_saved(data)
    return refs.parse(stdin), (parse_refs(snapshot) if snapshot is not None else None)


def _check_hook(result: Any) -> None:
    updates, snapshot = result
    for u in updates:
        expect(isinstance(u, refs.RefUpdate) and u.kind in ("branch", "tag", "other"), f"update {u!r:.200}")
        expect(isinstance(u.name, str) and len(u.old) == len(u.new), f"update {u!r:.200}")
    expect(snapshot is None or all(isinstance(k, str) and isinstance(v, str) for k, v in snapshot.items()),
           "snapshot")


_GITLAB_KEYS = ("object_kind", "event_name", "before", "after", "ref", "checkout_sha", "message", "user_id",
                "user_name", "user_username", "user_email", "project", "commits", "total_commits_count",
                "path_with_namespace", "web_url", "id", "url", "author", "name", "email", "added", "modified",
                "removed", "title", "timestamp", "repository")
_GITLAB_STRINGS = ("push", "tag_push", "refs/heads/master", "refs/tags/debian/1.0-1", "0" * 40,
                   "a7e336ab45d3934e789c412e0ec08763ef7ea06c", "93ba66dd334cba69476228a1d85c3bdc4290798b",
                   "debian/hello", "https://salsa.debian.org/debian/hello", "jane", "Jane Maintainer")


def _gitlab_payloads() -> st.SearchStrategy[Any]:
    """Push Hook and Tag Push Hook payloads as GitLab documents them."""
    hexes = st.text("0123456789abcdef", min_size=40, max_size=40)
    oid = st.one_of(hexes, hexes, hexes, st.just("0" * 40))
    name = st.one_of(st.sampled_from(["master", "debian/1.0-1", "upstream"]), gen.words)
    path = st.lists(st.one_of(st.just("debian/changelog"), gen.words), max_size=2)
    commit = st.fixed_dictionaries(
        {"id": oid, "message": gen.words, "title": gen.words, "url": gen.words,
         "author": st.fixed_dictionaries({"name": gen.words, "email": gen.words}),
         "added": path, "modified": path, "removed": path})
    project = st.fixed_dictionaries({"path_with_namespace": st.one_of(st.just("debian/hello"), gen.words),
                                     "web_url": st.one_of(st.just("https://salsa.debian.org/debian/hello"),
                                                          gen.words)})
    return st.fixed_dictionaries(
        {"object_kind": st.sampled_from(["push", "tag_push"]), "before": oid, "after": oid,
         "ref": st.one_of(name.map(lambda n: "refs/heads/" + n), name.map(lambda n: "refs/tags/" + n)),
         "project": project, "user_username": gen.words, "commits": st.lists(commit, max_size=2)},
        optional={"total_commits_count": st.integers(-1, 10**6), "checkout_sha": st.one_of(oid, st.none()),
                  "message": st.one_of(gen.words, st.none()), "user_name": gen.words})


def _webhook_inputs() -> st.SearchStrategy[bytes]:
    corpus = Corpus((WEBHOOK_SAMPLE,), (b'"', b"{", b"}", b"[", b"]", b",", b":", b"null", b"1e999",
                                        b'"\\ud800"', b"\\u0000", b"NaN", b"-Infinity"),
                    nesting=((b"[", b"]"), (b'{"a":', b"}")))
    payloads = st.one_of(_gitlab_payloads(), st.just(json.loads(WEBHOOK_SAMPLE)))
    edited = json_mutants(payloads, gen.json_values(_GITLAB_KEYS, _GITLAB_STRINGS, max_leaves=6),
                          st.sampled_from(_GITLAB_KEYS)).map(dumps)
    return _mix((6, edited), (3, mutants(corpus, edited)), (1, _garbage()))


# A Push Hook as GitLab documents it, with the commits of the shared sample repository.
WEBHOOK_SAMPLE = json.dumps({
    "object_kind": "push", "event_name": "push", "before": "a7e336ab45d3934e789c412e0ec08763ef7ea06c",
    "after": "93ba66dd334cba69476228a1d85c3bdc4290798b", "ref": "refs/heads/master", "user_username": "jane",
    "project": {"path_with_namespace": "debian/hello", "web_url": "https://salsa.debian.org/debian/hello"},
    "commits": [{"id": "93ba66dd334cba69476228a1d85c3bdc4290798b", "message": "Fix typo in changelog\n",
                 "url": "https://salsa.debian.org/debian/hello/-/commit/93ba66dd334cba69476228a1d85c3bdc4290798b",
                 "author": {"name": "Jane Maintainer", "email": "jane@example.org"},
                 "added": [], "modified": ["debian/changelog"], "removed": []}],
    "total_commits_count": 1}).encode()


def webhook_body(data: bytes) -> list[Event]:
    """What the webhook does with a delivery's body (after the token and
    length checks): decode it, then read the push."""
    return webhook.gitlab_events(webhook.decode_body(data))


_OID = "93ba66dd334cba69476228a1d85c3bdc4290798b"
_PARENT = "d9dce48da46babed65355658eb648b9ff1552376"
_PUSH = push.Context(repo="debian/hello", path="/srv/git/debian/hello.git", agent="jane",
                     web_url="https://salsa.debian.org/debian/hello")


def git_object(value: tuple[str, bytes]) -> list[Event]:
    """A pushed commit or annotated tag object, as `git cat-file` gives its
    bytes (the pusher chose every one of them), through the hook's parsing
    and into the push's events."""
    kind, raw = value
    if kind == "commit":
        commit = parse_commit(_OID, raw)
        update = refs.RefUpdate(_PARENT, _OID, "refs/heads/master")
        facts = PushFacts([RefCommits(update, revs=[_OID])], {_OID: commit}, {}, {}, {_OID: "commit"})
    else:
        tag = parse_tag(_OID, raw)
        update = refs.RefUpdate("0" * 40, _OID, "refs/tags/debian/1.0-1")
        facts = PushFacts([RefCommits(update)], {}, {}, {_OID: tag}, {_OID: "tag"})
    return push.events(_PUSH, facts)


@functools.cache
def _git_object_samples() -> tuple[tuple[str, bytes], ...]:
    tag = _files("git", "annotated-tag-object.txt")[0]
    # Commits as git stores them, from the sample repository's log ("rev parent | author | subject").
    commits = []
    for line in _files("git", "hello-packaging.git-log.txt")[0].decode().splitlines():
        ids, _, rest = line.partition(" | ")
        if not rest:
            continue
        who, _, subject = rest.partition(" | ")
        parents = "".join(f"parent {p}\n" for p in ids.split()[1:])
        commits.append(("commit", (f"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n{parents}"
                                   f"author {who} 1795773251 +0000\ncommitter {who} 1795773251 +0000\n\n"
                                   f"{subject}\n").encode()))
    return (("tag", tag), *commits)


_IDENT = st.tuples(gen.words, gen.words, st.sampled_from([" 1795773251 +0000", "", " -1 +9999", " x"])).map(
    lambda t: f"{t[0]} <{t[1]}>{t[2]}")


@st.composite
def _git_object_documents(draw: st.DrawFn) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(["commit", "tag"]))
    names = ["tree", "parent", "author", "committer", "encoding", "gpgsig", "mergetag"] if kind == "commit" else \
        ["object", "type", "tag", "tagger"]
    values = {"tree": gen.oids, "parent": gen.oids, "object": gen.oids, "author": _IDENT, "committer": _IDENT,
              "tagger": _IDENT, "type": st.sampled_from(["commit", "tree", "blob", "tag", ""]),
              "encoding": gen.pick(["ISO-8859-1", "UTF-8", "x-unknown", "rot13", "idna", "utf-16", "x\x00y"],
                                   gen.words),
              "gpgsig": st.just("-----BEGIN PGP SIGNATURE-----\n \n iQ==\n -----END PGP SIGNATURE-----"),
              "mergetag": st.just("object " + _OID + "\n type commit\n tag v1\n"), "tag": gen.words}
    headers = draw(st.lists(st.sampled_from(names), min_size=1, max_size=6))
    head = "".join(f"{h} {draw(values[h])}\n" for h in headers)
    encoding = draw(st.sampled_from(["utf-8", "latin-1", "cp1252", "utf-16"]))
    message = draw(st.text(max_size=200)).encode(encoding, "replace")
    return kind, head.encode("utf-8", "surrogatepass") + b"\n" + message


def _git_object_inputs() -> st.SearchStrategy[tuple[str, bytes]]:
    samples = _git_object_samples()
    corpus = Corpus(tuple(raw for _, raw in samples),
                    (b"tree ", b"parent ", b"author ", b"committer ", b"encoding ", b"gpgsig ", b"\n ", b"object ",
                     b"type ", b"tag ", b"tagger ", b"<", b">", b" +0000", b"-----BEGIN PGP SIGNATURE-----",
                     b"-----BEGIN SSH SIGNATURE-----", b"\n\n"))
    real = st.sampled_from(samples).flatmap(lambda s: st.tuples(st.just(s[0]), mutants(corpus, st.just(s[1]))))
    generated = _git_object_documents()
    return _mix((5, real), (3, generated), (2, generated.flatmap(lambda g: st.tuples(st.just(g[0]),
                                                                                     mutants(corpus, st.just(g[1]))))),
                (1, st.tuples(st.sampled_from(["commit", "tag"]), _garbage())))


# --- wanna-build ------------------------------------------------------------------

_ZONES = st.sampled_from([UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=14)), None])
_COLUMN = st.one_of(
    gen.package_names, gen.words, st.sampled_from(["Installed", "Building", "(none)", "sid", "amd64"]),
    gen.words.map(lambda w: w.encode("utf-8", "surrogatepass")), st.binary(max_size=20), st.none(),
    st.integers(-1, 10**7), st.integers(), st.floats(), st.booleans(),
    st.builds(lambda d, z: d.replace(tzinfo=z), st.datetimes(), _ZONES),
)
_WHEN = st.one_of(st.builds(lambda d, z: d.replace(tzinfo=z), st.datetimes(), _ZONES),
                  st.builds(lambda d, z: d.replace(tzinfo=z), st.sampled_from([datetime.min, datetime.max]), _ZONES),
                  _COLUMN)


@st.composite
def _wannabuild_rows(draw: st.DrawFn) -> tuple[str, tuple[Any, ...]]:
    """(kind, row): a good row with a few columns as psycopg may also hand
    them over: text as bytes (wanna-build's databases are SQL_ASCII), in
    other encodings, NULL, another type, times in any zone or none; now
    and then a column more or less."""
    kind, good = draw(st.sampled_from(_wannabuild_samples()))
    row = list(good)
    for _ in range(draw(_FEW)):
        at = draw(st.integers(0, len(row) - 1))
        row[at] = draw(_WHEN if at in (0, len(row) - 1) else _COLUMN)
    cut = draw(st.sampled_from([0, 0, 0, 0, 0, -1, 1]))
    row = row[:cut] if cut < 0 else row + [None] * cut
    return kind, tuple(row)


def wannabuild_row(value: tuple[str, tuple[Any, ...]]) -> Event:
    kind, row = value
    cls = wb_rows.Transaction if kind == "transactions" else wb_rows.BuildResult
    return wb_rows.row_event(cls, "amd64", row, wb_rows.identity_digest(cls.identity(row)), 0)


@functools.cache
def _wannabuild_samples() -> tuple[tuple[str, tuple[Any, ...]], ...]:
    when = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    return (("transactions", (when, "hello", "sid", "2.10-3", "--take", "Needs-Build", "Building", "buildd_amd64",
                              "buildd_amd64", when)),
            ("transactions", (when, b"hello", b"sid", b"2.10-3", None, b"(none)", b"Needs-Build", b"dak", None,
                              when)),
            ("pkg_history", (when, "hello", "sid", "2.10-3", "successful", 63, 1048576, "x86-ubc-01", when)))


# --- the bus -----------------------------------------------------------------------

_ENVELOPE_KEYS = ("topic", "msg", "timestamp", "msg_id", "i", "username", "seq_id", "crypto", "signature",
                  "publisher", "certificate")


@functools.cache
def _frames_samples() -> tuple[tuple[bytes, bytes], ...]:
    folder = fixtures_dir() / "fedmsg"
    found = tuple((p.read_bytes(), p.with_name(p.name.replace("frame0", "frame1")).read_bytes())
                  for p in sorted(folder.glob("*.frame0.bin")))
    if not found:
        raise FileNotFoundError(f"no fedmsg frames in {folder} (set DEBPULSE_FIXTURES)")
    return found


def _frames_inputs() -> st.SearchStrategy[list[bytes]]:
    samples = _frames_samples()
    envelopes = tuple(json.loads(f1) for _, f1 in samples)
    bodies = Corpus(tuple(f1 for _, f1 in samples), (b'"seq_id":', b'"timestamp":', b'"topic":', b"1e999", b"NaN",
                                                     b"-Infinity", b"null", b"true", b'"\\ud800"', b"\\u0000",
                                                     b"99999999999999999999"),
                    nesting=((b"[", b"]"), (b'{"a":', b"}")), huge=(1 << 20) + 64)
    values = gen.json_values(_ENVELOPE_KEYS, ("org.debian.dev.dak.package.accept", "gpg", "openpgp-envelope"))
    trees = json_mutants(st.sampled_from(envelopes), values, st.sampled_from(_ENVELOPE_KEYS))
    with_topic = trees.map(lambda env: [str(env.get("topic", "")).encode("utf-8", "surrogatepass")
                                        if isinstance(env, dict) else b"", dumps(env)])
    real = st.sampled_from(samples).flatmap(lambda s: st.tuples(st.just(s[0]), mutants(bodies, st.just(s[1])))).map(
        list)
    generated = st.dictionaries(st.sampled_from(_ENVELOPE_KEYS), values, max_size=9).map(
        lambda env: [str(env.get("topic", "")).encode("utf-8", "surrogatepass"), dumps(env)])
    return _mix((4, real), (3, with_topic), (2, generated), (1, st.lists(_garbage(), max_size=4)),
                (1, st.tuples(_garbage(), mutants(bodies)).map(list)))


def _check_envelope(result: Any) -> None:
    expect(isinstance(result, dict), f"not an envelope: {result!r:.200}")


def _event_topics() -> list[str]:
    load_message_types()
    return sorted(_REGISTRY)


@functools.cache
def _real_event_items() -> tuple[dict[str, Any], ...]:
    """Events the adapters make from the real samples, as a client submits them."""
    items = []
    for data in _files("dak/mails", "*.eml"):
        try:
            found = dak_mail.parse_mail(data).events
        except InputError:
            continue
        items += [{"topic": e.topic, "body": e.body, "key": e.key, "origin": "sample"} for e in found]
    for data in _files("debbugs/mails", "*.eml"):
        try:
            found = bts_mail.parse_mail(data).events
        except InputError:
            continue
        items += [{"topic": e.topic, "body": bts_mail.with_status(e, None).body, "key": e.key} for e in found]
    items.append({"topic": "logger.log", "body": {"log": "hello"}})
    return tuple(json.loads(json.dumps(i)) for i in items)


def relay_submission(part: bytes) -> Event:
    """How the relay reads one part of a client's request (Relay._serve_batch):
    an Event checked against its message type, or Refused with the reason."""
    return relay.parse_submission(part)


def _relay_inputs() -> st.SearchStrategy[bytes]:
    items = _real_event_items()
    topics = _event_topics()
    values = gen.json_values(("topic", "body", "key", "origin", "source", "version", "bug", "log"), topics)
    generated = st.fixed_dictionaries({"topic": gen.pick(topics, gen.words), "body": values},
                                      optional={"key": values, "origin": values})
    trees = json_mutants(st.sampled_from(items), values,
                         st.sampled_from(["topic", "body", "key", "origin", "log", "source"]))
    corpus = Corpus(tuple(dumps(i) for i in items), (b'"topic":', b'"body":', b"NaN", b"1e999", b'"\\ud800"',
                                                     b"\\u0000", b"null"),
                    nesting=((b"[", b"]"), (b'{"a":', b"}")), huge=(1 << 20) + 64)
    return _mix((4, trees.map(dumps)), (3, generated.map(dumps)), (3, mutants(corpus)), (1, _garbage()))


# --- configuration -------------------------------------------------------------

CONFIG_TABLES: dict[str, Sequence[str]] = {
    t.name: sorted(t.keys) for t in (BUS, SUBSCRIBE, DNS, ANNOUNCE, SIGNER, DAK, WANNABUILD, DEBBUGS, GIT, TRIGGER,
                                     BRIDGE)
}
_CONFIG_STRINGS = ("dev", "stg", "production", "sequoia", "gnupg", "envelope", "fedmsg", "none", "NORMAL", "FULL",
                   "tcp://127.0.0.1:9940", "tcp://*:9940", "ipc://relay", "example.org", "192.0.2.1:53",
                   "0123456789ABCDEF0123456789ABCDEF01234567", "org.debian.*.dak.#", "#", "hmac-sha256",
                   "c2VjcmV0", "not base64!", "a..b", "-" * 70, "debpulse-relay")


@functools.cache
def _config_samples() -> tuple[bytes, ...]:
    paths = sorted((ROOT / "deploy" / "examples" / "etc-debpulse").glob("*/*.toml"))
    paths += sorted((ROOT / "deploy" / "dns").glob("*.toml.example"))
    return tuple(p.read_bytes() for p in paths)


def _like(sample: Any) -> st.SearchStrategy[Any]:
    """Values of the type of an example configuration's value."""
    if isinstance(sample, bool):
        return st.booleans()
    if isinstance(sample, int):
        return st.one_of(st.just(sample), st.integers(-1, 70_000), st.integers())
    if isinstance(sample, float):
        return st.one_of(st.just(sample), st.floats())
    if isinstance(sample, str):
        return st.one_of(st.just(sample), st.sampled_from(_CONFIG_STRINGS), gen.words)
    if isinstance(sample, list):
        items = [_like(x) for x in sample] or [gen.words]
        return st.lists(st.one_of(*items), max_size=3)
    return st.just(sample)


@functools.cache
def _config_typed() -> dict[str, dict[str, st.SearchStrategy[Any]]]:
    """Every table's keys, with values like the example configuration's."""
    found: dict[str, dict[str, list[Any]]] = {name: {k: [] for k in keys} for name, keys in CONFIG_TABLES.items()}
    for data in _config_samples():
        for name, table in tomllib.loads(data.decode()).items():
            tables = [(name, table)] if isinstance(table, dict) else [(name, t) for t in table]
            if name == "dns" and isinstance(table.get("announce"), dict):
                tables.append(("dns.announce", table["announce"]))
            for where, content in tables:
                for key, value in content.items():
                    if not isinstance(value, dict):
                        found.setdefault(where, {}).setdefault(key, []).append(value)
    return {name: {k: st.one_of(*[_like(v) for v in values]) if values else gen.words for k, values in keys.items()}
            for name, keys in found.items()}


def _config_inputs() -> st.SearchStrategy[bytes]:
    corpus = Corpus(_config_samples(), (b"[bus]\n", b"[[signer]]\n", b"[dns.announce]\n", b" = ", b'"', b"'''",
                                         b'"""', b"\\u0000", b"\\ud800", b"nan", b"inf", b"1979-05-27T07:32:00Z",
                                         b"[", b"]", b"{", b"}", b",", b".", b"true", b"0x7fffffffffffffff",
                                         b"99999999999999999999999", b"1e999", b"#"),
                    nesting=((b"[", b"]"), (b"a = {b = ", b"}"), (b"[[", b"]]")))
    documents = gen.toml_documents(_config_typed(), _CONFIG_STRINGS)
    return _mix((5, documents), (4, mutants(corpus)), (2, mutants(corpus, documents)), (1, _garbage()))


def configuration(data: bytes) -> tuple[Config, BusOptions, Policy, Announcement | None]:
    """One configuration file's bytes through the readers every program
    shares: the tables, [bus], the [[signer]] policy and the records of
    [dns.announce] (with the endpoint given, so that nothing is looked up;
    the TSIG key file it names is I/O, left out)."""
    config = merge_config([("debpulse.toml", parse_toml(data, "debpulse.toml"))])
    options = BusOptions.from_args(argparse.Namespace(), config, name="fuzz", own_key=True)
    policy = Policy.from_config(config)
    section = announce_section(config)
    announcement = None
    if section is not None:
        announcement = announcement_from(section, name="fuzz", endpoint="tcp://192.0.2.1:9940")
    return config, options, policy, announcement


def _check_configuration(result: Any) -> None:
    config, options, policy, announcer = result
    expect(isinstance(config, Config) and isinstance(options, BusOptions) and isinstance(policy, Policy),
           "configuration objects")
    expect(isinstance(options.relay_timeout, float) and isinstance(options.high_water_mark, int), "bus options")


@st.composite
def _endpoints_documents(draw: st.DrawFn) -> bytes:
    host = st.one_of(st.sampled_from(["relay.example.org", "192.0.2.1", "[2001:db8::1]", "*", ""]), gen.words)
    port = st.one_of(st.integers(0, 70000).map(str), gen.words)
    scheme = st.sampled_from(["tcp://", "ipc://", "udp://", ""])
    pair = st.tuples(st.sampled_from(["name", "fpr", "replay", "priority", "weight", "other"]),
                     st.one_of(st.integers(-1, 70000).map(str), gen.words)).map("=".join)
    lines = []
    for _ in range(draw(_FEW)):
        url = f"{draw(scheme)}{draw(host)}:{draw(port)}"
        lines.append(" ".join([url, *draw(st.lists(pair, max_size=4))]) + draw(st.sampled_from(["", " # x"])))
    return "\n".join(lines).encode("utf-8", "surrogatepass")


def endpoints_file(data: bytes) -> list[PublisherInfo]:
    return parse_endpoints_file(data, "endpoints")


def _check_endpoints(result: Any) -> None:
    expect(isinstance(result, list) and all(isinstance(p, PublisherInfo) for p in result), "publishers")
    for p in result:
        expect(0 <= p.priority <= 65535 and 0 <= p.weight <= 65535, f"priority or weight of {p!r:.200}")
        expect("\n" not in p.describe(), "describe() is one line")


def _endpoints_sample() -> bytes:
    return (ROOT / "deploy" / "dns" / "endpoints.example").read_bytes()


def _endpoints_inputs() -> st.SearchStrategy[bytes]:
    corpus = Corpus((_endpoints_sample(),),
                    (b"tcp://", b"ipc://", b" name=", b" fpr=", b" replay=", b" priority=", b" weight=", b"#",
                     b":", b"[", b"]", b"65536", b"\n"))
    return _mix((4, mutants(corpus)), (4, _endpoints_documents()), (1, _garbage()))


# --- the registry ----------------------------------------------------------------

TARGETS: tuple[Target, ...] = (
    Target("dak-mail", lambda data: dak_mail.parse_mail(data), InputError, _check_dak_mail, _dak_mail_inputs,
           "adapters/dak/mail.py parse_mail: one mail from dak", samples=lambda: _dak_corpus().samples),
    Target("dak-changes", dak_changes.parse_changes, InputError, _check_changes, _changes_inputs,
           "adapters/dak/changes.py parse_changes: a .changes from dak's queues",
           samples=lambda: _changes_corpus().samples),
    Target("dak-removals", removal_log, InputError, _check_events, _stanza_inputs,
           "adapters/dak/removals.py split_stanzas + parse_stanza: dak's removals.822 log",
           samples=lambda: _stanza_corpus().samples),
    Target("debbugs-mail", lambda data: bts_mail.parse_mail(data), InputError, _check_debbugs_mail,
           _debbugs_mail_inputs, "adapters/debbugs/mail.py parse_mail: one mail from bugs.debian.org",
           samples=lambda: _debbugs_corpus().samples),
    Target("debbugs-transcript", transcript, InputError, _check_transcript, _transcript_inputs,
           "adapters/debbugs/transcript.py parse_transcript: a control transcript's text and subject",
           samples=_transcript_samples),
    Target("debbugs-soap", soap_answer, soap.SoapError, _check_soap, _soap_inputs,
           "adapters/debbugs/soap.py read_answer: a SOAP::Lite answer to one of the client's methods",
           samples=_soap_samples),
    Target("git-hook-stdin", hook_stdin, InputError, _check_hook, lambda: _mix(
        (4, mutants(_hook_corpus())), (3, _hook_documents()), (2, mutants(_hook_corpus(), _hook_documents())),
        (1, _garbage())), "adapters/scm/refs.py split_saved + parse, gitobjects.parse_refs: post-receive stdin",
        samples=lambda: _hook_corpus().samples),
    Target("git-objects", git_object, InputError, _check_events, _git_object_inputs,
           "adapters/scm/gitobjects.py parse_commit, parse_tag, then push.events: a pushed commit or tag object",
           samples=_git_object_samples),
    Target("git-webhook", webhook_body, InputError, _check_events, _webhook_inputs,
           "adapters/scm/webhook.py decode_body + gitlab_events: a GitLab push webhook body",
           samples=lambda: (WEBHOOK_SAMPLE,)),
    Target("wannabuild-rows", wannabuild_row, InputError, check_event, lambda: _wannabuild_rows(),
           "adapters/wannabuild/rows.py row_event: a transactions or pkg_history row as psycopg gives it",
           samples=_wannabuild_samples),
    Target("envelope-frames", envelope.from_frames, envelope.MalformedFrame, _check_envelope, _frames_inputs,
           "emitters/envelope.py from_frames: a received ZeroMQ frame set",
           samples=lambda: [list(frames) for frames in _frames_samples()],
           explicit=([b"org.debian.dev.logger.log", b"[" * 100_000],)),
    Target("relay-submission", relay_submission, relay.Refused, check_event, _relay_inputs,
           "emitters/relay.py parse_submission: one part of a client's request to the relay",
           samples=lambda: [dumps(item) for item in _real_event_items()],
           explicit=(b"[" * 100_000, b'{"topic": "logger.log", "body": {"log": "x", "n": NaN}}')),
    Target("config-toml", configuration, ConfigError, _check_configuration, _config_inputs,
           "emitters/config.py parse_toml + merge_config, then [bus], [[signer]], [dns.announce]",
           samples=_config_samples),
    Target("endpoints-file", endpoints_file, ConfigError, _check_endpoints, _endpoints_inputs,
           "emitters/discovery.py parse_endpoints_file: the static endpoints file of a subscriber",
           samples=lambda: (_endpoints_sample(),)),
)
BY_NAME = {t.name: t for t in TARGETS}


def select(names: Iterable[str]) -> list[Target]:
    names = list(names)
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise KeyError(f"no fuzz target {', '.join(unknown)}; have {', '.join(BY_NAME)}")
    return [BY_NAME[n] for n in names] if names else list(TARGETS)


def short(value: Any, limit: int = 300) -> str:
    """An input, shown on one line, cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"

