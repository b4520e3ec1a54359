"""debpulse-desktop end to end: real signed messages, a real session bus,
dunst under Xvfb receiving the notifications."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from services import wait_for

ACCEPT = {"source": "hello", "version": "2.10-3", "architectures": ["source"], "suites": ["unstable"],
          "maintainer": "Alice <alice@debian.org>", "changed_by": "Alice <alice@debian.org>",
          "urgency": "medium", "closes": [], "files": [], "changes": "hello_2.10-3_source.changes",
          "signature": "verified", "signed_by": None, "route": "mail"}
BUG = {"bug": 1000, "package": "hello", "source": "hello", "title": "crash <b>bold</b> & more", "from":
       "Carol <carol@example.org>", "severity": "important", "tags": [], "message_id": None,
       "enriched": False, "status": None, "via": "mail"}


def rules(tmp_path: Path) -> Path:
    path = tmp_path / "notify.toml"
    path.write_text("""\
addresses = ["alice@debian.org"]
mail = "alice@example.org"
[[rule]]
name = "my packages"
my_packages = true
exclude = { topics = ["dak.package.accept"] }
to = ["desktop", "mail"]
""")
    return path


def test_notifications_follow_the_rules_and_a_burst_is_one(bus, session, desktop, publish, tmp_path: Path) -> None:
    d = desktop(rules(tmp_path)).start()
    d.wait_joined_bus(publish)
    publish("dak.package.accept", ACCEPT)                   # hello is Alice's now (the upload itself is excluded)
    publish("debbugs.bug.report", BUG, {**BUG, "package": "other", "source": "other", "bug": 1001})
    wait_for(lambda: session.notifications(), what="a notification")
    d.wait_acked_all()
    assert session.notifications() == [
        ("debpulse: debbugs", 'Bug #1000 (hello): new report from Carol: crash &lt;b&gt;bold&lt;/b&gt; &amp; more '
                              '<a href="https://bugs.debian.org/1000">https://bugs.debian.org/1000</a>')]
    publish("debbugs.bug.followup", *[{**BUG, "bug": 2000 + i, "title": f"bug {i}"} for i in range(40)])
    wait_for(lambda: len(session.notifications()) == 2, what="the burst")
    d.wait_acked_all()
    time.sleep(0.5)
    notifications = session.notifications()
    assert len(notifications) == 2
    summary, body = notifications[1]
    assert summary == "debpulse: 40 messages (debbugs)"
    assert body.startswith("Bug #2000 (hello): followup from Carol: bug 0 ") and body.endswith("and 35 more")
    assert d.stop() == 0


def test_stopped_process_catches_up_and_restart_repeats_nothing(bus, session, desktop, publish,
                                                                tmp_path: Path) -> None:
    d = desktop(rules(tmp_path)).start()
    d.wait_joined_bus(publish)
    publish("dak.package.accept", ACCEPT)
    publish("debbugs.bug.report", BUG)
    wait_for(lambda: len(session.notifications()) == 1, what="the first notification")
    d.send(signal.SIGSTOP)                                  # as a suspended laptop
    try:
        publish("debbugs.bug.report", {**BUG, "bug": 1001, "title": "while asleep"})
    finally:
        d.send(signal.SIGCONT)
    wait_for(lambda: len(session.notifications()) == 2, what="what came while stopped")
    d.wait_acked_all()
    assert d.stop() == 0
    publish("debbugs.bug.report", {**BUG, "bug": 1002, "title": "while off"})
    d.start()
    wait_for(lambda: len(session.notifications()) == 3, what="what came while off")
    d.wait_acked_all()
    time.sleep(0.5)
    assert [b.split(":", 1)[0] for _, b in session.notifications()] == [
        "Bug #1000 (hello)", "Bug #1001 (hello)", "Bug #1002 (hello)"]
    assert d.stop() == 0


def test_no_notification_server_waits_and_loses_nothing(bus, session, desktop, publish, tmp_path: Path) -> None:
    dunst = session.procs[-1]
    dunst.send_signal(signal.SIGTERM)
    dunst.wait(10)
    d = desktop(rules(tmp_path)).start()
    d.wait_joined_bus(publish)
    publish("dak.package.accept", ACCEPT)
    publish("debbugs.bug.report", BUG)
    wait_for(lambda: "cannot show notifications" in d.tail(), what="a failed try")
    assert d.stop() == 0                                    # not shown: not acknowledged
    with open(session.dunst_out, "ab") as out:
        import os
        import subprocess

        session.procs[-1] = subprocess.Popen(["dunst", "-print"], stdout=out, stderr=subprocess.DEVNULL,
                                             env={**os.environ, **session.env})
    session._wait_for_server()
    d.start()
    wait_for(lambda: len(session.notifications()) == 1, what="the notification after the restart")
    assert session.notifications()[0][1].startswith("Bug #1000 (hello)")
    assert d.stop() == 0
