"""Every real control transcript gives the right changes and errors."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest

from debpulse.adapters.debbugs.transcript import parse_command, parse_transcript, requested_changes
from debpulse.emitters.errors import InputError


def _transcript(path: Path):
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    return parse_transcript(msg.get_content(), str(msg["Subject"]))


def _strip(changes):
    return [{k: v for k, v in c.items() if k != "command"} for c in changes]


def test_forcemerge_with_severity_and_found(bts_mails: Path) -> None:
    t = _transcript(bts_mails / "bts-transcript_forcemerge_1116595.eml")
    assert t.subject == "forcibly merging 1116595 1128087"
    assert t.declared_errors == 0 and t.errors == []
    assert t.bugs == [1116595, 1128087]
    assert _strip(t.changes) == [
        {"bug": 1116595, "action": "found", "versions": ["xfsprogs/6.18.0-3"]},
        {"bug": 1128087, "action": "severity", "from": "normal", "to": "important"},
        {"bug": 1128087, "action": "found", "versions": ["xfsprogs/6.13.0-2"]},
        {"bug": 1116595, "action": "forcemerge", "bugs": [1116595, 1128087]},
    ]
    assert {c["command"] for c in t.changes} == {"forcemerge 1116595  1128087"}
    assert t.bug_packages == {1116595: "xfsprogs", 1128087: "xfsprogs"}


def test_reassign_to_two_source_packages(bts_mails: Path) -> None:
    t = _transcript(bts_mails / "bts-transcript_reassign_1107480.eml")
    assert _strip(t.changes) == [
        {"bug": 1107480, "action": "reassign", "from": "bugs.debian.org", "to": "src:e2fsprogs,src:xfsprogs"},
    ]
    # "Ignoring request to alter found versions ... to the same values" is no change and no error.
    assert t.errors == []


def test_tags_found_and_release_tags(bts_mails: Path) -> None:
    t = _transcript(bts_mails / "bts-transcript_tags-found_973061.eml")
    assert _strip(t.changes) == [
        {"bug": 973061, "action": "tags", "added": ["patch"], "removed": []},
        {"bug": 981009, "action": "found", "versions": ["charybdis/4.1.2-1"]},
        {"bug": 890716, "action": "tags", "added": ["bullseye", "sid", "buster"], "removed": []},
    ]
    assert t.bugs == [890716, 973061, 981009]
    # The {Done: ...} of a closed bug does not hide its title.
    assert t.bug_titles[890716].startswith("xfsprogs: FTBFS with glibc 2.27")


def test_control_at_submit_block_resolves_minus_one(bts_mails: Path) -> None:
    t = _transcript(bts_mails / "bts-transcript_block_999879.eml")
    assert [c.line for c in t.commands] == ["block -1 by 999743"]
    assert t.commands[0].bug == -1
    assert _strip(t.changes) == [{"bug": 999879, "action": "block", "by": [999743]}]
    assert t.bugs == [999879]


def test_errors_per_command(bts_mails: Path) -> None:
    t = _transcript(bts_mails / "bts-transcript-with-errors_categorize.eml")
    assert t.declared_errors == 6
    assert len(t.errors) == t.declared_errors
    assert [(e["bug"], e["message"]) for e in t.errors] == [
        (484069, "Unknown tag/s: confirm."),
        (528356, "Unknown tag/s: confirm."),
        (570704, "Unknown tag/s: confirm."),
        (915124, "Unknown tag/s: confirm."),
        (293275, "Unknown tag/s: confirm."),
        (518637, "Unknown tag/s: confirm."),
    ]
    assert _strip(t.changes) == [
        {"bug": 584256, "action": "tags", "added": ["moreinfo"], "removed": []},
        {"bug": 470706, "action": "close"},
        {"bug": 598908, "action": "fixed", "versions": ["xfsprogs/5.10.0-2"]},
        {"bug": 598908, "action": "close"},
        {"bug": 518637, "action": "found", "versions": ["xfsprogs/5.10.0-2"]},
        {"bug": 695640, "action": "tags", "added": ["patch"], "removed": []},
        {"bug": 807879, "action": "tags", "added": ["wontfix"], "removed": []},
        {"bug": 839129, "action": "tags", "added": ["moreinfo"], "removed": []},
    ]
    # A command can both fail and change nothing else: 518637 had a found and a failed tag.
    by_command = {c.line: c for c in t.commands}
    assert by_command["tags 518637 confirm"].changes == []
    assert by_command["found 518637 5.10.0-2"].errors == []


# The action strings of lib/Debbugs/Control.pm that the real samples do not
# show, one line each as debbugs prints them.
@pytest.mark.parametrize(("command", "line", "expected"), [
    ("tags 1 - moreinfo", "Removed tag(s) moreinfo.", {"action": "tags", "added": [], "removed": ["moreinfo"]}),
    ("tags 1 = a b", "Added tag(s) a; removed tag(s) c and d.",
     {"action": "tags", "added": ["a"], "removed": ["c", "d"]}),
    ("severity 1 grave", "Severity set to 'grave'", {"action": "severity", "from": None, "to": "grave"}),
    ("retitle 1 new; title", "Changed Bug title to 'new; title' from 'old'.",
     {"action": "retitle", "from": "old", "to": "new; title"}),
    ("owner 1 a@b", "Owner recorded as a@b.", {"action": "owner", "from": None, "to": "a@b"}),
    ("owner 1 c@d", "Owner changed from a@b to c@d.", {"action": "owner", "from": "a@b", "to": "c@d"}),
    ("noowner 1", "Removed annotation that Bug was owned by a@b.", {"action": "noowner", "from": "a@b"}),
    ("unblock 1 by 2 3", "Removed blocking bug(s) of 1: 2 and 3", {"action": "unblock", "by": [2, 3]}),
    ("notfound 1 1.0", "No longer marked as found in versions pkg/1.0.",
     {"action": "notfound", "versions": ["pkg/1.0"]}),
    ("notfixed 1 1.0", "No longer marked as fixed in versions pkg/1.0.",
     {"action": "notfixed", "versions": ["pkg/1.0"]}),
    ("reopen 1", "Bug reopened", {"action": "reopen"}),
    ("forwarded 1 https://x/1", "Set Bug forwarded-to-address to 'https://x/1'.",
     {"action": "forwarded", "from": None, "to": "https://x/1"}),
    ("notforwarded 1", "Unset Bug forwarded-to-address", {"action": "notforwarded"}),
    ("affects 1 + foo", "Added indication that 1 affects foo", {"action": "affects", "added": ["foo"], "removed": []}),
    ("summary 1 5", "Summary recorded from message bug 1 message 5",
     {"action": "summary", "field": "summary", "message_bug": 1, "message": 5}),
    ("submitter 1 a@b", "Changed Bug submitter to 'a@b' from 'c@d'.",
     {"action": "submitter", "from": "c@d", "to": "a@b"}),
    ("merge 1 2", "Merged 1 2", {"action": "merge", "bugs": [1, 2]}),
])
def test_other_actions(command: str, line: str, expected: dict) -> None:
    text = f"Processing commands for control@bugs.debian.org:\n\n> {command}\nBug #1 [pkg] title\n{line}\n> thanks\n"
    t = parse_transcript(text, "Processed: x")
    assert _strip(t.changes) == [{"bug": 1, **expected}]


def test_unmerge_and_found_that_reopens() -> None:
    text = (
        "Processing commands for control@bugs.debian.org:\n\n"
        "> unmerge 7\nBug #7 [pkg] title\nBug #8 [pkg] title\nDisconnected #7 from all other report(s).\n"
        "> found 9 2.0\nBug #9 {Done: A <a@b>} [pkg] t\nMarked as found in versions pkg/2.0 and reopened.\n"
    )
    assert _strip(parse_transcript(text).changes) == [
        {"bug": 7, "action": "unmerge"},
        {"bug": 9, "action": "found", "versions": ["pkg/2.0"]},
        {"bug": 9, "action": "reopen"},
    ]


def test_not_a_transcript() -> None:
    with pytest.raises(InputError, match="Processing"):
        parse_transcript("Hello,\n\nthis is not a transcript.\n")


def test_requested_changes_from_commands() -> None:
    assert parse_command("tags 973061 + patch") == ("tags", 973061, "+ patch")
    assert parse_command("forcemerge 1116595  1128087")[:2] == ("forcemerge", 1116595)
    assert parse_command("thanks") == (None, None, "thanks")
    assert requested_changes("tags", 5, "+ patch - moreinfo") == [
        {"bug": 5, "action": "tags", "requested": True, "added": ["patch"], "removed": ["moreinfo"]}]
    assert requested_changes("merge", 5, "7 6")[0]["bugs"] == [5, 6, 7]
