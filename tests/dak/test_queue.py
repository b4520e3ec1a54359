"""The queue-directory source on real directories with a real inotify watch:
what it hands over, what it keeps aside, where it resumes."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from debpulse.adapters.common.position import Position
from debpulse.adapters.common.quarantine import Quarantine
from debpulse.adapters.dak.messages import Rejected
from debpulse.adapters.dak.queue import QueueSource
from debpulse.emitters.errors import EmitError
from debpulse.emitters.event import Event

from . import dakmail

ROWS = [("hello", "2.10-3", "source, amd64")]


class Handed:
    """What the source handed over (this test is about the source; the
    end-to-end tests use the real relay)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.down = False

    def __call__(self, event: Event) -> None:
        if self.down:
            raise EmitError("relay down")
        self.events.append(event)

    def topics(self) -> list[str]:
        return [e.topic.rsplit(".", 1)[1] for e in self.events]


@pytest.fixture
def dak_root(tmp_path: Path) -> Path:
    root = tmp_path / "srv"
    for sub in ("queue/done", "queue/new", "queue/reject", "web"):
        (root / sub).mkdir(parents=True)
    return root


def _source(root: Path, handed: Handed, tmp_path: Path, settle: float = 0.3) -> QueueSource:
    q = root / "queue"
    return QueueSource(handed, Quarantine(tmp_path / "quarantine", "dak"), Position(tmp_path / "queues.json"),
                       done=q / "done", new=q / "new", reject=q / "reject", removals=root / "web" / "removals.822",
                       settle=settle)


@pytest.fixture
def changes(dak_samples: Path) -> Path:
    return dak_samples / "changes"


def test_first_run_starts_from_the_present(dak_root: Path, tmp_path: Path, changes: Path) -> None:
    old = dak_root / "queue" / "done" / "2024" / "12" / "13"
    old.mkdir(parents=True)
    shutil.copy2(changes / "xfsprogs_6.12.0-1_source.changes", old)
    shutil.copy2(changes / "hebcal_4.31-1_source.changes", dak_root / "queue" / "new")
    (dak_root / "web" / "removals.822").write_bytes(dakmail.removal_stanza(ROWS, ["unstable"], "old", []))
    handed = Handed()
    assert _source(dak_root, handed, tmp_path).scan() == 0
    assert handed.events == []
    # The next day's folder is new: it is handled.
    later = dak_root / "queue" / "done" / "2024" / "12" / "14"
    later.mkdir()
    shutil.copy2(changes / "xfsprogs_5.10.0-3_source.changes", later)
    assert _source(dak_root, handed, tmp_path).scan() == 1
    assert [e.body["version"] for e in handed.events] == ["5.10.0-3"]
    assert handed.events[0].key == "dak:accept:unstable:xfsprogs_5.10.0-3_source.changes"


@pytest.fixture
def running(dak_root: Path, tmp_path: Path) -> Iterator[tuple[QueueSource, Handed]]:
    handed = Handed()
    src = _source(dak_root, handed, tmp_path)
    src.scan()  # the present state
    stop, watching = threading.Event(), threading.Event()
    t = threading.Thread(target=src.run, args=(stop, watching.set))
    t.start()
    assert watching.wait(30), "the source never said it watches"
    yield src, handed
    stop.set()
    t.join(10)
    assert not t.is_alive()


def _until(cond, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cond()


def test_watch_every_place(running, dak_root: Path, changes: Path, tmp_path: Path) -> None:
    src, handed = running
    q = dak_root / "queue"
    # A new date folder, as dak's find_next_free names a second copy.
    day = q / "done" / time.strftime("%Y/%m/%d")
    day.mkdir(parents=True)
    shutil.copy2(changes / "xfsprogs_5.6.0-1_amd64.changes", day)
    staged = tmp_path / "gawk_3.1.3-2_i386.changes"
    shutil.copy2(changes / staged.name, staged)
    os.link(staged, day / "gawk_3.1.3-2_i386.changes.0")  # dak links when it can
    _until(lambda: len(handed.events) == 2)
    assert sorted(e.body["changes"] for e in handed.events) == ["gawk_3.1.3-2_i386.changes",
                                                                "xfsprogs_5.6.0-1_amd64.changes"]
    assert all(e.body["route"] == "queue" and "message_id" not in e.body for e in handed.events)

    shutil.copy2(changes / "hebcal_4.31-1_source.changes", q / "new")
    _until(lambda: len(handed.events) == 3)
    assert handed.events[2].topic == "dak.package.new" and handed.events[2].body["source"] == "hebcal"

    # reject/: the upload's files, then the reason (daklib's real_reject order).
    shutil.copy2(changes / "xfsprogs_6.12.0-1_source.changes", q / "reject")
    (q / "reject" / "xfsprogs_6.12.0-1_source.changes.reason").write_text("Version check failed:\nnot newer\n")
    _until(lambda: len(handed.events) == 4)
    rej = handed.events[3]
    assert rej.topic == "dak.package.reject" and rej.body["reason"] == "Version check failed:\nnot newer"
    assert rej.body["rejection"] == "automatic" and "rejected_by" not in rej.body
    assert rej.body["changed_by"] == "Nathan Scott <nathans@debian.org>"
    assert rej.key.startswith("dak:reject::xfsprogs_6.12.0-1_source.changes:")

    # removals.822 grows in pieces while dak holds its lock: one event per complete stanza.
    log = dak_root / "web" / "removals.822"
    stanza = dakmail.removal_stanza(ROWS, ["unstable"], "RoQA; dead upstream", [123456])
    with open(log, "ab") as fh:
        fh.write(stanza[:40])
        fh.flush()
        time.sleep(0.5)
        assert len(handed.events) == 4
        fh.write(stanza[40:])
    _until(lambda: len(handed.events) == 5)
    assert handed.events[4].body["closes"] == [123456]
    # Other files in dak's web directory do not matter.
    (dak_root / "web" / "removals.txt").write_text("text log\n")
    time.sleep(0.3)
    assert handed.topics() == ["accept", "accept", "new", "reject", "remove"]


def test_a_manual_rejection_says_who_rejected_it(running, dak_root: Path, changes: Path) -> None:
    """process-policy writes an ftpmaster's reject comment into the .reason
    file as "From: <who>", a blank line, then the text (with the line ends
    of whoever wrote it)."""
    src, handed = running
    q = dak_root / "queue" / "reject"
    shutil.copy2(changes / "hebcal_4.31-1_source.changes", q)
    (q / "hebcal_4.31-1_source.changes.reason").write_bytes(
        b"From: Jane Ftpmaster <jane@ftp-master.debian.org>\n\n"
        b"debian/copyright does not mention src/zmanim.c.\r\nPlease add its license and upload again.\r\n")
    _until(lambda: len(handed.events) == 1)
    [rej] = handed.events
    assert rej.body["reason"] == ("debian/copyright does not mention src/zmanim.c.\n"
                                  "Please add its license and upload again.")
    assert rej.body["rejection"] == "manual"
    assert rej.body["rejected_by"] == "Jane Ftpmaster <jane@ftp-master.debian.org>"
    assert Rejected(rej.body).summary() == "hebcal 4.31-1 rejected: debian/copyright does not mention src/zmanim.c."


def test_bad_queue_files_are_copied_aside_not_moved(running, dak_root: Path, changes: Path, tmp_path: Path) -> None:
    src, handed = running
    day = dak_root / "queue" / "done" / time.strftime("%Y/%m/%d")
    day.mkdir(parents=True)
    truncated = day / "broken_1.0_amd64.changes"
    truncated.write_bytes((changes / "hebcal_4.31-1_source.changes").read_bytes()[:900])
    shutil.copy2(changes / "xfsprogs_5.6.0-1_amd64.changes", day)
    _until(lambda: len(handed.events) == 1)
    # The broken one is given the settle time (dak may still be writing it), then kept aside.
    _until(lambda: any((tmp_path / "quarantine").glob("*.reason")))
    [reason] = (tmp_path / "quarantine").glob("*.reason")
    assert reason.read_text() == "truncated .changes: the OpenPGP signature is missing\n"
    assert truncated.exists()  # dak's file is left alone
    time.sleep(0.6)
    assert len(list((tmp_path / "quarantine").glob("*.reason"))) == 1  # and not tried again
    (dak_root / "web" / "removals.822").write_bytes(b"Date: x\nSuite: unstable\nReason: nothing listed\n\n")
    _until(lambda: len(list((tmp_path / "quarantine").glob("*.reason"))) == 2)
    assert handed.topics() == ["accept"]


def test_resume_where_it_stopped_and_retry_after_emit_error(dak_root: Path, tmp_path: Path, changes: Path) -> None:
    handed = Handed()
    _source(dak_root, handed, tmp_path).scan()
    q = dak_root / "queue"
    day = q / "done" / time.strftime("%Y/%m/%d")
    day.mkdir(parents=True)
    shutil.copy2(changes / "xfsprogs_5.6.0-1_amd64.changes", day)
    shutil.copy2(changes / "hebcal_4.31-1_source.changes", q / "new")
    log = dak_root / "web" / "removals.822"
    log.write_bytes(dakmail.removal_stanza(ROWS, ["unstable"], "one", []))
    handed.down = True
    with pytest.raises(EmitError):
        _source(dak_root, handed, tmp_path).scan()
    handed.down = False
    src = _source(dak_root, handed, tmp_path)  # a restart
    assert src.scan() == 3
    assert handed.topics() == ["accept", "new", "remove"]
    # Another restart: nothing again; only what came meanwhile.
    with open(log, "ab") as fh:
        fh.write(dakmail.removal_stanza([("gawk", "1:3.1.3-2", "i386")], ["unstable"], "two", []))
    assert _source(dak_root, handed, tmp_path).scan() == 1
    assert handed.topics() == ["accept", "new", "remove", "remove"]
    assert _source(dak_root, handed, tmp_path).scan() == 0
    # dak cleans new/ and replaces the log: the position follows.
    (q / "new" / "hebcal_4.31-1_source.changes").unlink()
    log.unlink()
    log.write_bytes(dakmail.removal_stanza(ROWS, ["testing"], "three", []))
    src = _source(dak_root, handed, tmp_path)
    assert src.scan() == 1 and src.state["new"] == []
    assert handed.events[-1].body["suites"] == ["testing"]
