"""The worked examples in deploy/examples/trigger: the importer scripts on
their own, and run by debpulse-trigger from real messages on a real relay."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from .conftest import wait_for

EXAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "examples" / "trigger"
UDD = EXAMPLES / "udd-import-sources"
TRACKER = EXAMPLES / "tracker-refresh-bugs"


@pytest.fixture
def fake(tmp_path: Path):
    """A stand-in for UDD's update-and-run.sh or the tracker's manage.py:
    one file per call with its arguments, one per line."""
    calls = tmp_path / "calls"
    calls.mkdir()
    script = tmp_path / "fake-importer"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{calls}/call-$$"\n')
    script.chmod(0o755)

    def called() -> list[list[str]]:
        return sorted(p.read_text().splitlines() for p in calls.iterdir())

    return script, called


def run(script: Path, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DEBPULSE_")}
    return subprocess.run([str(script)], env={**base, **env}, capture_output=True, text=True, timeout=20, cwd="/")


def test_udd_import_passes_only_configured_source_names(fake, tmp_path: Path) -> None:
    script, called = fake
    hostile = f"$(touch {tmp_path}/pwned) * ../etc --all"
    r = run(UDD, UDD_UPDATE_AND_RUN=str(script), DEBPULSE_COUNT="4",
            DEBPULSE_SUITES=f"unstable {hostile} experimental unstable bookworm")
    assert r.returncode == 0, r.stderr
    assert called() == [["debian-sid", "debian-experimental"]]
    assert "4 upload(s): re-importing debian-sid debian-experimental" in r.stdout
    assert not (tmp_path / "pwned").exists()
    r = run(UDD, UDD_UPDATE_AND_RUN=str(script), DEBPULSE_SUITES="bookworm-backports")
    assert r.returncode == 0 and "nothing to do" in r.stdout and len(called()) == 1


def test_tracker_refresh_per_package_or_once(fake, tmp_path: Path) -> None:
    script, called = fake
    r = run(TRACKER, TRACKER_REFRESH_PACKAGE=f"{script} --bugs",
            DEBPULSE_PACKAGES=f"xfsprogs -rf $(touch {tmp_path}/pwned) ../x gawk libc6-dev Upper")
    assert r.returncode == 0, r.stderr
    assert called() == [["--bugs", "gawk"], ["--bugs", "libc6-dev"], ["--bugs", "xfsprogs"]]
    assert r.stdout.count("skipping a name") == 5  # -rf, both words of $(...), ../x, Upper
    assert not (tmp_path / "pwned").exists()
    r = run(TRACKER, TRACKER_MANAGE=str(script), DEBPULSE_PACKAGES="xfsprogs", DEBPULSE_COUNT="1")
    assert r.returncode == 0 and ["tracker_run_task", "UpdatePackageBugStats"] in called()
    failing = tmp_path / "fail"
    failing.write_text("#!/bin/sh\nexit 1\n")
    failing.chmod(0o755)
    assert run(TRACKER, TRACKER_REFRESH_PACKAGE=str(failing), DEBPULSE_PACKAGES="gawk").returncode == 1


def test_examples_run_by_the_trigger_from_real_messages(bus, trigger, publish, fake, monkeypatch,
                                                         shared_fixtures: Path) -> None:
    from debpulse.adapters.dak.mail import parse_mail as dak_mail
    from debpulse.adapters.debbugs.mail import parse_mail as bug_mail

    script, called = fake
    monkeypatch.setenv("UDD_UPDATE_AND_RUN", str(script))  # the trigger passes its environment on
    monkeypatch.setenv("TRACKER_REFRESH_PACKAGE", f"{script} --bugs")
    udd = trigger("udd-sources", [str(UDD)], "--topic", "dak.package.accept", "--debounce", "0.5")
    tracker = trigger("tracker-bugs", [str(TRACKER)], "--topic", "debbugs.bug.#", "--debounce", "0.5")
    udd.wait_joined(publish)
    tracker.wait_joined(publish)
    [accept] = dak_mail((shared_fixtures / "dak/mails/04-ACCEPTED-maintainer_xfsprogs_6.12.0-1_source_2024-pgpmime.eml")
                        .read_bytes()).events
    [followup] = bug_mail((shared_fixtures / "debbugs/mails/bts-followup_979653.eml").read_bytes()).events
    publish(accept.topic, accept.body)
    publish(followup.topic, followup.body)
    wait_for(lambda: len(called()) == 2, what="both examples to run")
    assert called() == [["--bugs", "xfsprogs"], ["debian-sid"]]
    assert "re-importing debian-sid" in udd.log.read_text()
    assert udd.stop() == 0 and tracker.stop() == 0
