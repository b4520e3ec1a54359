"""Every message type names the packages and people it concerns (what
`package=` and `user=` find) and the agent that caused it, on real samples."""

from __future__ import annotations

from pathlib import Path

from bridge.samples import git_events

from debpulse.adapters.dak.mail import parse_mail as dak_mail
from debpulse.adapters.debbugs.mail import parse_mail as bug_mail
from debpulse.emitters.messages import message_for, people


def _meaning(events) -> list[tuple[str, list[str], list[str], str | None]]:  # type: ignore[no-untyped-def]
    out = []
    for e in events:
        m = message_for(e.topic, e.body)
        out.append((e.topic, m.packages(), m.usernames(), m.agent()))
    return out


def test_people_are_debian_logins_or_addresses() -> None:
    assert people("Nathan Scott <nathans@debian.org>", "XFS Team <linux-xfs@vger.kernel.org>", "no address",
                  None, "NATHANS@debian.org") == ["nathans", "linux-xfs@vger.kernel.org"]


def test_dak_uploads_name_the_source_the_uploader_and_the_maintainer(shared_fixtures: Path) -> None:
    mail = shared_fixtures / "dak" / "mails" / "01-Accepted-announce-debian-devel-changes_hebcal_4.31-1_2022.eml"
    assert _meaning(dak_mail(mail.read_bytes()).events) == [
        ("dak.package.accept", ["hebcal"], ["bap", "spotter@cs.columbia.edu"], "bap")]


def test_debbugs_names_the_package_and_the_sender(shared_fixtures: Path) -> None:
    mails = shared_fixtures / "debbugs" / "mails"
    assert _meaning(bug_mail((mails / "bts-closed-by-done-mail_999743.eml").read_bytes()).events) == [
        ("debbugs.bug.close", ["xfsprogs"], ["bage"], "bage")]
    # A contributor without a Debian account is found by address.
    assert _meaning(bug_mail((mails / "bts-transcript_block_999879.eml").read_bytes()).events) == [
        ("debbugs.bug.control", ["xfsprogs"], ["helmut@subdivi.de"], "helmut@subdivi.de")]
    [(topic, packages, users, agent)] = _meaning(
        bug_mail((mails / "bts-transcript_reassign_1107480.eml").read_bytes()).events)
    assert {"xfsprogs", "e2fsprogs"} <= set(packages) and users == ["zeha"]


def test_wanna_build_names_the_package_and_the_buildd() -> None:
    update = {"architecture": "arm64", "package": "xfsprogs", "version": "6.1.0-1", "suite": "sid",
              "old_state": "Building", "new_state": "Built", "action": "--set-built", "user": "buildd_arm64-x",
              "real_user": "buildd", "time": "2024-05-01T10:00:00Z"}
    m = message_for("wannabuild.package.state.update", update)
    assert (m.packages(), m.usernames(), m.agent()) == (["xfsprogs"], ["buildd", "buildd_arm64-x"], "buildd_arm64-x")
    built = {"architecture": "arm64", "package": "xfsprogs", "version": "6.1.0-1", "suite": "sid",
             "result": "successful", "build_time": 300, "disk_space": 1000, "builder": "arm-conova-01",
             "time": "2024-05-01T10:00:00Z"}
    m = message_for("wannabuild.package.build.complete", built)
    assert (m.packages(), m.usernames(), m.agent()) == (["xfsprogs"], ["arm-conova-01"], "arm-conova-01")


def test_git_names_the_repository_the_pusher_and_the_author(shared_fixtures: Path, tmp_path: Path) -> None:
    meanings = _meaning(git_events(shared_fixtures, tmp_path))
    assert meanings and all(packages == ["hello"] and agent == "jane" for _, packages, _, agent in meanings)
    receives = [users for topic, _, users, _ in meanings if topic == "git.receive"]
    assert receives and all(users[0] == "jane" and len(users) == 2 and "@" in users[1] for users in receives)
