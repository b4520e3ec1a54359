"""The sans-I/O parsers on dak's real mail and .changes (../shared/fixtures/dak),
on the dak mail embedded in a real debbugs mail, and on mails filled from
dak's templates for the kinds no archive holds."""

from __future__ import annotations

import email
from pathlib import Path

import pytest
from testbus import GpgKey

from debpulse.adapters.dak import messages  # noqa: F401  (registers the types)
from debpulse.adapters.dak.changes import parse_changes, signed_block
from debpulse.adapters.dak.mail import parse_mail
from debpulse.adapters.dak.removals import parse_stanza, split_stanzas
from debpulse.adapters.dak.signature import Keyring
from debpulse.emitters.errors import InputError
from debpulse.emitters.messages import message_type

from . import dakmail
from .conftest import Upload

HEBCAL_SHA256 = "811db2256cc31e32d28966a98163c69d14e2b426b667fe0ef575d19db4149ea3"


def _one(data: bytes, keyring: Keyring | None = None):
    result = parse_mail(data, keyring)
    assert result.ignored is None
    [event] = result.events
    cls = message_type(event.topic)
    cls.validate(event.body)
    return event, cls(event.body)


# -- real mails ---------------------------------------------------------------

MAILS = {
    "01-Accepted-announce-debian-devel-changes_hebcal_4.31-1_2022.eml": dict(
        topic="dak.package.accept", source="hebcal", version="4.31-1", architectures=["source"],
        suites=["unstable"], changes="hebcal_4.31-1_source.changes", urgency="medium", closes=[],
        changed_by="Barak A. Pearlmutter <bap@debian.org>", maintainer="Shaya Potter <spotter@cs.columbia.edu>",
        message_id="E1oS1p0-00BEVf-FV@fasolo.debian.org", nfiles=4,
        summary="Barak A. Pearlmutter uploaded hebcal 4.31-1 to unstable"),
    "02-Accepted-announce-debian-devel-changes_fcmp_2002-katie.eml": dict(
        topic="dak.package.accept", source="fcmp", version="0.14.20020310-1", architectures=["source", "all"],
        suites=["unstable"], changes="fcmp_0.14.20020310-1_all.changes", urgency="low", closes=[137318],
        changed_by="David Martínez Moreno <ender@debian.org>", maintainer="David Martínez Moreno <ender@debian.org>",
        message_id="E16lV6T-0002Ng-00@auric.debian.org", nfiles=4,
        summary="David Martínez Moreno uploaded fcmp 0.14.20020310-1 to unstable"),
    "03-ACCEPTED-maintainer_xfsprogs_5.6.0-1_amd64_2020.eml": dict(
        topic="dak.package.accept", source="xfsprogs", version="5.6.0-1", architectures=["source", "amd64"],
        suites=["unstable"], changes="xfsprogs_5.6.0-1_amd64.changes", urgency="low", closes=[],
        changed_by="Nathan Scott <nathans@debian.org>", maintainer="XFS Development Team <linux-xfs@vger.kernel.org>",
        message_id="E1jRn0J-000BIq-0V@fasolo.debian.org", nfiles=8,
        summary="Nathan Scott uploaded xfsprogs 5.6.0-1 to unstable"),
    "04-ACCEPTED-maintainer_xfsprogs_6.12.0-1_source_2024-pgpmime.eml": dict(
        topic="dak.package.accept", source="xfsprogs", version="6.12.0-1", architectures=["source"],
        suites=["unstable"], changes="xfsprogs_6.12.0-1_source.changes", urgency="low", closes=[],
        changed_by="Nathan Scott <nathans@debian.org>", maintainer="XFS Development Team <linux-xfs@vger.kernel.org>",
        message_id="E1tM6xT-003XOh-Bc@fasolo.debian.org", nfiles=4,
        summary="Nathan Scott uploaded xfsprogs 6.12.0-1 to unstable"),
}


@pytest.mark.parametrize("name", sorted(MAILS))
def test_accepted_mails(dak_samples: Path, name: str) -> None:
    want = dict(MAILS[name])
    event, msg = _one((dak_samples / "mails" / name).read_bytes())
    assert event.topic == want.pop("topic")
    assert msg.summary() == want.pop("summary")
    assert len(event.body["files"]) == want.pop("nfiles")
    for key, value in want.items():
        assert event.body[key] == value, key
    assert event.body["route"] == "mail"
    assert (event.body["signature"], event.body["signed_by"]) == ("unverified", None)
    assert event.key == f"dak:accept:unstable:{want['changes']}"
    assert msg.link() == f"https://tracker.debian.org/pkg/{want['source']}"
    assert msg.packages() == [want["source"]]


def test_file_checksums_from_the_mail(dak_samples: Path) -> None:
    event, _ = _one((dak_samples / "mails" / MAILS.__iter__().__next__()).read_bytes())
    assert event.body["files"][0] == {"name": "hebcal_4.31-1.dsc", "size": 1914, "sha256": HEBCAL_SHA256}
    # Format 1.7 (2002) has no SHA-256: reported as null, not invented.
    event, _ = _one((dak_samples / "mails" / "02-Accepted-announce-debian-devel-changes_fcmp_2002-katie.eml")
                    .read_bytes())
    assert {f["sha256"] for f in event.body["files"]} == {None}


def test_rejected_mail(dak_samples: Path) -> None:
    event, msg = _one((dak_samples / "mails" / "05-REJECTED_xfsprogs_5.14.0-1_source_2021.eml").read_bytes())
    assert event.topic == "dak.package.reject"
    assert event.body["source"] == "xfsprogs" and event.body["version"] == "5.14.0-1"
    assert event.body["changes"] == "xfsprogs_5.14.0-1_source.changes"
    assert event.body["rejection"] == "automatic"
    assert event.body["reason"].startswith("Version check failed:\nYour upload included the source package")
    assert event.body["reason"].endswith("must have a higher version than present in unstable.")
    assert "Please feel free" not in event.body["reason"]
    # The reason, not the heading dak puts above it ("Version check failed:").
    assert msg.summary() == ("xfsprogs 5.14.0-1 rejected: Your upload included the source package xfsprogs, "
                             "version 5.14.0-1, however unstable already has version 5.14.0-rc1-1.")
    assert event.key == "dak:reject::xfsprogs_5.14.0-1_source.changes:2021-11-19"


def test_fixed_in_mail_inside_a_real_debbugs_mail(shared_fixtures: Path) -> None:
    """dak's "Bug#570704: fixed in xfsprogs 5.10.0-3" as debbugs forwarded it: same key as the ACCEPTED mail."""
    outer = email.message_from_bytes(
        (shared_fixtures / "debbugs" / "mails" / "bts-closed-by-dak-fixed-in_570704.eml").read_bytes())
    [dak] = [p.get_payload(0) for p in outer.walk()
             if p.get_content_type() == "message/rfc822" and "fixed in" in str(p.get_payload(0)["Subject"])]
    event, msg = _one(dak.as_bytes())
    assert event.topic == "dak.package.accept"
    assert event.body["closes"] == [570704, 981361]
    assert event.key == "dak:accept:unstable:xfsprogs_5.10.0-3_source.changes"
    assert msg.summary() == "Bastian Germann uploaded xfsprogs 5.10.0-3 to unstable"


def test_debbugs_mail_is_not_dak_mail(shared_fixtures: Path) -> None:
    for path in sorted((shared_fixtures / "debbugs" / "mails").glob("*.eml")):
        assert parse_mail(path.read_bytes()).ignored == "not from dak", path.name


# -- real .changes ---------------------------------------------------------------

CHANGES = {
    "fcmp_0.14.20020310-1_all.changes": ("fcmp", "0.14.20020310-1", ["source", "all"], [137318], 4),
    "gawk_3.1.3-2_i386.changes": ("gawk", "1:3.1.3-2", ["source", "i386"], [204699, 204701], 3),
    "hebcal_4.31-1_source.changes": ("hebcal", "4.31-1", ["source"], [], 4),
    "krb5_1.2.2-4_m68k.changes": ("krb5", "1.2.2-4", ["m68k"], [94407], 10),
    "xfsprogs_5.10.0-3_source.changes": ("xfsprogs", "5.10.0-3", ["source"], [570704, 981361], 3),
    "xfsprogs_5.6.0-1_amd64.changes": ("xfsprogs", "5.6.0-1", ["source", "amd64"], [], 8),
    "xfsprogs_6.12.0-1_source.changes": ("xfsprogs", "6.12.0-1", ["source"], [], 4),
}


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_changes_files(dak_samples: Path, name: str) -> None:
    source, version, arches, closes, nfiles = CHANGES[name]
    c = parse_changes((dak_samples / "changes" / name).read_bytes())
    assert (c.source, c.version, c.architectures, c.closes, len(c.files)) == (source, version, arches, closes, nfiles)
    assert c.suites == ["unstable"]
    # The name dpkg-genchanges gives (used for announces that do not name the file).
    assert c.filename() == name


def test_changes_details(dak_samples: Path) -> None:
    c = parse_changes((dak_samples / "changes" / "xfsprogs_5.6.0-1_amd64.changes").read_bytes())
    assert c.binaries == ["xfslibs-dev", "xfsprogs", "xfsprogs-dbgsym", "xfsprogs-udeb"]
    assert "xfsprogs-udeb_5.6.0-1_amd64.udeb" in {f["name"] for f in c.files}
    krb5 = parse_changes((dak_samples / "changes" / "krb5_1.2.2-4_m68k.changes").read_bytes())
    assert krb5.changed_by == "Sam Hartman <hartmans@debian.org>"
    assert krb5.maintainer != krb5.changed_by  # a buildd upload
    fcmp = parse_changes((dak_samples / "changes" / "fcmp_0.14.20020310-1_all.changes").read_bytes())
    assert fcmp.maintainer == "David Martínez Moreno <ender@debian.org>"  # Latin-1 bytes


def test_mail_and_file_agree(dak_samples: Path) -> None:
    """The .changes extracted from mail 04 is the file dak keeps: same fields."""
    event, _ = _one((dak_samples / "mails" / "04-ACCEPTED-maintainer_xfsprogs_6.12.0-1_source_2024-pgpmime.eml")
                    .read_bytes())
    c = parse_changes((dak_samples / "changes" / "xfsprogs_6.12.0-1_source.changes").read_bytes())
    assert event.body["files"] == c.files and event.body["version"] == c.version


# -- bad input -----------------------------------------------------------------

def test_truncated_changes(dak_samples: Path) -> None:
    data = (dak_samples / "changes" / "xfsprogs_6.12.0-1_source.changes").read_bytes()
    with pytest.raises(InputError, match="truncated .changes: the OpenPGP signature is missing"):
        parse_changes(data[:700])
    with pytest.raises(InputError, match="truncated .changes: the OpenPGP signature is incomplete"):
        parse_changes(data[:-60])
    unsigned = signed_block(data)
    assert unsigned is not None
    body = data.split(b"\n\n", 1)[1].split(b"-----BEGIN PGP SIGNATURE-----")[0]
    with pytest.raises(InputError, match="no .*Files"):
        parse_changes(body[:200])


@pytest.mark.parametrize("garbage, reason", [
    (b"\x00\x01\x02 not a changes file", "truncated or not a .changes"),
    (b"Source: hello\nVersion: 1.0\n", "truncated or not a .changes"),
    (b"Format: 1.8\nSource: Hello World\nVersion: 1\nDistribution: unstable\nArchitecture: all\n"
     b"Maintainer: x <x@example.org>\nFiles:\n 0 1 a b c.deb\n", "Source 'Hello World'"),
    (b"Format: 1.8\nSource: hello\nVersion: 1\nDistribution: unstable\nArchitecture: all\n"
     b"Maintainer: x <x@example.org>\nCloses: 12 abc\nFiles:\n 0 1 a b c.deb\n", "'abc' is not a bug number"),
    (b"junk\n-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nSource: x\n", "text before the signed part"),
])
def test_bad_changes(garbage: bytes, reason: str) -> None:
    with pytest.raises(InputError, match=reason):
        parse_changes(garbage)


def test_garbage_mail_and_dak_mail_without_changes() -> None:
    with pytest.raises(InputError, match="not a mail"):
        parse_mail(b"\x00\xff garbage without any header line")
    bogus = (b"From: ftpmaster@ftp-master.debian.org\nX-Debian: DAK\nSubject: hello_1.0_all.changes ACCEPTED into "
             b"unstable\n\nnothing here\n")
    with pytest.raises(InputError, match="no signed .changes"):
        parse_mail(bogus)


# -- signatures ------------------------------------------------------------------

def test_signature_of_a_real_dpkg_upload(upload: Upload, uploader: GpgKey, ftpmaster: GpgKey) -> None:
    keyring = Keyring.load([uploader.public_file])
    c = parse_changes(upload.data, keyring)
    assert (c.signature.status, c.signature.signed_by) == ("verified", uploader.fingerprint)
    assert c.changed_by == "Łukasz Uploader <uploader@example.org>" and c.closes == [1000001]
    # Signed by someone the keyring does not know: unverified, not rejected.
    other = Keyring.load([ftpmaster.public_file])
    assert parse_changes(upload.data, other).signature.status == "unverified"
    # Without a keyring nothing is checked.
    assert parse_changes(upload.data).signature.status == "unverified"
    tampered = upload.data.replace(b"urgency=medium", b"urgency=high  ")
    with pytest.raises(InputError, match=f"bad signature by {uploader.fingerprint}"):
        parse_changes(tampered, keyring)
    assert parse_changes(tampered).signature.status == "unverified"


def test_current_accepted_mail_reports_the_signer(upload: Upload, uploader: GpgKey, ftpmaster: GpgKey) -> None:
    data = dakmail.accepted(upload.data, upload.name, upload.source, upload.version, upload.architecture,
                            ftpmaster_home=str(ftpmaster.home))
    assert b"multipart/signed" in data and b"quoted-printable" in data
    event, msg = _one(data, Keyring.load([uploader.public_file]))
    assert event.body["signature"] == "verified" and event.body["signed_by"] == uploader.fingerprint
    assert event.body["binaries"] == ["hello-debpulse"] and event.body["closes"] == [1000001]
    assert msg.summary() == "Łukasz Uploader uploaded hello-debpulse 1.0 to unstable"


def test_policy_queue_accept_is_not_an_accept(upload: Upload) -> None:
    data = dakmail.accepted(upload.data, upload.name, upload.source, upload.version, upload.architecture,
                            suite="stable->proposed-updates-new", action="policy")
    event, msg = _one(data)
    assert event.topic == "dak.package.new"
    assert event.body["queue"] == "proposed-updates-new" and event.body["suites"] == ["stable"]
    assert msg.summary() == "hello-debpulse 1.0 waits in proposed-updates-new"


# -- NEW, removals ------------------------------------------------------------------

def test_new_mail_current_and_old_style() -> None:
    name = "snowman_0.1-1_amd64.changes"
    event, msg = _one(dakmail.new(name, "snowman", "0.1-1", "source amd64"))
    assert event.topic == "dak.package.new"
    assert event.body["architectures"] == ["source", "amd64"] and event.body["changes"] == name
    assert msg.summary() == "snowman 0.1-1 is NEW"
    old, _ = _one(dakmail.new(name, "snowman", "0.1-1", "source amd64", current=False))
    assert (old.body["source"], old.body["version"]) == ("snowman", "0.1-1")
    assert old.key == event.key


ROWS = [("hello", "2.10-3", "source, amd64, i386"), ("hello-doc", "2.10-3", "all")]


def test_removal_mail_and_log_give_one_key() -> None:
    mail = dakmail.removal(123456, ROWS, ["unstable"], "RoQA; orphaned, dead upstream", ["hello"])
    event, msg = _one(mail)
    assert event.topic == "dak.package.remove"
    assert event.body["sources"] == [{"name": "hello", "version": "2.10-3"}]
    assert event.body["binaries"] == [
        {"name": "hello", "version": "2.10-3", "architectures": ["amd64", "i386"]},
        {"name": "hello-doc", "version": "2.10-3", "architectures": ["all"]},
    ]
    assert event.body["closes"] == [123456] and event.body["reason"] == "RoQA; orphaned, dead upstream"
    assert msg.summary() == "Removed hello 2.10-3 from unstable"
    assert msg.packages() == ["hello", "hello-doc"]
    stanza = dakmail.removal_stanza(ROWS, ["unstable"], "RoQA; orphaned, dead upstream", [123456])
    logged = parse_stanza(stanza)
    message_type(logged.topic).validate(logged.body)
    assert logged.key == event.key
    assert (logged.body["sources"], logged.body["binaries"]) == (event.body["sources"], event.body["binaries"])


def test_removal_log_stanzas() -> None:
    one = dakmail.removal_stanza(ROWS, ["stable", "testing", "unstable"], "first line\nsecond line", [1, 2])
    two = dakmail.removal_stanza([("gawk", "1:3.1.3-2", "i386")], ["unstable"], "[auto-cruft] NBS", [])
    parts = split_stanzas(one + two + b"Date: Fri, 27 Nov 2026\nFtpmaster: x\n")  # the third is being written
    assert [end for _, end in parts] == [len(one), len(one) + len(two)]
    first = parse_stanza(parts[0][0])
    assert first.body["suites"] == ["stable", "testing", "unstable"]
    assert first.body["reason"] == "first line\nsecond line" and first.body["closes"] == [1, 2]
    second = parse_stanza(parts[1][0])
    assert second.body["sources"] == [] and second.body["binaries"] == [
        {"name": "gawk", "version": "1:3.1.3-2", "architectures": ["i386"]}]
    assert message_type(second.topic)(second.body).summary() == "Removed gawk 1:3.1.3-2 (i386) from unstable"
    with pytest.raises(InputError, match="removes nothing"):
        parse_stanza(b"Date: x\nSuite: unstable\nReason: nothing\n")
