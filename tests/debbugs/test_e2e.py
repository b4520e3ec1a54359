"""End to end: debpulse-debbugs as a real process, a real relay, a real
subscriber verifying signatures, mail delivered into a real Maildir, and
the local SOAP server answering with the recorded responses."""

from __future__ import annotations

import json
import mailbox
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from testbus import start_ready

from .notices import they_closed
from .soapserver import SoapServer

ADAPTER = [sys.executable, "-m", "debpulse.adapters.debbugs.cli"]


def _followup_as(bts_mails: Path, bug: int) -> bytes:
    """The real followup of bug 979653 renumbered to `bug`, a bug whose
    status was recorded (no recorded status exists for 979653)."""
    data = (bts_mails / "bts-followup_979653.eml").read_bytes()
    return data.replace(b"979653", str(bug).encode())


def _report_as(bts_mails: Path, bug: int) -> bytes:
    data = _followup_as(bts_mails, bug).replace(b"X-Debian-PR-Message: followup", b"X-Debian-PR-Message: report")
    start = data.index(b"References:")
    return data[:start] + data[data.index(b"\n", start) + 1:]


class Adapter:
    """debpulse-debbugs running as its own process, stopped by PID; ready
    (READY=1) once it watches the Maildir and its backlog had a first pass."""

    def __init__(self, env: dict[str, str], *args: str, log: Path) -> None:
        self.log = log
        self.proc = start_ready([*ADAPTER, "-v", *args], env, log)

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.log.read_text()


def _wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def env(bus) -> dict[str, str]:
    return {**os.environ, **bus.env}


LIST_MAIL = (b"From: someone@example.org\nTo: debian-devel@lists.debian.org\nSubject: not from debbugs\n"
             b"List-Id: <debian-devel.lists.debian.org>\nMessage-ID: <list-1@example.org>\n\nhello\n")
# From debbugs (its X-Loop) but saying nothing it could mean: bad input.
BROKEN = b"X-Loop: owner@bugs.debian.org\nSubject: Bug#1: x\nMessage-ID: <broken@example.org>\n\nhi\n"


def test_maildir_to_subscriber_enriched_and_bad_mail_aside(bus, env, soap_server: SoapServer, bts_mails: Path,
                                                          tmp_path: Path) -> None:
    sub = bus.subscriber("")
    box = mailbox.Maildir(tmp_path / "Maildir", create=True)
    box.add(LIST_MAIL)
    box.add(BROKEN)
    box.add(_followup_as(bts_mails, 770490))
    adapter = Adapter(env, "--soap-url", soap_server.url, "maildir", str(tmp_path / "Maildir"),
                      log=tmp_path / "adapter.log")
    try:
        [got] = sub.wait(1)
        # Delivered while the adapter watches: the transcript of a control mail,
        # then debbugs' notice to a submitter that dak closed their bug.
        box.add((bts_mails / "bts-transcript_forcemerge_1116595.eml").read_bytes())
        [control] = sub.wait(1)
        box.add(they_closed(bts_mails / "bts-closed-by-dak-fixed-in_570704.eml"))
        [closed] = sub.wait(1)
        # A mail moves to cur/ once its event is handed over, or once it is known to have none.
        _wait_for(lambda: len(list((tmp_path / "Maildir" / "cur").iterdir())) == 4)
    finally:
        log = adapter.stop()
    assert got.verdict.ok, got.verdict.reason
    assert got.topic == "org.debian.dev.debbugs.bug.followup"
    assert got.body["bug"] == 770490 and got.body["via"] == "mail"
    assert got.body["enriched"] is True
    assert got.body["status"]["severity"] == "grave"
    assert got.body["status"]["last_modified"] == 1418418204
    # The title the mail carried; today's title (SOAP's) is in the status.
    assert got.summary == "Bug #770490 (xfsprogs): followup from Eric Sandeen: xfsprogs: Incomplete debian/copyright"
    assert got.body["status"]["subject"] == "iceweasel: WebM loading crashes iceweasel"
    assert ("get_status", [[770490]]) in soap_server.calls

    assert control.verdict.ok and control.topic == "org.debian.dev.debbugs.bug.control"
    assert control.summary.startswith("Bug #1116595, #1128087: #1116595 found in xfsprogs/6.18.0-3")

    assert closed.verdict.ok and closed.topic == "org.debian.dev.debbugs.bug.close"
    assert closed.body["from"] == "Bastian Germann <bastiangermann@fishpost.de>"
    assert closed.summary == ("Bug #570704 (xfsprogs) closed by Bastian Germann (fixed in 5.10.0-3): "
                              "duplicate /usr/share/doc/xfsprogs/changelog{,.Debian}.gz")

    # Only the broken debbugs mail is aside with its reason; the list mail is
    # skipped and filed as read with the good ones.
    quarantine = Path(bus.env["DEBPULSE_STATE_DIR"]) / "debbugs" / "quarantine"
    reasons = [p.read_text().strip() for p in quarantine.glob("*.reason")]
    assert reasons == ["debbugs mail without X-Debian-PR-Message"], log
    cur = [(tmp_path / "Maildir" / "cur" / n).read_bytes() for n in os.listdir(tmp_path / "Maildir" / "cur")]
    assert LIST_MAIL in cur and len(cur) == 4
    assert list((tmp_path / "Maildir" / "new").iterdir()) == []
    assert "rejected" in log and "not a debbugs mail" not in log


def test_soap_down_publishes_not_enriched(bus, env, bts_mails: Path, tmp_path: Path) -> None:
    sub = bus.subscriber("org.debian.dev.debbugs")
    data = (bts_mails / "bts-closed-by-done-mail_999743.eml").read_bytes()
    dead = "http://127.0.0.1:9/soap.cgi"  # discard port: nothing listens
    proc = subprocess.run([*ADAPTER, "--soap-url", dead, "mail"], input=data, env=env, capture_output=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    [got] = sub.wait(1)
    assert got.verdict.ok and got.topic == "org.debian.dev.debbugs.bug.close"
    assert got.body["enriched"] is False and got.body["status"] is None
    assert got.body["from"] == "Bastian Germann <bage@debian.org>"
    assert b"no status for bug 999743" in proc.stderr


def test_poller_sees_a_bug_whose_mail_never_came_and_mail_does_not_repeat_it(
        bus, env, soap_server: SoapServer, bts_mails: Path, tmp_path: Path) -> None:
    sub = bus.subscriber("org.debian.dev.debbugs")
    position = Path(bus.env["DEBPULSE_STATE_DIR"]) / "debbugs" / "reconcile.json"
    position.parent.mkdir(parents=True)
    position.write_text(json.dumps({"newest": 770489, "watch": {}}))
    # The common options after the subcommand, as before it.
    poll = subprocess.run([*ADAPTER, "poll", "--once", "--soap-url", soap_server.url, "-v"], env=env,
                          capture_output=True, timeout=60)
    assert poll.returncode == 0, poll.stderr.decode()
    [got] = sub.wait(1)
    assert got.verdict.ok and got.topic == "org.debian.dev.debbugs.bug.report"
    assert got.body["bug"] == 770490 and got.body["via"] == "soap"
    # Who filed it: get_status' originator.
    assert got.body["from"] == "Nils Dagsson Moskopp <nils+debian-reportbug@dieweltistgarnichtso.net>"
    assert got.summary == ("Bug #770490 (iceweasel): new report from Nils Dagsson Moskopp: "
                           "iceweasel: WebM loading crashes iceweasel")
    assert b"debbugs.bug.report debbugs:770490:report" in poll.stderr  # -v after the subcommand counted
    assert json.loads(position.read_text())["newest"] == 771489

    # The report mail arrives late: same key, so no second message.
    late = subprocess.run([*ADAPTER, "-v", "--soap-url", soap_server.url, "mail"], input=_report_as(bts_mails, 770490),
                          env=env, capture_output=True, timeout=60)
    assert late.returncode == 0, late.stderr.decode()
    assert b"debbugs.bug.report debbugs:770490:report" in late.stderr
    # ... while a followup (another key) does come through.
    follow = subprocess.run([*ADAPTER, "--no-soap", "mail"], input=_followup_as(bts_mails, 770490), env=env,
                            capture_output=True, timeout=60)
    assert follow.returncode == 0, follow.stderr.decode()
    rest = sub.wait(2, timeout=3)
    assert [r.topic for r in rest] == ["org.debian.dev.debbugs.bug.followup"]


def test_poll_once_on_a_fresh_state_says_where_it_starts(bus, env, soap_server: SoapServer) -> None:
    position = Path(bus.env["DEBPULSE_STATE_DIR"]) / "debbugs" / "reconcile.json"
    poll = subprocess.run([*ADAPTER, "poll", "--once", "--soap-url", soap_server.url], env=env,
                          capture_output=True, text=True, timeout=60)  # no -v
    assert poll.returncode == 0, poll.stderr
    assert "starting after bug 799273, the newest now" in poll.stderr
    assert json.loads(position.read_text())["newest"] == 799273
    again = subprocess.run([*ADAPTER, "poll", "--once", "--soap-url", soap_server.url], env=env,
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "starting after" not in again.stderr  # said once, on the first round


def test_relay_down_mail_is_kept_and_sent_later(bus, env, bts_mails: Path, tmp_path: Path) -> None:
    box = mailbox.Maildir(tmp_path / "Maildir", create=True)
    bus.stop()
    box.add((bts_mails / "bts-transcript_reassign_1107480.eml").read_bytes())
    adapter = Adapter(env, "--no-soap", "maildir", str(tmp_path / "Maildir"), log=tmp_path / "adapter.log")
    try:
        # The relay client falls back to its spool, or the mail waits in new/:
        # either way nothing is lost, and it arrives once the relay is back.
        bus.start()
        sub = bus.subscriber("org.debian.dev.debbugs")
        got = sub.wait(1, timeout=20)
    finally:
        log = adapter.stop()
    assert [g.topic for g in got] == ["org.debian.dev.debbugs.bug.control"], log
    assert got[0].summary == "Bug #1107480: reassigned bugs.debian.org → src:e2fsprogs,src:xfsprogs"


def test_bad_usage_is_one_line_exit_2(env, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[debbugs]\nwatch = ['x']\nsoap_url = 'http://127.0.0.1:9/'\n")
    for args in (["maildir", "--bogus"], ["--config", str(bad), "poll", "--once"],
                 ["--config", str(tmp_path / "missing.toml"), "mail"]):
        proc = subprocess.run([*ADAPTER, *args], env=env, capture_output=True, timeout=30, input=b"")
        assert proc.returncode == 2, (args, proc.stderr)
        assert len(proc.stderr.decode().strip().splitlines()) == 1, proc.stderr
        assert b"Traceback" not in proc.stderr
    help_text = subprocess.run([*ADAPTER, "--help"], env=env, capture_output=True, timeout=30).stdout
    assert b"debpulse-debbugs maildir" in help_text
