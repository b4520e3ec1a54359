"""The reconciliation poller against the local SOAP server, and the keys it
shares with the mail path."""

from __future__ import annotations

import base64
import email
import email.policy
from pathlib import Path

import pytest

from debpulse.adapters.common.position import Position
from debpulse.adapters.debbugs import soap
from debpulse.adapters.debbugs.client import DebbugsClient
from debpulse.adapters.debbugs.mail import parse_mail
from debpulse.adapters.debbugs.messages import BugClose, BugControl, BugFollowup, BugForward, BugReport
from debpulse.adapters.debbugs.reconcile import Reconciler, control_event, record_events
from debpulse.emitters.errors import EmitError
from debpulse.emitters.event import Event

from .soapserver import SoapServer

TYPES = {t.topic: t for t in (BugReport, BugFollowup, BugClose, BugForward, BugControl)}


class Handed:
    """Records what a source hands over; `fail_on` makes one key fail once."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.fail_on: str | None = None

    def emit(self, event: Event) -> None:
        TYPES[event.topic].validate(event.body)
        if event.key == self.fail_on:
            self.fail_on = None
            raise EmitError("relay down")
        self.events.append(event)

    def close(self) -> None:
        pass


def _reconciler(server: SoapServer, path: Path, handed: Handed, **kw) -> Reconciler:
    client = DebbugsClient(server.url, timeout=5, attempts=1)
    return Reconciler(client, handed, Position(path), **kw)


def test_first_round_only_records_where_it_starts(soap_server: SoapServer, tmp_path: Path) -> None:
    handed = Handed()
    assert _reconciler(soap_server, tmp_path / "pos.json", handed).poll_once() == 0
    assert Position(tmp_path / "pos.json").load()["newest"] == 799273
    assert handed.events == []


def test_new_bug_without_mail(soap_server: SoapServer, tmp_path: Path) -> None:
    pos = Position(tmp_path / "pos.json")
    pos.save({"newest": 770489, "watch": {}})
    handed = Handed()
    r = _reconciler(soap_server, pos.path, handed, catch_up=1000)
    assert r.poll_once() == 1
    [event] = handed.events
    assert event.topic == "debbugs.bug.report" and event.key == "debbugs:770490:report"
    b = event.body
    assert (b["bug"], b["package"], b["severity"], b["via"], b["enriched"]) == (770490, "iceweasel", "grave", "soap",
                                                                                  True)
    assert b["title"] == "iceweasel: WebM loading crashes iceweasel"
    assert b["status"]["found_versions"] == ["iceweasel/31.2.0esr-3"]
    # get_status says who filed it: the summary names them, not "someone".
    assert b["from"] == "Nils Dagsson Moskopp <nils+debian-reportbug@dieweltistgarnichtso.net>"
    assert BugReport(b).summary() == "Bug #770490 (iceweasel): new report from Nils Dagsson Moskopp: " \
                                     "iceweasel: WebM loading crashes iceweasel"
    # 1000 numbers asked, in two batches; the position moved past all of them.
    assert [len(args[0]) for m, args in soap_server.calls if m == "get_status"] == [500, 500]
    assert pos.load()["newest"] == 771489
    # A restart goes on from there: nothing repeated.
    handed2 = Handed()
    _reconciler(soap_server, pos.path, handed2, catch_up=1000).poll_once()
    assert handed2.events == [] and pos.load()["newest"] == 772489


def test_a_non_ascii_originator_comes_base64_and_is_decoded(soap_server: SoapServer, tmp_path: Path) -> None:
    # SOAP::Lite sends a string that is not ASCII as xsd:base64Binary; the
    # recordings have none, so one is made from the real answer for 770490.
    name = "testGetStatusAffects"
    recorded = soap_server.responses[name]
    old = b'<originator xsi:type="xsd:string">Nils Dagsson Moskopp &lt;nils+debian-reportbug@dieweltistgarnichtso.net' \
          b'&gt;</originator>'
    reporter = "Łukasz Reporter <reporter@example.org>"
    new = b'<originator xsi:type="xsd:base64Binary">' + base64.b64encode(reporter.encode()) + b"</originator>"
    assert old in recorded
    soap_server.responses[name] = recorded.replace(old, new)
    try:
        pos = Position(tmp_path / "pos.json")
        pos.save({"newest": 770489, "watch": {}})
        handed = Handed()
        assert _reconciler(soap_server, pos.path, handed, catch_up=1).poll_once() == 1
    finally:
        soap_server.responses[name] = recorded
    [event] = handed.events
    assert event.body["from"] == reporter and event.body["status"]["originator"] == reporter
    assert BugReport(event.body).summary().startswith("Bug #770490 (iceweasel): new report from Łukasz Reporter: ")


def test_bus_down_keeps_the_position(soap_server: SoapServer, tmp_path: Path) -> None:
    pos = Position(tmp_path / "pos.json")
    pos.save({"newest": 770400, "watch": {}})
    handed = Handed()
    handed.fail_on = "debbugs:770490:report"
    r = _reconciler(soap_server, pos.path, handed, catch_up=200)
    with pytest.raises(EmitError):
        r.poll_once()
    assert pos.load()["newest"] == 770400  # the report was not handed over: not passed
    assert r.poll_once() == 1 and [e.key for e in handed.events] == ["debbugs:770490:report"]
    assert pos.load()["newest"] == 770689  # went on from the bug that failed


def test_watched_bug_changes_from_its_log(soap_server: SoapServer, tmp_path: Path) -> None:
    # No recording holds both the status and the log of one bug: the status
    # of 770490 and the log of 223344 stand in for one bug's.
    soap_server.pin("get_status", "testGetStatusAffects")
    soap_server.pin("get_bug_log", "testGetBugLog")
    pos = Position(tmp_path / "pos.json")
    handed = Handed()
    r = _reconciler(soap_server, pos.path, handed, watch=[770490], newest=False)
    assert r.poll_once() == 0  # first sight: history is not news
    assert pos.load()["watch"] == {"770490": {"last_modified": 1418418204, "msg_num": 22}}

    pos.save({"newest": None, "watch": {"770490": {"last_modified": 1418000000, "msg_num": 10}}})
    handed = Handed()
    r = _reconciler(soap_server, pos.path, handed, watch=[770490], newest=False)
    assert r.poll_once() == 2
    assert [(e.topic, e.key) for e in handed.events] == [
        ("debbugs.bug.followup", "debbugs:770490:followup:20040130223019.GA17486@zobe.linuxfr.org"),
        ("debbugs.bug.close", "debbugs:770490:close:20050626163009.GA10153@kitenet.net"),
    ]
    assert handed.events[0].body["from"] == "barbier@linuxfr.org (Denis Barbier)"
    assert pos.load()["watch"]["770490"] == {"last_modified": 1418418204, "msg_num": 22}
    soap_server.calls.clear()
    assert r.poll_once() == 0
    assert [m for m, _ in soap_server.calls] == ["get_status"]  # unchanged: no log fetched


def _record_from_mail(msg: email.message.EmailMessage, msg_num: int) -> dict:
    raw = msg.as_bytes(policy=email.policy.SMTP)
    header, _, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    return soap.log_record({"header": header.decode(), "body": body.decode(), "msg_num": msg_num})


def test_followup_key_is_shared(bts_mails: Path) -> None:
    data = (bts_mails / "bts-followup_979653.eml").read_bytes()
    mail_event = parse_mail(data).events[0]
    msg = email.message_from_bytes(data, policy=email.policy.default)
    record = _record_from_mail(msg, 12)
    assert record["received_at"] == "979653"
    status = soap.status_of({"package": "src:xfsprogs", "source": "xfsprogs", "subject": "t", "last_modified": 1})
    [soap_event] = record_events(979653, record, status)
    assert soap_event.key == mail_event.key
    assert soap_event.topic == mail_event.topic


def test_close_key_is_shared(bts_mails: Path) -> None:
    data = (bts_mails / "bts-closed-by-done-mail_999743.eml").read_bytes()
    mail_event = parse_mail(data).events[0]
    msg = email.message_from_bytes(data, policy=email.policy.default)
    closing = [p.get_content() for p in msg.walk() if p.get_content_type() == "message/rfc822"][-1]
    record = _record_from_mail(closing, 17)
    assert record["received_at"] == "999743-done"
    [soap_event] = record_events(999743, record, soap.status_of({"subject": "t", "last_modified": 2}))
    assert (soap_event.topic, soap_event.key) == (mail_event.topic, mail_event.key)
    assert soap_event.body["version"] == mail_event.body["version"] == "5.14.0-1"
    assert soap_event.body["from"] == mail_event.body["from"]


def test_control_message_in_a_bug_log(bts_mails: Path) -> None:
    mail_event = parse_mail((bts_mails / "bts-transcript_tags-found_973061.eml").read_bytes()).events[0]
    # The control mail itself, as the bug log keeps it (its Message-ID is the
    # one the transcript names first in References).
    record = {"msg_num": 30, "received_at": "control", "message_id": "1611630509-462-bts-anbe@debian.org",
              "from": "Andreas Beckmann <anbe@debian.org>", "subject": "tagging 973061",
              "body": "tags 973061 + patch\nfound 981009 4.1.2-1\ntags 890716 + buster bullseye sid\nthanks\n"}
    event = control_event(973061, record)
    BugControl.validate(event.body)
    assert event.key == mail_event.key
    assert event.body["bugs"] == mail_event.body["bugs"] == [890716, 973061, 981009]
    assert [(c["bug"], c["action"]) for c in event.body["changes"]] == [
        (973061, "tags"), (981009, "found"), (890716, "tags")]
    assert all(c["requested"] for c in event.body["changes"])
