"""debpulse-irc end to end: a real ngircd, a real reader in the channel,
real signed messages from the real relay."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from ircd import Cut
from services import wait_for

from .conftest import bot_config

ACCEPT = {"source": "hello", "version": "2.10-3", "architectures": ["source"], "suites": ["unstable"],
          "maintainer": "Santiago Vila <sanvila@debian.org>", "changed_by": "Santiago Vila <sanvila@debian.org>",
          "urgency": "medium", "closes": [], "files": [], "changes": "hello_2.10-3_source.changes",
          "signature": "verified", "signed_by": None, "route": "mail"}


def accept(source: str, suite: str = "unstable", **more: object) -> dict:
    return {**ACCEPT, "source": source, "suites": [suite], **more}


CHANGES = """\
[[irc.channels]]
name = "#changes"
include = { topics = ["dak.package.accept"] }
exclude = { packages = ["linux"] }
hold = 0.3
rate = 20
burst = 10
"""


def test_lines_follow_filters_and_burst_is_squashed(ircd, reader, irc_bot, publish, tmp_path: Path) -> None:
    r = reader("reader", "#changes", "#bugs")
    config = bot_config(tmp_path / "irc.toml", ircd.port, CHANGES + """
[[irc.channels]]
name = "#bugs"
include = { topics = ["debbugs.#"], packages = ["hello"] }
notice = true
hold = 0
""")
    bot = irc_bot(config).start()
    bot.wait_joined_bus(publish)
    wait_for(lambda: "dpbot" in r.names("#changes"), what="the bot in #changes")
    publish("dak.package.accept", accept("hello"))
    wait_for(lambda: r.said("#changes"), what="the line")
    assert r.said("#changes") == ["Santiago Vila uploaded hello 2.10-3 to unstable https://tracker.debian.org/pkg/hello"]
    publish("dak.package.accept", accept("linux"))            # excluded
    publish("dak.package.accept", *[accept(f"pkg{i}") for i in range(37)])
    wait_for(lambda: len(r.said("#changes")) >= 2, what="the squashed line")
    time.sleep(0.5)
    lines = r.said("#changes")
    assert lines[1] == "37 packages accepted into unstable: pkg0 2.10-3, pkg1 2.10-3, pkg2 2.10-3 and 34 more"
    assert len(lines) == 2
    bug = {"bug": 1000, "package": "hello", "source": "hello", "title": "does not\r\nQUIT :owned", "from":
           "A <a@example.org>", "severity": "normal", "tags": [], "message_id": None, "enriched": False,
           "status": None, "via": "mail"}
    publish("debbugs.bug.report", bug, {**bug, "package": "other", "source": "other"})
    wait_for(lambda: r.said("#bugs"), what="the bug line")
    bot.wait_acked_all()
    assert r.said("#bugs") == ["Bug #1000 (hello): new report from A: does not QUIT :owned "
                               "https://bugs.debian.org/1000"]
    assert r.commands("#bugs") == ["NOTICE"]
    assert "dpbot" in r.names("#bugs")  # the injected QUIT did nothing
    assert bot.stop() == 0


def test_restart_repeats_nothing_and_loses_nothing(ircd, reader, irc_bot, publish, tmp_path: Path) -> None:
    r = reader("reader", "#changes")
    bot = irc_bot(bot_config(tmp_path / "irc.toml", ircd.port, CHANGES.replace("hold = 0.3", "hold = 0"))).start()
    bot.wait_joined_bus(publish)
    wait_for(lambda: "dpbot" in r.names("#changes"), what="the bot in #changes")
    publish("dak.package.accept", accept("first"), accept("second"))
    wait_for(lambda: len(r.said("#changes")) == 2, what="two lines")
    assert bot.stop() == 0
    publish("dak.package.accept", accept("while-down"))
    bot.start()
    publish("dak.package.accept", accept("after"))
    wait_for(lambda: len(r.said("#changes")) >= 4, what="the lines after the restart")
    time.sleep(0.5)
    assert [line.split()[3] for line in r.said("#changes")] == ["first", "second", "while-down", "after"]
    assert bot.stop() == 0


def test_reconnect_loses_nothing(ircd, reader, irc_bot, publish, tmp_path: Path) -> None:
    cut = Cut(ircd.port)
    try:
        r = reader("reader", "#changes")
        config = bot_config(tmp_path / "irc.toml", cut.port, CHANGES.replace("hold = 0.3", "hold = 0"))
        bot = irc_bot(config).start()
        bot.wait_joined_bus(publish)
        wait_for(lambda: "dpbot" in r.names("#changes"), what="the bot in #changes")
        publish("dak.package.accept", accept("before"))
        wait_for(lambda: len(r.said("#changes")) == 1, what="the first line")
        bot.wait_acked_all()
        cut.cut()
        wait_for(lambda: "connection lost" in bot.tail(), what="the bot to notice")
        publish("dak.package.accept", *[accept(f"during{i}") for i in range(3)])
        time.sleep(0.3)
        assert len(r.said("#changes")) == 1
        cut.mend()
        wait_for(lambda: len(r.said("#changes")) >= 4, what="the lines after the reconnect", timeout=30)
        time.sleep(0.5)
        assert [line.split()[3] for line in r.said("#changes")] == ["before", "during0", "during1", "during2"]
        assert cut.accepted == 2
        assert bot.stop() == 0
    finally:
        cut.close()


def test_nick_in_use_takes_another(ircd, reader, irc_bot, publish, tmp_path: Path) -> None:
    squatter = reader("dpbot")
    r = reader("reader", "#changes")
    bot = irc_bot(bot_config(tmp_path / "irc.toml", ircd.port, CHANGES)).start()
    wait_for(lambda: "dpbot_" in r.names("#changes"), what="the bot as dpbot_")
    bot.wait_joined_bus(publish)
    publish("dak.package.accept", accept("hello"))
    wait_for(lambda: r.said("#changes", sender="dpbot_"), what="a line from dpbot_")
    assert squatter.said() == []
    assert bot.stop() == 0


def test_channel_added_without_restart(ircd, reader, irc_bot, publish, tmp_path: Path) -> None:
    r = reader("reader", "#changes", "#later")
    config = bot_config(tmp_path / "irc.toml", ircd.port, CHANGES)
    bot = irc_bot(config).start()
    bot.wait_joined_bus(publish)
    wait_for(lambda: "dpbot" in r.names("#changes"), what="the bot in #changes")
    pid = bot.proc.pid
    config.write_text(config.read_text() + '\n[[irc.channels]]\nname = "#later"\nhold = 0\n'
                      'include = { topics = ["dak.package.remove"] }\n')
    wait_for(lambda: "dpbot" in r.names("#later"), what="the bot in #later")
    removal = {"sources": [{"name": "gone", "version": "1.0-1"}], "binaries": [], "suites": ["unstable"],
               "reason": "RoQA; dead upstream", "closes": [], "route": "mail"}
    publish("dak.package.remove", removal)
    wait_for(lambda: r.said("#later"), what="the line in #later")
    assert r.said("#later") == ["Removed gone 1.0-1 from unstable https://tracker.debian.org/pkg/gone"]
    # A broken edit is refused with one line; the bot goes on with what it had.
    config.write_text(config.read_text() + '\n[[irc.channels]]\nname = "#third"\nincldue = {}\n')
    wait_for(lambda: "configuration not reloaded" in bot.tail(), what="the refusal")
    assert "unknown key 'incldue'" in bot.tail()
    assert bot.proc.pid == pid and bot.proc.poll() is None
    assert bot.stop() == 0


@pytest.mark.parametrize("args, message", [
    ([], "no [irc.networks.NAME] table"),
])
def test_configuration_errors_are_one_line(tmp_path: Path, monkeypatch, capsys, args, message) -> None:
    from debpulse.consumers.irc.cli import main

    monkeypatch.setenv("DEBPULSE_STATE_DIR", str(tmp_path / "state"))
    config = tmp_path / "c.toml"
    config.write_text("[irc]\n")
    assert main(["--config", str(config), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_sigterm_is_a_clean_stop(ircd, reader, irc_bot, publish, tmp_path: Path) -> None:
    bot = irc_bot(bot_config(tmp_path / "irc.toml", ircd.port, CHANGES)).start()
    bot.wait_joined_bus(publish)
    assert bot.stop(signal.SIGTERM) == 0
