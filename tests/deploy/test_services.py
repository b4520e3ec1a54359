"""The long-running programs started as their units start them (Type=notify,
configuration from the example /etc/debpulse of their host): READY=1 reaches
the service manager's socket, /metrics serves the counters, SIGTERM stops
them cleanly.  Real relay, real adapters, real mail from the shared samples."""

from __future__ import annotations

import mailbox
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from testbus import ROOT, GpgKey, free_port

from .roles import Notify, Role, command, drop_role, install_role, service, wait_metric

LOCAL = "tcp://127.0.0.1"
UNITS = ROOT / "deploy" / "systemd"


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[Notify]:
    n = Notify(tmp_path)
    yield n
    n.close()


def _role(name: str, key: GpgKey) -> Iterator[Role]:
    r = install_role(name, key)
    yield r
    drop_role(r)


@pytest.fixture
def ftp_master(gpg_key: GpgKey) -> Iterator[Role]:
    yield from _role("ftp-master", gpg_key)


@pytest.fixture
def bugs(gpg_key: GpgKey) -> Iterator[Role]:
    yield from _role("bugs", gpg_key)


@pytest.fixture
def git_host(gpg_key: GpgKey) -> Iterator[Role]:
    yield from _role("git-host", gpg_key)


def unit_argv(unit: str) -> list[str]:
    """The unit's ExecStart, with this installation's console script."""
    for line in (UNITS / unit).read_text().splitlines():
        if line.startswith("ExecStart="):
            program, *args = line[len("ExecStart="):].split()
            return [*command(Path(program).name), *args]
    raise AssertionError(f"{unit} has no ExecStart")


def relay_argv(role: Role, metrics: int) -> list[str]:
    # The unit's command line; only the ports move off the well-known ones
    # (other tests may run beside this one); later flags win.
    return [*unit_argv("debpulse-relay.service"), "--config", str(role.config),
            "--publish", f"{LOCAL}:{free_port()}", "--replay", f"{LOCAL}:{free_port()}", "--metrics-port", str(metrics)]


def deliver(maildir: Path, mail: bytes) -> None:
    """As an MTA does: written in tmp/, renamed into new/."""
    for sub in ("tmp", "new", "cur"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    mailbox.Maildir(str(maildir), create=False).add(mail)


def test_ftp_master_relay_and_dak(ftp_master: Role, notify: Notify, shared_fixtures: Path) -> None:
    role = ftp_master
    relay_port, dak_port = free_port(), free_port()
    with service(relay_argv(role, relay_port), role, "relay", notify) as relay:
        assert any("READY=1" in m for m in notify.messages)
        socket_path = role.path("/run/debpulse/relay.sock")
        assert oct(socket_path.stat().st_mode & 0o777) == "0o660"
        notify.messages.clear()
        dak = [*unit_argv("debpulse-dak.service"), "--config", str(role.config), "--metrics-port", str(dak_port)]
        with service(dak, role, "dak", notify) as adapter:
            assert any(m.startswith("READY=1\nSTATUS=watching 2 source(s)") for m in notify.messages)
            mail = (shared_fixtures / "dak/mails/01-Accepted-announce-debian-devel-changes_hebcal_4.31-1_2022.eml")
            deliver(role.path("/var/lib/debpulse/mail/dak"), mail.read_bytes())
            found = wait_metric(dak_port, 'debpulse_mail_handled_total{adapter="dak"}', 1)
            assert found['debpulse_source_lag_seconds{adapter="dak",source="maildir"}'] == 0
            assert found['debpulse_dak_events_total{route="mail",topic="dak.package.accept"}'] == 1
            accepted = 'debpulse_emitted_total{topic="org.debian.production.dak.package.accept"}'
            assert wait_metric(relay_port, accepted, 1)[accepted] == 1
            assert not role.path("/var/lib/debpulse/dak/outbox.sqlite").exists()  # the relay published it
            # Bad mail: moved aside, counted by adapter.
            deliver(role.path("/var/lib/debpulse/mail/dak"), b"From: nobody\n\nnot a dak mail at all\n")
            deliver(role.path("/var/lib/debpulse/mail/dak"), mail.read_bytes())
            wait_metric(dak_port, 'debpulse_mail_handled_total{adapter="dak"}', 2)
            adapter.send_signal(signal.SIGTERM)
            assert adapter.wait(15) == 0
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(f"http://127.0.0.1:{dak_port}/metrics", timeout=2)
        relay.send_signal(signal.SIGTERM)
        assert relay.wait(15) == 0
    assert any("STOPPING=1" in m for m in notify.drain())


def test_adapter_spools_without_relay_and_counts_it(ftp_master: Role, shared_fixtures: Path) -> None:
    """The dak adapter with no relay running: events go to the spool (counted),
    and a relay started later publishes them."""
    role = ftp_master
    deliver(role.path("/var/lib/debpulse/mail/dak"),
            (shared_fixtures / "dak/mails/03-ACCEPTED-maintainer_xfsprogs_5.6.0-1_amd64_2020.eml").read_bytes())
    proc = subprocess.run([*command("debpulse-dak"), "run", "--once", "--config", str(role.config)],
                          env=role.env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "spooled" in proc.stderr
    spooled = sorted(role.path("/var/lib/debpulse/spool").glob("*.json"))
    assert len(spooled) == 1
    notify = Notify(role.root)
    try:
        port = free_port()
        with service(relay_argv(role, port), role, "relay", notify):
            found = wait_metric(port, "debpulse_spool_drained_total", 1)
            assert found['debpulse_emitted_total{topic="org.debian.production.dak.package.accept"}'] == 1
        assert not list(role.path("/var/lib/debpulse/spool").glob("*.json"))
    finally:
        notify.close()


def test_in_process_spool_counter(tmp_path: Path) -> None:
    from debpulse.emitters import metrics
    from debpulse.emitters.event import Event
    from debpulse.emitters.options import BusOptions
    from debpulse.emitters.relay_client import RelayClient

    before = metrics.value("debpulse_spooled_total")
    client = RelayClient(BusOptions(name="t", relay=f"ipc://{tmp_path}/none.sock", state_dir=tmp_path))
    event = Event("dak.package.reject", {"source": "hello", "version": "1.0-1", "reason": "no"}, key="k1")
    assert client.emit_many([event, event]) == "spool"
    assert metrics.value("debpulse_spooled_total") == before + 2


def test_bugs_host_relay_mail_watcher_and_poller_ports(bugs: Role, notify: Notify, shared_fixtures: Path) -> None:
    role = bugs
    relay_port = free_port()
    with service(relay_argv(role, relay_port), role, "relay", notify):
        # The configured [debbugs] metrics_port (no flag): moved to a free port in the copy.
        watcher_port = free_port()
        text = role.config.read_text().replace("metrics_port = 9953", f"metrics_port = {watcher_port}")
        role.write_config(text)
        notify.messages.clear()
        watcher = [*command("debpulse-debbugs"), "--config", str(role.config), "--no-soap",
                   *unit_argv("debpulse-debbugs.service")[1:]]
        with service(watcher, role, "debbugs", notify):
            assert any("STATUS=watching" in m for m in notify.messages)
            mail = shared_fixtures / "debbugs/mails/bts-followup_979653.eml"
            deliver(role.path("/var/lib/debpulse/mail/debbugs"), mail.read_bytes())
            found = wait_metric(watcher_port, 'debpulse_mail_handled_total{adapter="debbugs"}', 1)
            assert 'debpulse_source_lag_seconds{adapter="debbugs",source="maildir"}' in found
            wait_metric(relay_port, 'debpulse_emitted_total{topic="org.debian.production.debbugs.bug.followup"}', 1)
            # Two programs given one port: a one-line configuration error, exit 2.
            clash = subprocess.run([*command("debpulse-debbugs"), "--config", str(role.config), "--no-soap",
                                    "maildir"], env=role.env, capture_output=True, text=True, timeout=60)
            assert clash.returncode == 2
            assert clash.stderr.splitlines() == [
                f"debpulse-debbugs: metrics port {watcher_port}: Address already in use"]


def test_git_webhook_ready_and_metrics(git_host: Role, notify: Notify) -> None:
    role = git_host
    listen, port = free_port(), free_port()
    argv = [*unit_argv("debpulse-git-webhook.service"), "--config", str(role.config),
            "--listen", f"127.0.0.1:{listen}", "--metrics-port", str(port)]
    with service(argv, role, "webhook", notify) as webhook:
        assert any(f"STATUS=listening on http://127.0.0.1:{listen}/" in m for m in notify.messages)
        req = urllib.request.Request(f"http://127.0.0.1:{listen}/", data=b"{}", method="POST",
                                     headers={"X-Gitlab-Token": "wrong", "X-Gitlab-Event": "Push Hook"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(req, timeout=5)
        assert refused.value.code == 401
        # Counted once the answer is written: the client may ask before that.
        assert wait_metric(port, 'debpulse_git_webhook_requests_total{code="401"}', 1)[
            'debpulse_git_webhook_requests_total{code="401"}'] == 1
        webhook.send_signal(signal.SIGTERM)
        assert webhook.wait(15) == 0


def test_git_host_hook_hands_a_push_to_the_relay(git_host: Role, notify: Notify, tmp_path: Path) -> None:
    """The post-receive hook with the git host's configuration: the push goes
    through [bus] relay to the relay, which publishes it."""
    role = git_host
    work, bare = tmp_path / "work", role.path("/srv/git/debian/hello.git")
    git = ["git", "-c", "user.name=Jane Maintainer", "-c", "user.email=jane@example.org"]
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    subprocess.run(["git", "init", "-q", "-b", "master", str(work)], check=True)
    (work / "README").write_text("hello\n")
    subprocess.run([*git, "-C", str(work), "add", "README"], check=True)
    subprocess.run([*git, "-C", str(work), "commit", "-q", "-m", "Initial packaging"], check=True)
    subprocess.run(["git", "-C", str(work), "push", "-q", str(bare), "master"], check=True, capture_output=True)
    rev = subprocess.run(["git", "-C", str(bare), "rev-parse", "master"], check=True, capture_output=True,
                         text=True).stdout.strip()
    port = free_port()
    with service(relay_argv(role, port), role, "relay", notify):
        hook = subprocess.run([*command("debpulse-git"), "hook", "--config", str(role.config), "--git-dir", str(bare)],
                              input=f"{'0' * 40} {rev} refs/heads/master\n", env=role.env, capture_output=True,
                              text=True, timeout=60)
        assert hook.returncode == 0 and not hook.stderr, hook.stderr
        found = wait_metric(port, 'debpulse_emitted_total{topic="org.debian.production.git.receive"}', 1)
        assert found['debpulse_emitted_total{topic="org.debian.production.git.ref.create"}'] == 1
    assert not list(role.path("/var/lib/debpulse/spool").glob("*.json"))
