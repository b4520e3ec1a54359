"""Fixtures of the notify tests: mail delivered by the real exim4 into
Maildirs, the real IRC bot and server, debpulse-notify as a real process."""

from __future__ import annotations

import email
import email.policy
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from dak.conftest import Exim
from irc.conftest import Bot, bot_config, ircd, publish, reader  # noqa: F401  (fixtures)
from services import BusService, wait_for
from testbus import free_port


@pytest.fixture(scope="session")
def exim() -> Iterator[Exim]:
    if shutil.which("exim4") is None:
        pytest.skip("exim4 is not installed (deploy/packages.txt: exim4-daemon-light)")
    base = Path(tempfile.mkdtemp(prefix="notify-exim-"))
    yield Exim(base)
    shutil.rmtree(base, ignore_errors=True)


def mails(maildir: Path) -> list[EmailMessage]:
    """Delivered mails, oldest first."""
    files = sorted((maildir / "new").iterdir(), key=lambda p: p.stat().st_mtime_ns)
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in files]  # type: ignore[misc]


class Notify(BusService):
    def __init__(self, bus, base: Path, config: Path, rules: Path, name: str = "notify") -> None:  # type: ignore[no-untyped-def]
        super().__init__(bus, base, name, "debpulse.consumers.notify.cli",
                         ["--config", str(config), "--rules", str(rules)])


@pytest.fixture
def notify(bus, tmp_path: Path) -> Iterator[Callable[..., Notify]]:
    started: list[Notify] = []

    def make(config: Path, rules: Path, name: str = "notify") -> Notify:
        n = Notify(bus, tmp_path, config, rules, name)
        started.append(n)
        return n

    yield make
    for n in started:
        if n.proc is not None:
            n.stop()


def notify_config(path: Path, exim: Exim, irc_socket: Path | None = None) -> Path:
    sendmail = ["exim4", "-C", str(exim.conf), "-odi", "-oi", "-t"]
    path.write_text(f"""\
[notify]
from = "Debian notifications <notify@debpulse.test>"
sendmail = {sendmail!r}
retry_max = 2
{f'irc_socket = "{irc_socket}"' if irc_socket else ''}
""".replace("'", '"'))
    return path


__all__ = ["Bot", "bot_config", "ircd", "publish", "reader"]


SMTP_ACL = """\
acl_smtp_rcpt = accept_local
daemon_smtp_ports = {port}
local_interfaces = 127.0.0.1
pid_file_path = {base}/exim-daemon.pid
begin acl
accept_local:
  accept
"""


class EximDaemon:
    """The same exim, as the local MTA's SMTP listener on a free loopback
    port (exim -bdf: in the foreground, owned by the test)."""

    def __init__(self, exim: Exim) -> None:
        self.exim, self.port = exim, free_port()
        conf = exim.base / f"exim-smtp-{self.port}.conf"
        conf.write_text(exim.conf.read_text().replace(
            "begin acl\n", SMTP_ACL.format(port=self.port, base=exim.base)))
        before = exim.mainlog()
        self.proc = subprocess.Popen(["exim4", "-C", str(conf), "-bdf", "-odi"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_for(lambda: self.proc.poll() is not None or
                 f"listening for SMTP on [127.0.0.1]:{self.port}" in exim.mainlog()[len(before):],
                 what="exim listening")
        assert self.proc.poll() is None, exim.mainlog()[-2000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)


@pytest.fixture
def exim_smtp(exim: Exim) -> Iterator[EximDaemon]:
    d = EximDaemon(exim)
    yield d
    d.stop()
