"""Fixtures of the dak tests: real uploads built by dpkg-dev and signed by a
test uploader, real mail deliveries by exim into Maildirs, dak's sample data."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from testbus import GpgKey, drop_gpg_key, make_gpg_key


@pytest.fixture(scope="session")
def dak_samples(shared_fixtures: Path) -> Path:
    return shared_fixtures / "dak"


@pytest.fixture(scope="session")
def uploader() -> Iterator[GpgKey]:
    key = make_gpg_key("Łukasz Uploader <uploader@example.org>")
    yield key
    drop_gpg_key(key)


@pytest.fixture(scope="session")
def ftpmaster() -> Iterator[GpgKey]:
    """The key dak signs its mail with (Dinstall::Mail-Signature-Key)."""
    key = make_gpg_key("Debian FTP Masters <ftpmaster@ftp-master.debian.org>")
    yield key
    drop_gpg_key(key)


@dataclass
class Upload:
    changes: Path       # the signed .changes dpkg-buildpackage wrote
    name: str
    source: str
    version: str
    architecture: str   # the .changes Architecture field

    @property
    def data(self) -> bytes:
        return self.changes.read_bytes()


CONTROL = """\
Source: hello-debpulse
Section: misc
Priority: optional
Maintainer: Debpulse Tests <tests@example.org>
Standards-Version: 4.6.2
Rules-Requires-Root: no

Package: hello-debpulse
Architecture: all
Description: tiny package built by the debpulse tests
 It holds one README.
"""
CHANGELOG = """\
hello-debpulse ({version}) unstable; urgency=medium

  * Release {version}. (Closes: #{bug})

 -- Łukasz Uploader <uploader@example.org>  Fri, 27 Nov 2026 10:00:00 +0000
"""
RULES = """\
#!/usr/bin/make -f
build build-arch build-indep:
clean:
\trm -rf debian/tmp debian/files
binary binary-arch binary-indep:
\tinstall -d debian/tmp/DEBIAN debian/tmp/usr/share/doc/hello-debpulse
\techo hi > debian/tmp/usr/share/doc/hello-debpulse/README
\tdpkg-gencontrol -phello-debpulse -Pdebian/tmp
\tdpkg-deb --build debian/tmp ..
"""


def build_upload(workdir: Path, key: GpgKey, version: str = "1.0", bug: int = 1000001) -> Upload:
    """A full (source + all) upload of a tiny native package, by dpkg-buildpackage, signed with `key`."""
    tree = workdir / f"hello-debpulse-{version}"
    (tree / "debian" / "source").mkdir(parents=True)
    (tree / "debian" / "source" / "format").write_text("3.0 (native)\n")
    (tree / "debian" / "control").write_text(CONTROL)
    (tree / "debian" / "changelog").write_text(CHANGELOG.format(version=version, bug=bug))
    rules = tree / "debian" / "rules"
    rules.write_text(RULES)
    rules.chmod(0o755)
    subprocess.run(["dpkg-buildpackage", "-d", f"--sign-key={key.fingerprint}"], cwd=tree, check=True,
                   capture_output=True, env={**os.environ, "GNUPGHOME": str(key.home)})
    [changes] = workdir.glob(f"hello-debpulse_{version}_*.changes")
    return Upload(changes, changes.name, "hello-debpulse", version, "source all")


@pytest.fixture(scope="session")
def upload(uploader: GpgKey) -> Iterator[Upload]:
    work = Path(tempfile.mkdtemp(prefix="dak-upload-"))
    yield build_upload(work, uploader)
    shutil.rmtree(work, ignore_errors=True)


EXIM_CONF = """\
primary_hostname = debpulse.test
domainlist local_domains = *
spool_directory = {base}/spool
log_file_path = {base}/spool/log/%slog
exim_user = root
exim_group = root
never_users =
keep_environment =
begin acl
begin routers
maildir:
  driver = accept
  transport = maildir_delivery
begin transports
# One Maildir per local part: each test delivers to its own.
maildir_delivery:
  driver = appendfile
  maildir_format
  # dsearch: a local part taken from the address is tainted, a directory found is not
  directory = {base}/boxes/${{lookup{{$local_part}}dsearch{{{base}/boxes}}}}
  delivery_date_add
  envelope_to_add
  return_path_add
  user = mail
  group = mail
  mode = 0600
begin retry
*  *  F,1m,10s
"""


class Exim:
    """exim4 with a private configuration, delivering at once (-odi) into Maildirs."""

    def __init__(self, base: Path) -> None:
        self.base = base
        base.chmod(0o755)  # the delivery user looks up the Maildirs below it
        self.conf = base / "exim.conf"
        self.conf.write_text(EXIM_CONF.format(base=base))
        (base / "boxes").mkdir()
        self.mail_uid = pwd.getpwnam("mail").pw_uid

    def maildir(self, box: str) -> Path:
        """A fresh Maildir that the delivery user may write."""
        path = self.base / "boxes" / box
        for sub in ("new", "cur", "tmp"):
            (path / sub).mkdir(parents=True, exist_ok=True)
            os.chown(path / sub, self.mail_uid, self.mail_uid)
        os.chown(path, self.mail_uid, self.mail_uid)
        return path

    def deliver(self, box: str, data: bytes) -> None:
        before = self.mainlog().count("\n")
        r = subprocess.run(
            ["exim4", "-C", str(self.conf), "-odi", "-f", "envelope@ftp-master.debian.org", f"{box}@debpulse.test"],
            input=data, capture_output=True, timeout=30,
        )
        # exim exits 0 even when it only queued the mail: its log says what happened.
        lines = self.mainlog().splitlines()[before:]
        assert r.returncode == 0 and any(" => " in line for line in lines), r.stderr.decode() + "\n".join(lines)

    def mainlog(self) -> str:
        log = self.base / "spool" / "log" / "mainlog"
        return log.read_text() if log.exists() else ""


@pytest.fixture(scope="session")
def exim() -> Iterator[Exim]:
    if shutil.which("exim4") is None:
        pytest.skip("exim4 is not installed (deploy/packages.txt: exim4-daemon-light)")
    base = Path(tempfile.mkdtemp(prefix="dak-exim-"))
    yield Exim(base)
    shutil.rmtree(base, ignore_errors=True)
