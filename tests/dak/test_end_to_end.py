"""debpulse-dak as a real process between real deliveries (exim, Python's
mailbox, a postfix-style hard link) and a real relay, with a subscriber
that verifies every message."""

from __future__ import annotations

import mailbox
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from testbus import GpgKey, start_ready

from . import dakmail
from .conftest import Exim, Upload, build_upload

ACCEPT = "org.debian.dev.dak.package.accept"
# The console script, as an admin or an MTA runs it.
DAK = [str(Path(sys.executable).parent / "debpulse-dak")]
if not Path(DAK[0]).exists():
    DAK = [sys.executable, "-m", "debpulse.adapters.dak.cli"]


class Adapter:
    """debpulse-dak in its own process, handing events to the test relay."""

    def __init__(self, bus, tmp_path: Path, *args: str) -> None:
        self.bus = bus
        self.cmd = [*DAK, *args, "-v"]
        self.log = tmp_path / "dak.log"
        self.proc: subprocess.Popen | None = None

    @property
    def state(self) -> Path:
        return Path(self.bus.env["DEBPULSE_STATE_DIR"]) / "dak"

    def start(self, *, wait: bool = True) -> Adapter:
        """Start it; ready (READY=1) once every source watches and had its
        first pass.  `wait=False`: return at once (to stop it mid-backlog)."""
        if wait:
            self.proc = start_ready(self.cmd, {**os.environ, **self.bus.env}, self.log)
        else:
            with open(self.log, "ab") as log:
                self.proc = subprocess.Popen(self.cmd, env={**os.environ, **self.bus.env}, stdout=log, stderr=log)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = self.proc.wait(15)
        self.proc = None
        return code

    def wait_for(self, condition, what: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            assert self.proc is None or self.proc.poll() is None, self.log.read_text()[-3000:]
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}\n{self.log.read_text()[-3000:]}")

    def __enter__(self) -> Adapter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.stop()


def _run(bus, *args: str, stdin: bytes = b"", env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*DAK, *args], input=stdin,
                          capture_output=True, timeout=30, env={**os.environ, **bus.env, **(env or {})})


def _accepted_mail(up: Upload, ftpmaster: GpgKey | None = None) -> bytes:
    return dakmail.accepted(up.data, up.name, up.source, up.version, up.architecture,
                            ftpmaster_home=str(ftpmaster.home) if ftpmaster else None)


def test_dpkg_upload_delivered_by_exim_reaches_a_subscriber_verified(
        bus, exim: Exim, tmp_path: Path, upload: Upload, uploader: GpgKey, ftpmaster: GpgKey) -> None:
    box = exim.maildir("e2e")
    queue = tmp_path / "queue"
    for sub in ("done", "new", "reject"):
        (queue / sub).mkdir(parents=True)
    sub = bus.subscriber()
    with Adapter(bus, tmp_path, "--maildir", str(box), "--queue-dir", str(queue),
                 "--keyring", str(uploader.public_file)) as dak:
        exim.deliver("e2e", _accepted_mail(upload, ftpmaster))
        [m] = sub.wait(1)
        assert m.topic == ACCEPT
        assert m.verdict.ok and m.verdict.signer == bus.key.fingerprint
        assert m.body["signature"] == "verified" and m.body["signed_by"] == uploader.fingerprint
        assert (m.body["source"], m.body["version"], m.body["changes"]) == ("hello-debpulse", "1.0", upload.name)
        assert m.body["route"] == "mail" and m.body["architectures"] == ["source", "all"]
        assert m.summary == "Łukasz Uploader uploaded hello-debpulse 1.0 to unstable"
        dak.wait_for(lambda: not os.listdir(box / "new") and len(os.listdir(box / "cur")) == 1, "mail in cur/")

        # dak then copies the same .changes into done/ (a new date folder): the same upload, no second message.
        today = queue / "done" / time.strftime("%Y/%m/%d")
        today.mkdir(parents=True)
        shutil.copy2(upload.changes, today / upload.name)
        dak.wait_for(lambda: upload.name in (dak.state / "queues.json").read_text(), "done/ handled")
        # A later upload by the queue route alone does come through, after it: nothing was held back.
        later = build_upload(tmp_path / "later", uploader, version="1.1")
        shutil.copy2(later.changes, today / later.name)
        [m2] = sub.wait(1)
        assert m2.body["version"] == "1.1" and m2.body["route"] == "queue"
        assert m2.body["signed_by"] == uploader.fingerprint
        assert sub.wait(1, timeout=0.5) == []


def test_bad_mail_is_moved_aside_while_good_mail_flows(
        bus, exim: Exim, tmp_path: Path, dak_samples: Path, upload: Upload, uploader: GpgKey) -> None:
    box = exim.maildir("mixed")
    good = [p.read_bytes() for p in sorted((dak_samples / "mails").glob("0[1-4]-*.eml"))]
    truncated = dakmail.accepted(upload.data[:600], upload.name, upload.source, upload.version, upload.architecture)
    tampered = upload.data.replace(b"Release 1.0.", b"Release 2.0.")
    broken_sig = dakmail.accepted(tampered, upload.name, upload.source, upload.version, upload.architecture)
    # The MTA adds its own headers to anything, so garbage from "dak" looks like this:
    garbage = (b"From: Debian FTP Masters <ftpmaster@ftp-master.debian.org>\nX-Debian: DAK\n"
               b"Subject: hello_1.0_amd64.changes ACCEPTED into unstable\n\n" + os.urandom(300) + b"\n")
    not_dak = (dak_samples.parent / "debbugs" / "mails" / "bts-followup_979653.eml").read_bytes()
    sub = bus.subscriber()
    with Adapter(bus, tmp_path, "--maildir", str(box), "--keyring", str(uploader.public_file)) as dak:
        for data in (good[0], garbage, good[1], truncated, not_dak, good[2], broken_sig, good[3],
                     _accepted_mail(upload)):
            exim.deliver("mixed", data)
        got = sub.wait(5)
        assert [m.body["source"] for m in got] == ["hebcal", "fcmp", "xfsprogs", "xfsprogs", "hello-debpulse"]
        assert all(m.verdict.ok for m in got)
        quarantine = dak.state / "quarantine"
        dak.wait_for(lambda: len(list(quarantine.glob("*.reason"))) == 3, "three mails moved aside")
        reasons = sorted(p.read_text().strip() for p in quarantine.glob("*.reason"))
        assert reasons[0].startswith(f"bad signature by {uploader.fingerprint}")
        assert reasons[1] == "no signed .changes in 'hello_1.0_amd64.changes ACCEPTED into unstable'"
        assert reasons[2] == "truncated .changes: the OpenPGP signature is missing"
        # Each reason sits beside the mail it explains; the non-dak mail is simply done with.
        for r in quarantine.glob("*.reason"):
            assert Path(str(r).removesuffix(".reason")).is_file()
        dak.wait_for(lambda: not os.listdir(box / "new") and len(os.listdir(box / "cur")) == 6, "the rest in cur/")
        assert sub.wait(1, timeout=0.5) == []


def _new_mail(i: int) -> bytes:
    name = f"pkg{i:03d}_1.0-1_amd64.changes"
    return dakmail.new(name, f"pkg{i:03d}", "1.0-1", "source amd64")


def test_restart_in_the_middle_of_a_backlog_emits_every_mail_once(bus, tmp_path: Path) -> None:
    box = tmp_path / "Maildir"
    md = mailbox.Maildir(box, create=True)
    n = 120
    for i in range(n):
        if i % 3:
            md.add(_new_mail(i))  # written into tmp/, renamed into new/
        else:  # postfix and procmail: a hard link into new/
            tmp = box / "tmp" / f"{time.time_ns()}.P{i}.debpulse"
            tmp.write_bytes(_new_mail(i))
            os.link(tmp, box / "new" / tmp.name)
            tmp.unlink()
    sub = bus.subscriber()
    dak = Adapter(bus, tmp_path, "--maildir", str(box)).start(wait=False)
    first = sub.wait(15, timeout=20)
    assert len(first) == 15
    dak.stop(signal.SIGKILL)  # in the middle of the backlog, without warning
    left = len(os.listdir(box / "new"))
    assert 0 < left < n
    dak.start()
    rest = sub.wait(n - len(first), timeout=30)
    dak.stop()
    got = first + rest + sub.wait(1, timeout=1.0)
    names = [m.body["source"] for m in got]
    assert len(names) == n and sorted(names) == [f"pkg{i:03d}" for i in range(n)]
    assert len(os.listdir(box / "cur")) == n and os.listdir(box / "new") == []


def test_mta_pipe_exit_codes(bus, tmp_path: Path, dak_samples: Path) -> None:
    sub = bus.subscriber()
    mail = (dak_samples / "mails" / "05-REJECTED_xfsprogs_5.14.0-1_source_2021.eml").read_bytes()
    r = _run(bus, "mail", stdin=mail)
    assert r.returncode == 0, r.stderr.decode()
    [m] = sub.wait(1)
    assert m.topic == "org.debian.dev.dak.package.reject" and m.summary.startswith("xfsprogs 5.14.0-1 rejected:")

    # Bad input is kept in the quarantine: delivered as far as the MTA is concerned.
    r = _run(bus, "mail", stdin=b"\x00garbage\x00")
    assert r.returncode == 0
    quarantine = Path(bus.env["DEBPULSE_STATE_DIR"]) / "dak" / "quarantine"
    [reason] = quarantine.glob("*.reason")
    assert reason.read_text() == "not a mail: no header\n"

    # No relay and nowhere to spool: 75, the MTA keeps the mail and retries.
    bus.stop()
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "spool").write_text("not a directory")
    conf = tmp_path / "blocked.toml"
    conf.write_text(f'[bus]\nspool = "{blocked / "spool"}"\n')
    news = dakmail.new("hello_2.0-1_amd64.changes", "hello", "2.0-1", "source amd64")
    r = _run(bus, "mail", "--config", str(conf), stdin=news)
    assert r.returncode == 75, r.stderr.decode()
    # No relay but a spool: handed over (exit 0), published once the relay is back.
    r = _run(bus, "mail", stdin=news)
    assert r.returncode == 0, r.stderr.decode()
    bus.start()
    [m] = sub.wait(1, timeout=15)
    assert m.summary == "hello 2.0-1 is NEW"


def test_a_reject_mail_stored_with_crlf_gives_the_reason(bus, tmp_path: Path, dak_samples: Path,
                                                        uploader: GpgKey) -> None:
    sub = bus.subscriber()
    mail = (dak_samples / "mails" / "05-REJECTED_xfsprogs_5.14.0-1_source_2021.eml").read_bytes()
    # The common options after the subcommand, as before it.
    r = _run(bus, "mail", "--keyring", str(uploader.public_file), "-v", stdin=mail.replace(b"\n", b"\r\n"))
    assert r.returncode == 0, r.stderr.decode()
    assert b"dak.package.reject" in r.stderr  # -v given after "mail" counts
    [m] = sub.wait(1)
    assert "\r" not in m.body["reason"]
    assert m.body["reason"].startswith("Version check failed:\nYour upload included the source package xfsprogs")
    assert m.body["rejection"] == "automatic"
    # The reason, not dak's heading above it.
    assert m.summary == ("xfsprogs 5.14.0-1 rejected: Your upload included the source package xfsprogs, "
                         "version 5.14.0-1, however unstable already has version 5.14.0-rc1-1.")


def test_help_of_a_subcommand_is_that_subcommands(tmp_path: Path) -> None:
    r = subprocess.run([*DAK, "mail", "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0
    assert r.stdout.startswith("usage: debpulse-dak mail ")
    assert "publish one mail read from stdin" in r.stdout and "--keyring FILE" in r.stdout
    general = subprocess.run([*DAK, "--help"], capture_output=True, text=True, timeout=30).stdout
    assert general.startswith("usage: debpulse-dak ") and r.stdout != general


def test_once_handles_the_backlog_and_exits(bus, tmp_path: Path, dak_samples: Path) -> None:
    box = tmp_path / "Maildir"
    md = mailbox.Maildir(box, create=True)
    for p in sorted((dak_samples / "mails").glob("*.eml")):
        md.add(p.read_bytes())
    sub = bus.subscriber()
    r = _run(bus, "--maildir", str(box), "--once")
    assert r.returncode == 0, r.stderr.decode()
    got = sub.wait(5)
    assert sorted(m.topic.rsplit(".", 1)[1] for m in got) == ["accept"] * 4 + ["reject"]
    assert len(os.listdir(box / "cur")) == 5


def test_configuration_errors_are_one_line_and_exit_2(tmp_path: Path, capsys, monkeypatch) -> None:
    from debpulse.adapters.dak.cli import _main
    from debpulse.emitters.cli import entry

    monkeypatch.setattr(sys, "argv", ["debpulse-dak"])
    monkeypatch.delenv("DEBPULSE_CONFIG", raising=False)
    main = entry(_main)

    def err(*argv: str) -> str:
        assert main(list(argv)) == 2
        text = capsys.readouterr().err
        assert text.count("\n") == 1, text
        return text

    conf = tmp_path / "debpulse.toml"
    conf.write_text("")
    assert err("--config", str(conf)) == ("debpulse-dak: nothing to watch: give --maildir or --queue-dir "
                                          "(or [dak] maildir, queue_dir)\n")
    conf.write_text('[dak]\nmaildir = "/srv/mail"\nkeyring = "typo.gpg"\n')
    assert err("--config", str(conf)) == f"debpulse-dak: {conf}: [dak] unknown key 'keyring'\n"
    conf.write_text(f'[dak]\nmaildir = "{tmp_path}"\nsettle = "soon"\n')
    assert "[dak] settle must be int or float" in err("--config", str(conf))
    conf.write_text("")
    assert err("--config", str(conf), "--maildir", str(tmp_path), "--keyring", str(tmp_path / "missing.gpg")) == (
        f"debpulse-dak: keyring {tmp_path}/missing.gpg: no such file\n")
    assert "not a directory" in err("--config", str(conf), "--queue-dir", str(tmp_path / "nowhere"))
    with pytest.raises(SystemExit) as exit_:  # argparse exits by itself, with 2
        main(["--bogus"])
    assert exit_.value.code == 2 and capsys.readouterr().err == (
        "debpulse-dak: unrecognized arguments: --bogus (see --help)\n")
    r = subprocess.run([*DAK, "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "|/usr/bin/debpulse-dak mail" in r.stdout and "[dak]" in r.stdout


def test_config_file_alone_runs_it(bus, tmp_path: Path, dak_samples: Path) -> None:
    box = tmp_path / "Maildir"
    mailbox.Maildir(box, create=True).add(
        (dak_samples / "mails" / "03-ACCEPTED-maintainer_xfsprogs_5.6.0-1_amd64_2020.eml").read_bytes())
    conf = tmp_path / "debpulse.toml"
    conf.write_text(f'[dak]\nmaildir = "{box}"\n')
    sub = bus.subscriber()
    r = _run(bus, "--once", env={"DEBPULSE_CONFIG": str(conf)})
    assert r.returncode == 0, r.stderr.decode()
    [m] = sub.wait(1)
    assert m.summary == "Nathan Scott uploaded xfsprogs 5.6.0-1 to unstable"


def test_a_reject_too_large_for_the_bus_is_moved_aside(bus, tmp_path: Path) -> None:
    """A reason of 2 MB would make a message no subscriber could take: the
    relay refuses it, and the mail goes to the quarantine with that reason
    while the next mail flows."""
    box = tmp_path / "Maildir"
    mailbox.Maildir(box, create=True)
    huge = dakmail.rejected("big_1.0-1_source.changes", "big", "1.0-1", "source", "lintian: " + "E" * (2 << 20))
    fine = dakmail.rejected("small_1.0-1_source.changes", "small", "1.0-1", "source", "missing signature")
    sub = bus.subscriber()
    with Adapter(bus, tmp_path, "--maildir", str(box)) as dak:
        for data in (huge, fine):
            mailbox.Maildir(box, create=False).add(data)
        [m] = sub.wait(1)
        assert m.body["source"] == "small"
        quarantine = dak.state / "quarantine"
        dak.wait_for(lambda: len(list(quarantine.glob("*.reason"))) == 1, "the big mail moved aside")
        [reason] = [p.read_text() for p in quarantine.glob("*.reason")]
        assert "more than the bus takes" in reason
