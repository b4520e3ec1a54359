"""The shared Maildir source, with real deliveries (Python's mailbox, a
postfix-style hard link) and a real inotify watch."""

from __future__ import annotations

import mailbox
import os
import threading
import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from debpulse.adapters.common.maildir import MaildirSource, pipe_main
from debpulse.adapters.common.quarantine import Quarantine
from debpulse.emitters.errors import EmitError, InputError


def _mail(n: int, subject: str = "") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "someone@example.org"
    msg["Subject"] = subject or f"mail {n}"
    msg["Message-ID"] = f"<m{n}@example.org>"
    msg.set_content(f"body {n}\n")
    return msg


class Recorder:
    """The handler under test: records subjects, refuses "bad", can fail the bus."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.bus_down = False

    def __call__(self, path: Path | None, data: bytes) -> None:
        subject = next(line for line in data.decode().splitlines() if line.startswith("Subject:"))[9:]
        if subject.startswith("bad"):
            raise InputError(f"{subject} is not a mail we understand\nsecond line dropped")
        if self.bus_down:
            raise EmitError("relay down")
        self.seen.append(subject)


@pytest.fixture
def maildir(tmp_path: Path) -> Path:
    mailbox.Maildir(tmp_path / "Maildir", create=True)
    return tmp_path / "Maildir"


def _deliver(maildir: Path, *msgs: EmailMessage) -> None:
    box = mailbox.Maildir(maildir, create=False)
    for m in msgs:
        box.add(m)
        time.sleep(0.002)  # distinct mtimes: "oldest first" is observable


def test_backlog_oldest_first_moved_to_cur(maildir: Path, tmp_path: Path) -> None:
    _deliver(maildir, *(_mail(i) for i in range(5)))
    rec = Recorder()
    src = MaildirSource(maildir, rec, Quarantine(tmp_path / "q", "test"), name="test")
    assert src.drain() == 5
    assert rec.seen == [f"mail {i}" for i in range(5)]
    assert os.listdir(maildir / "new") == []
    assert sorted(n.endswith(":2,") for n in os.listdir(maildir / "cur")) == [True] * 5
    assert src.drain() == 0  # nothing repeated


def test_bad_mail_quarantined_with_reason(maildir: Path, tmp_path: Path) -> None:
    _deliver(maildir, _mail(1), _mail(2, "bad one"), _mail(3))
    rec = Recorder()
    q = tmp_path / "q"
    src = MaildirSource(maildir, rec, Quarantine(q, "test"), name="test")
    assert src.drain() == 3
    assert rec.seen == ["mail 1", "mail 3"]
    reasons = list(q.glob("*.reason"))
    assert len(reasons) == 1
    assert reasons[0].read_text() == "bad one is not a mail we understand\n"
    assert b"Subject: bad one" in Path(str(reasons[0]).removesuffix(".reason")).read_bytes()


def test_emit_error_keeps_mail_in_new_and_order(maildir: Path, tmp_path: Path) -> None:
    _deliver(maildir, _mail(1), _mail(2))
    rec = Recorder()
    rec.bus_down = True
    src = MaildirSource(maildir, rec, Quarantine(tmp_path / "q", "test"), name="test")
    with pytest.raises(EmitError):
        src.drain()
    assert len(os.listdir(maildir / "new")) == 2
    rec.bus_down = False
    assert src.drain() == 2
    assert rec.seen == ["mail 1", "mail 2"]


def test_watch_sees_rename_and_hard_link_deliveries(maildir: Path, tmp_path: Path) -> None:
    _deliver(maildir, _mail(0))  # backlog before start
    rec = Recorder()
    src = MaildirSource(maildir, rec, Quarantine(tmp_path / "q", "test"), name="test")
    stop = threading.Event()
    t = threading.Thread(target=src.run, args=(stop,))
    t.start()
    try:
        _deliver(maildir, _mail(1))  # rename from tmp/: IN_MOVED_TO
        # postfix-style: write into tmp/, hard-link into new/, unlink: IN_CREATE only
        tmp = maildir / "tmp" / "1700000000.P1Q1.host"
        tmp.write_bytes(_mail(2).as_bytes())
        os.link(tmp, maildir / "new" / tmp.name)
        tmp.unlink()
        deadline = time.monotonic() + 5
        while len(rec.seen) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        t.join(5)
    assert not t.is_alive()
    assert rec.seen == ["mail 0", "mail 1", "mail 2"]
    assert os.listdir(maildir / "new") == []


def test_watch_retries_after_emit_error(maildir: Path, tmp_path: Path) -> None:
    rec = Recorder()
    rec.bus_down = True
    src = MaildirSource(maildir, rec, Quarantine(tmp_path / "q", "test"), name="test")
    stop = threading.Event()
    t = threading.Thread(target=src.run, args=(stop,))
    t.start()
    try:
        _deliver(maildir, _mail(1))
        time.sleep(0.3)
        assert rec.seen == [] and len(os.listdir(maildir / "new")) == 1
        rec.bus_down = False  # the bus comes back: the backoff retry takes it
        deadline = time.monotonic() + 5
        while not rec.seen and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        t.join(5)
    assert rec.seen == ["mail 1"]


def test_pipe_exit_codes(tmp_path: Path) -> None:
    q = Quarantine(tmp_path / "q", "test")
    rec = Recorder()
    assert pipe_main(_mail(1).as_bytes(), rec, q) == 0
    assert rec.seen == ["mail 1"]
    assert pipe_main(_mail(2, "bad pipe").as_bytes(), rec, q) == 0
    kept = [p for p in (tmp_path / "q").iterdir() if not p.name.endswith(".reason")]
    assert len(kept) == 1 and b"bad pipe" in kept[0].read_bytes()
    rec.bus_down = True
    assert pipe_main(_mail(3).as_bytes(), rec, q) == 75
