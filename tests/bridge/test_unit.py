"""deploy/systemd/debpulse-bridge.service, checked by systemd's own tool and
against the command it starts."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "systemd" / "debpulse-bridge.service"


def service() -> configparser.SectionProxy:
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser["Service"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd is not installed")
def test_systemd_analyze_verify(tmp_path):
    copy = tmp_path / UNIT.name
    copy.write_text(UNIT.read_text().replace("/usr/bin/debpulse-", f"{Path(sys.executable).parent}/debpulse-"))
    proc = subprocess.run(["systemd-analyze", "verify", "--man=no", str(copy)], capture_output=True, text=True,
                          timeout=60)
    complaints = [line for line in (proc.stdout + proc.stderr).splitlines() if UNIT.name in line]
    assert proc.returncode == 0 and not complaints, proc.stdout + proc.stderr


def test_hardened_notify_service_with_the_state_directory():
    s = service()
    assert (s["Type"], s["User"], s["Restart"]) == ("notify", "debpulse", "on-failure")
    assert s["RestartPreventExitStatus"] == "2"  # a configuration mistake is not retried in a loop
    assert (s["ProtectSystem"], s["NoNewPrivileges"], s["CapabilityBoundingSet"]) == ("strict", "yes", "")
    # The checkpoint lives where the code looks for it when not root.
    assert s["StateDirectory"] == "debpulse" and "DEBPULSE_STATE_DIR=%S/debpulse" in s["Environment"]
    assert "RuntimeDirectory" not in s  # the relay's; it would remove its socket directory on stop


def test_exec_start_runs():
    argv = service()["ExecStart"].split()
    local = Path(sys.executable).with_name(Path(argv[0]).name)
    proc = subprocess.run([str(local), *argv[1:], "--help"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0 and "example" in proc.stdout, proc.stderr
