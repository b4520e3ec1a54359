"""The systemd units and the sysusers/tmpfiles snippets, checked by systemd's own tools."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from testbus import ROOT

SYSTEMD = ROOT / "deploy" / "systemd"
UNITS = sorted(SYSTEMD.glob("*.service"))
OURS = [u for u in UNITS if u.name != "debpulse-bridge.service"]  # the bridge's unit has its own tests
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd is not installed")


def _unit(path: Path) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text().replace("\\\n", " "))
    return parser


def _exec_start(path: Path) -> list[str]:
    return _unit(path)["Service"]["ExecStart"].split()


def test_every_expected_unit_is_there() -> None:
    names = {u.name for u in UNITS}
    assert {"debpulse-relay.service", "debpulse-dak.service", "debpulse-wanna-build.service",
            "debpulse-debbugs.service", "debpulse-debbugs-poll.service", "debpulse-git-webhook.service",
            "debpulse-irc.service", "debpulse-notify.service"} <= names


def test_systemd_analyze_verify_accepts_every_unit(tmp_path: Path) -> None:
    # The units name /usr/bin/debpulse-*; verify wants them executable, so
    # the copies point at this installation's console scripts instead.
    bindir = Path(sys.executable).parent
    for unit in UNITS:
        text = unit.read_text().replace("/usr/bin/debpulse-", f"{bindir}/debpulse-")
        (tmp_path / unit.name).write_text(text)
    copies = sorted(str(p) for p in tmp_path.glob("*.service"))
    proc = subprocess.run(["systemd-analyze", "verify", "--man=no", *copies], capture_output=True, text=True,
                          timeout=60)
    # verify exits 0 on an unknown directive or a bad value (it only warns):
    # any line about our units is a failure too.
    complaints = [line for line in (proc.stdout + proc.stderr).splitlines()
                  if str(tmp_path) in line or any(u.name in line for u in UNITS)]
    assert proc.returncode == 0 and not complaints, proc.stdout + proc.stderr


@pytest.mark.parametrize("unit", OURS, ids=lambda p: p.name)
def test_unit_is_a_hardened_notify_service(unit: Path) -> None:
    service = _unit(unit)["Service"]
    assert service["Type"] == "notify"
    assert service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == "2"  # a configuration mistake: no restart loop
    assert service["User"] == "debpulse"
    assert service["ProtectSystem"] == "strict"
    assert service["StateDirectory"] == "debpulse"
    assert service["NoNewPrivileges"] == "yes"
    assert service["CapabilityBoundingSet"] == ""
    # Paths below /run and /var/lib as the code expects them when not root.
    assert "DEBPULSE_RUNTIME_DIR=%t/debpulse" in service["Environment"]
    assert "DEBPULSE_STATE_DIR=%S/debpulse" in service["Environment"]
    assert "ReadWritePaths" not in service  # nothing writable beyond the state directory by default


@pytest.mark.parametrize("unit", OURS, ids=lambda p: p.name)
def test_exec_start_is_a_real_command_line(unit: Path) -> None:
    """The program is one of ours and accepts the unit's subcommand and flags."""
    argv = _exec_start(unit)
    program = argv[0]
    assert program.startswith("/usr/bin/") and Path(program).name in SCRIPTS
    local = str(Path(sys.executable).with_name(Path(program).name))
    proc = subprocess.run([local, *argv[1:], "--help"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert "example" in proc.stdout  # every --help shows an example


def test_only_the_relay_owns_the_runtime_directory() -> None:
    # Another unit with RuntimeDirectory=debpulse would remove the relay's
    # socket directory when it stops.
    owners = [u.name for u in UNITS if "RuntimeDirectory" in _unit(u)["Service"]]
    assert owners == ["debpulse-relay.service"]
    relay = _unit(SYSTEMD / "debpulse-relay.service")["Service"]
    assert "--socket-mode 0660" in relay["ExecStart"]
    assert relay["RuntimeDirectoryMode"] == "0750"


def test_sysusers_and_tmpfiles_make_the_account_and_the_group_writable_spool(tmp_path: Path) -> None:
    for tool in ("systemd-sysusers", "systemd-tmpfiles"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    etc = tmp_path / "etc"
    etc.mkdir()
    for name in ("passwd", "group", "shadow", "gshadow"):
        (etc / name).touch()
    subprocess.run(["systemd-sysusers", f"--root={tmp_path}", str(SYSTEMD / "sysusers.d" / "debpulse.conf")],
                   check=True, capture_output=True, timeout=30)
    user = next(line.split(":") for line in (etc / "passwd").read_text().splitlines()
                if line.startswith("debpulse:"))
    group = next(line.split(":") for line in (etc / "group").read_text().splitlines()
                 if line.startswith("debpulse:"))
    assert user[3] == group[2] and user[5] == "/var/lib/debpulse" and user[6] == "/usr/sbin/nologin"
    proc = subprocess.run(["systemd-tmpfiles", f"--root={tmp_path}", "--create",
                           str(SYSTEMD / "tmpfiles.d" / "debpulse.conf")], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    spool = (tmp_path / "var/lib/debpulse/spool").stat()
    assert oct(spool.st_mode & 0o7777) == "0o2770"
    assert (spool.st_uid, spool.st_gid) == (int(user[2]), int(group[2]))


USER_UNITS = sorted((SYSTEMD / "user").glob("*.service"))


def test_the_desktop_user_unit(tmp_path: Path) -> None:
    """debpulse-desktop runs in the user's session: a user unit, checked by
    systemd's own verify in --user mode."""
    assert [u.name for u in USER_UNITS] == ["debpulse-desktop.service"]
    bindir = Path(sys.executable).parent
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    for unit in USER_UNITS:
        service = _unit(unit)["Service"]
        assert service["Type"] == "notify" and service["RestartPreventExitStatus"] == "2"
        assert "User" not in service  # it is the user's own
        copy = tmp_path / unit.name
        copy.write_text(unit.read_text().replace("/usr/bin/debpulse-", f"{bindir}/debpulse-"))
        proc = subprocess.run(["systemd-analyze", "--user", "verify", "--man=no", str(copy)], capture_output=True,
                              text=True, timeout=60, env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)})
        complaints = [line for line in (proc.stdout + proc.stderr).splitlines() if unit.name in line]
        assert proc.returncode == 0 and not complaints, proc.stdout + proc.stderr
        argv = service["ExecStart"].split()
        assert Path(argv[0]).name in SCRIPTS
        help_text = subprocess.run([str(bindir / Path(argv[0]).name), *argv[1:], "--help"], capture_output=True,
                                   text=True, timeout=30)
        assert help_text.returncode == 0 and "example" in help_text.stdout
