"""Every real debbugs mail gives the right event; bad mail is refused."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest

from debpulse.adapters.debbugs.mail import NOT_DEBBUGS, parse_mail, with_status
from debpulse.adapters.debbugs.messages import BugClose, BugControl, BugFollowup, BugForward, BugReport
from debpulse.emitters.errors import InputError

from .notices import they_closed

TYPES = {t.topic: t for t in (BugReport, BugFollowup, BugClose, BugForward, BugControl)}


def _one(path: Path):
    parsed = parse_mail(path.read_bytes(), str(path))
    assert len(parsed.events) == 1
    event = parsed.events[0]
    TYPES[event.topic].validate(event.body)
    return parsed.kind, event


def test_followup(bts_mails: Path) -> None:
    kind, e = _one(bts_mails / "bts-followup_979653.eml")
    assert (kind, e.topic) == ("followup", "debbugs.bug.followup")
    assert e.key == "debbugs:979653:followup:a7a0a016-c031-4532-1292-ad12d16415cf@sandeen.net"
    assert dict(e.body) == {
        "bug": 979653, "package": "src:xfsprogs", "source": "xfsprogs", "tags": [], "severity": None,
        "title": "xfsprogs: Incomplete debian/copyright", "from": "Eric Sandeen <sandeen@sandeen.net>",
        "message_id": "a7a0a016-c031-4532-1292-ad12d16415cf@sandeen.net",
        "enriched": False, "status": None, "via": "mail",
    }
    m = BugFollowup(e.body)
    assert m.summary() == "Bug #979653 (xfsprogs): followup from Eric Sandeen: xfsprogs: Incomplete debian/copyright"
    assert m.link() == "https://bugs.debian.org/979653"
    assert m.packages() == ["xfsprogs"]


def test_closed_by_done_mail(bts_mails: Path) -> None:
    kind, e = _one(bts_mails / "bts-closed-by-done-mail_999743.eml")
    assert (kind, e.topic) == ("closed", "debbugs.bug.close")
    # The -done mail's own Message-ID: the SOAP bug log has the same one.
    assert e.key == "debbugs:999743:close:b14e2072-5556-41b9-dfab-035b35f3d395@debian.org"
    b = e.body
    assert (b["bug"], b["package"], b["source"], b["tags"]) == (999743, "src:xfsprogs", "xfsprogs", ["ftbfs"])
    assert b["title"] == "xfsprogs FTBFS: .gitcensus: No such file or directory"
    assert b["from"] == "Bastian Germann <bage@debian.org>"
    assert b["version"] == "5.14.0-1"
    assert b["severity"] == "serious"  # from the attached original report
    m = BugClose(b)
    assert m.summary() == ("Bug #999743 (xfsprogs) closed by Bastian Germann (fixed in 5.14.0-1): "
                           "xfsprogs FTBFS: .gitcensus: No such file or directory")
    assert m.usernames() == ["bage"]


def test_closed_by_dak_upload(bts_mails: Path) -> None:
    _, e = _one(bts_mails / "bts-closed-by-dak-fixed-in_570704.eml")
    assert e.key == "debbugs:570704:close:E1l88IA-0006Cf-Py@fasolo.debian.org"
    b = e.body
    assert b["title"] == "duplicate /usr/share/doc/xfsprogs/changelog{,.Debian}.gz"
    # dak's "Done:" pseudo-header names who closed it, not "Debian FTP Masters".
    assert b["from"] == "Bastian Germann <bastiangermann@fishpost.de>"
    assert b["version"] == "5.10.0-3"
    assert b["severity"] == "minor"
    assert b["tags"] == ["confirmed"]


@pytest.mark.parametrize(("name", "bugs", "key_id", "packages"), [
    ("bts-transcript_forcemerge_1116595.eml", [1116595, 1128087], "1771602938-546197910-bts", ["xfsprogs"]),
    ("bts-transcript_reassign_1107480.eml", [1107480], "1749381763-1562-bts-zeha@debian.org",
     ["bugs.debian.org", "src:xfsprogs", "src:e2fsprogs"]),
    ("bts-transcript_tags-found_973061.eml", [890716, 973061, 981009], "1611630509-462-bts-anbe@debian.org",
     ["charybdis", "src:xfsprogs", "src:nototools"]),
    ("bts-transcript_block_999879.eml", [999879], "YZPJDbOH7tDyK5sb@alf.mars", ["src:xfsprogs"]),
    ("bts-transcript-with-errors_categorize.eml",
     [293275, 470706, 484069, 518637, 528356, 570704, 584256, 598908, 695640, 807879, 839129, 915124],
     "242c3aec-10b9-105d-c1e7-85d5ef00851b@fishpost.de", ["xfsprogs"]),
])
def test_transcripts(bts_mails: Path, name: str, bugs: list[int], key_id: str, packages: list[str]) -> None:
    kind, e = _one(bts_mails / name)
    assert (kind, e.topic) == ("transcript", "debbugs.bug.control")
    assert e.body["bugs"] == bugs
    assert e.key == f"debbugs:control:{key_id}"
    assert e.body["packages"] == packages
    assert e.body["changes"] and all("command" in c for c in e.body["changes"])


def test_control_summaries(bts_mails: Path) -> None:
    _, e = _one(bts_mails / "bts-transcript_forcemerge_1116595.eml")
    assert BugControl(e.body).summary() == (
        "Bug #1116595, #1128087: #1116595 found in xfsprogs/6.18.0-3, forcemerged with #1128087; "
        "#1128087 severity normal → important, found in xfsprogs/6.13.0-2")
    _, e = _one(bts_mails / "bts-transcript_reassign_1107480.eml")
    assert BugControl(e.body).summary() == "Bug #1107480: reassigned bugs.debian.org → src:e2fsprogs,src:xfsprogs"
    assert BugControl(e.body).usernames() == ["zeha"]
    _, e = _one(bts_mails / "bts-transcript-with-errors_categorize.eml")
    assert BugControl(e.body).summary().endswith("(6 errors)")
    assert BugControl(e.body).summary().startswith("12 bugs: #584256 tags +moreinfo; #470706 closed;")


def _rewrite(data: bytes, old: bytes, new: bytes) -> bytes:
    assert old in data
    return data.replace(old, new, 1)


def test_report_shares_its_key_with_soap(bts_mails: Path) -> None:
    # A report is the followup's shape with "report N" and no References
    # (scripts/process adds References only to followups).
    data = (bts_mails / "bts-followup_979653.eml").read_bytes()
    data = _rewrite(data, b"X-Debian-PR-Message: followup 979653", b"X-Debian-PR-Message: report 979653")
    start = data.index(b"References:")
    data = data[:start] + data[data.index(b"\n", start) + 1:]
    parsed = parse_mail(data)
    assert parsed.events[0].topic == "debbugs.bug.report"
    assert parsed.events[0].key == "debbugs:979653:report"
    assert BugReport(parsed.events[0].body).summary().startswith("Bug #979653 (xfsprogs): new report from Eric")


def test_report_to_submitter_is_a_followup(bts_mails: Path) -> None:
    data = _rewrite((bts_mails / "bts-followup_979653.eml").read_bytes(),
                    b"X-Debian-PR-Message: followup 979653", b"X-Debian-PR-Message: report 979653")
    assert parse_mail(data).events[0].topic == "debbugs.bug.followup"


@pytest.mark.parametrize("kind", ["ack", "ack-info", "ack-quiet", "ack-maintonly", "list"])
def test_acknowledgements_are_skipped(bts_mails: Path, kind: str) -> None:
    data = _rewrite((bts_mails / "bts-followup_979653.eml").read_bytes(),
                    b"X-Debian-PR-Message: followup", f"X-Debian-PR-Message: {kind}".encode())
    parsed = parse_mail(data)
    assert (parsed.kind, parsed.events) == (kind, [])


def test_bug_number_from_subject(bts_mails: Path) -> None:
    data = _rewrite((bts_mails / "bts-closed-by-done-mail_999743.eml").read_bytes(),
                    b"X-Debian-PR-Message: closed 999743", b"X-Debian-PR-Message: closed")
    assert parse_mail(data).events[0].body["bug"] == 999743


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "empty mail"),
    (b"X-Loop: owner@bugs.debian.org\nSubject: Bug#1: x\n\nhi\n", "without X-Debian-PR-Message"),
    (b"X-Loop: owner@bugs.debian.org\nX-Debian-PR-Message: frobnicated 1\n\nhi\n", "unknown X-Debian-PR-Message"),
    (b"X-Loop: owner@bugs.debian.org\nX-Debian-PR-Message: followup\nSubject: hi\n\nx\n", "no bug number"),
    (b"X-Loop: owner@bugs.debian.org\nX-Debian-PR-Message: transcript\nSubject: Processed: x\n\nhello\n",
     "Processing"),
    (b"X-Loop: owner@bugs.debian.org\nX-Debian-PR-Message: transcript\nSubject: Processed: x\n"
     b"Content-Type: image/png\n\nxx\n", "without a text part"),
])
def test_malformed_mail(data: bytes, reason: str) -> None:
    with pytest.raises(InputError, match=reason) as info:
        parse_mail(data)
    assert "\n" not in info.value.reason


def test_truncated_real_mail_is_refused(bts_mails: Path) -> None:
    data = (bts_mails / "bts-transcript_block_999879.eml").read_bytes()
    with pytest.raises(InputError):
        parse_mail(data[: data.index(b"> block")])


def test_mail_not_from_debbugs_is_skipped_not_refused(bts_mails: Path) -> None:
    # A bugs host's mailbox gets list mail too: no event, and not bad input.
    for data in (b"From: someone@example.org\nSubject: hello\n\nhi\n",
                 (bts_mails / "bts-followup_979653.eml").read_bytes().replace(b"X-Loop: owner@bugs.debian.org\n",
                                                                              b"")):
        parsed = parse_mail(data)
        assert (parsed.kind, parsed.events) == (NOT_DEBBUGS, [])


@pytest.mark.parametrize("with_parts", [True, False], ids=["attached", "text-only"])
def test_they_closed_names_who_closed_it_and_the_bug_title(bts_mails: Path, with_parts: bool) -> None:
    # dak closed 570704: the closing mail comes From the archive ("Debian FTP
    # Masters"), the person is in its Done: pseudo-header and Reply-To.
    data = they_closed(bts_mails / "bts-closed-by-dak-fixed-in_570704.eml", with_parts=with_parts)
    subject = " ".join(str(email.message_from_bytes(data, policy=email.policy.default)["Subject"]).split())
    assert subject.startswith("Bug#570704 closed by Debian FTP Masters <ftpmaster@ftp-master.debian.org> (reply to")
    kind, e = _one_of(data)
    assert (kind, e.topic) == ("they-closed", "debbugs.bug.close")
    assert e.body["from"] == "Bastian Germann <bastiangermann@fishpost.de>"
    assert e.body["title"] == "duplicate /usr/share/doc/xfsprogs/changelog{,.Debian}.gz"
    # The same key as the closer's own copy ("closed"): one message for both.
    assert e.key == "debbugs:570704:close:E1l88IA-0006Cf-Py@fasolo.debian.org"
    assert BugClose(e.body).summary().startswith("Bug #570704 (xfsprogs) closed by Bastian Germann")
    if with_parts:
        assert e.body["version"] == "5.10.0-3" and e.body["severity"] == "minor"


def test_they_closed_by_a_person_names_that_person(bts_mails: Path) -> None:
    kind, e = _one_of(they_closed(bts_mails / "bts-closed-by-done-mail_999743.eml"))
    assert e.body["from"] == "Bastian Germann <bage@debian.org>"
    assert e.body["title"] == "xfsprogs FTBFS: .gitcensus: No such file or directory"


def _one_of(data: bytes):
    parsed = parse_mail(data)
    assert len(parsed.events) == 1
    TYPES[parsed.events[0].topic].validate(parsed.events[0].body)
    return parsed.kind, parsed.events[0]


def test_enrichment_keeps_the_reported_title_and_carries_the_current_one(bts_mails: Path) -> None:
    _, e = _one(bts_mails / "bts-followup_979653.eml")
    status = {"severity": "wishlist", "tags": [], "done": None, "found_versions": [], "fixed_versions": [],
              "last_modified": 1610233561, "subject": "xfsprogs: incomplete debian/copyright (retitled)"}
    enriched = with_status(e, status)
    assert enriched.body["enriched"] is True and enriched.body["status"] == status
    assert enriched.body["severity"] == "wishlist"
    assert enriched.body["title"] == "xfsprogs: Incomplete debian/copyright"  # as the mail said
    assert enriched.body["status"]["subject"] == "xfsprogs: incomplete debian/copyright (retitled)"
    assert enriched.key == e.key
    plain = with_status(e, None)
    assert plain.body["enriched"] is False and plain.body["status"] is None
