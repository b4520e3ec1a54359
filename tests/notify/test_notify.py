"""debpulse-notify end to end: real signed messages from the real relay,
mail through the real exim4 into Maildirs, private lines through the real
debpulse-irc to a real IRC client on a real ngircd."""

from __future__ import annotations

import time
from pathlib import Path

from services import wait_for

from .conftest import bot_config, mails, notify_config

ACCEPT = {"source": "hello", "version": "2.10-3", "architectures": ["source"], "suites": ["unstable"],
          "maintainer": "Hello Team <hello-team@lists.example.org>", "changed_by": "Alice <alice@debian.org>",
          "urgency": "medium", "closes": [], "files": [], "changes": "hello_2.10-3_source.changes",
          "signature": "verified", "signed_by": None, "route": "mail"}
BUG = {"bug": 1000, "package": "hello", "source": "hello", "title": "segfaults on start", "from":
       "Carol Reporter <carol@debpulse.test>", "severity": "important", "tags": [], "message_id": None,
       "enriched": False, "status": None, "via": "mail"}


def test_my_packages_by_mail_with_headers_digest_and_no_duplicates(bus, exim, notify, publish,
                                                                   tmp_path: Path) -> None:
    alice_box, carol_box, team_box = exim.maildir("alice"), exim.maildir("carol"), exim.maildir("team")
    rules = tmp_path / "notify.d"
    rules.mkdir()
    (rules / "alice.toml").write_text("""\
mail = "alice@debpulse.test"
addresses = ["alice@debian.org"]
[[rule]]
name = "my packages"
my_packages = true
exclude = { topics = ["debbugs.bug.control"] }
to = ["mail"]
""")
    (rules / "team.toml").write_text("""\
mail = "team@debpulse.test"
addresses = ["hello-team@lists.example.org"]
[[rule]]
name = "team packages"
my_packages = true
to = ["mail"]
""")
    (rules / "carol.toml").write_text("""\
mail = "carol@debpulse.test"
[[rule]]
name = "hello news"
packages = ["hello"]
to = ["mail"]
digest = { count = 3 }
""")
    n = notify(notify_config(tmp_path / "notify.toml", exim), rules).start()
    n.wait_joined_bus(publish)
    publish("dak.package.accept", ACCEPT)        # dak mailed Alice already: no mail, but she uploaded hello
    publish("debbugs.bug.report", BUG)           # debbugs mails the maintainer (the team) and Carol, not Alice
    publish("debbugs.bug.followup", {**BUG, "from": "Dave <dave@example.org>", "title": "more\r\nBcc: x@y"})
    n.wait_acked_all()
    wait_for(lambda: len(mails(alice_box)) == 2, what="Alice's mails")
    report, m = mails(alice_box)
    assert report["Subject"] == "[debbugs] Bug #1000 (hello): new report from Carol Reporter: segfaults on start"
    assert (rules / "team.toml").exists() and mails(team_box) == []  # the team is the maintainer: debbugs mailed it
    assert m["To"] == "alice@debpulse.test" and m["From"] == "Debian notifications <notify@debpulse.test>"
    assert m["Subject"] == "[debbugs] Bug #1000 (hello): followup from Dave: more Bcc: x@y"
    assert m["X-Debpulse-Topic"] == "org.debian.dev.debbugs.bug.followup"
    assert m.get_all("X-Debpulse-Package") == ["hello"] and m["X-Debpulse-Num-Packages"] == "1"
    assert m["X-Debpulse-Category"] == "debbugs" and m["X-Debpulse-Rule"] == "alice/my packages"
    assert m["X-Debpulse-Link"] == "https://bugs.debian.org/1000"
    assert m["Auto-Submitted"] == "auto-generated" and m["Bcc"] is None
    body = m.get_content()
    assert "https://bugs.debian.org/1000" in body
    assert "You get this because of the rule 'my packages' of alice" in body and str(rules / "alice.toml") in body
    # Carol's digest of three: the accept and the followup (debbugs acknowledged her own report) and a removal.
    assert mails(carol_box) == []
    publish("dak.package.remove", {"sources": [{"name": "hello", "version": "2.10-2"}], "binaries": [],
                                   "suites": ["experimental"], "reason": "old", "closes": [], "route": "mail"})
    wait_for(lambda: mails(carol_box), what="the digest")
    [digest] = mails(carol_box)
    assert digest["X-Debpulse-Digest"] == "3"
    assert "Digest summary:" in digest.get_content()
    assert digest.get_all("X-Debpulse-Topic") == ["org.debian.dev.dak.package.accept",
                                                  "org.debian.dev.debbugs.bug.followup",
                                                  "org.debian.dev.dak.package.remove"]
    assert n.stop() == 0


def test_private_irc_lines_through_the_bot_and_retries_while_it_is_away(
        bus, exim, ircd, reader, notify, publish, tmp_path: Path) -> None:
    from irc.conftest import Bot

    alice = reader("alice")
    rules = tmp_path / "notify.d"
    rules.mkdir()
    (rules / "alice.toml").write_text("""\
irc = "alice"
[[rule]]
name = "hello on irc"
packages = ["hello"]
topics = ["debbugs.#"]
to = ["irc"]
[[rule]]
name = "removals, a digest of two"
topics = ["dak.package.remove"]
to = ["irc"]
digest = { count = 2 }
""")
    bot = Bot(bus, tmp_path, bot_config(tmp_path / "irc.toml", ircd.port, ""))
    n = notify(notify_config(tmp_path / "notify.toml", exim, bot.control), rules).start()
    n.wait_joined_bus(publish)
    publish("debbugs.bug.report", BUG)                      # the bot is not running yet
    wait_for(lambda: "irc to alice (hello on irc) failed" in n.tail(), what="a failed try")
    bot.start()
    wait_for(lambda: alice.said("alice"), what="the private line", timeout=30)
    assert alice.said("alice", sender="dpbot") == [
        "[debbugs] Bug #1000 (hello): new report from Carol Reporter: segfaults on start https://bugs.debian.org/1000"]
    removal = {"sources": [{"name": "old", "version": "1"}], "binaries": [], "suites": ["unstable"],
               "reason": "RoQA", "closes": [], "route": "mail"}
    publish("dak.package.remove", removal, {**removal, "sources": [{"name": "older", "version": "2"}]})
    wait_for(lambda: len(alice.said("alice")) == 2, what="the digest line")
    assert alice.said("alice")[1] == ("2 messages (removals, a digest of two): Removed old 1 from unstable; "
                                      "Removed older 2 from unstable")
    assert n.stop() == 0 and bot.stop() == 0


def test_restart_loses_and_repeats_nothing(bus, exim, notify, publish, tmp_path: Path) -> None:
    box = exim.maildir("erin")
    rules = tmp_path / "notify.d"
    rules.mkdir()
    (rules / "erin.toml").write_text('mail = "erin@debpulse.test"\n[[rule]]\nname = "bugs"\n'
                                     'topics = ["debbugs.bug.report"]\nto = ["mail"]\n')
    config = notify_config(tmp_path / "notify.toml", exim)
    n = notify(config, rules).start()
    n.wait_joined_bus(publish)
    publish("debbugs.bug.report", {**BUG, "bug": 1})
    wait_for(lambda: len(mails(box)) == 1, what="the first mail")
    assert n.stop() == 0
    publish("debbugs.bug.report", {**BUG, "bug": 2})        # while notify is down
    n.start()
    publish("debbugs.bug.report", {**BUG, "bug": 3})
    wait_for(lambda: len(mails(box)) >= 3, what="the mails after the restart")
    n.wait_acked_all()
    time.sleep(0.5)
    assert [m["X-Debpulse-Link"] for m in mails(box)] == [f"https://bugs.debian.org/{i}" for i in (1, 2, 3)]
    assert n.stop() == 0


def test_bad_rules_are_one_line_and_exit_2(tmp_path: Path, monkeypatch, capsys) -> None:
    from debpulse.consumers.notify.cli import main

    monkeypatch.setenv("DEBPULSE_STATE_DIR", str(tmp_path / "state"))
    rules = tmp_path / "notify.d"
    rules.mkdir()
    (rules / "x.toml").write_text('mail = "x@example.org"\n[[rule]]\nname = "r"\npackages = ["a"]\nto = ["mial"]\n')
    config = tmp_path / "c.toml"
    config.write_text("[notify]\n")
    assert main(["--config", str(config), "--rules", str(rules), "--check"]) == 2
    err = capsys.readouterr().err
    assert "x.toml: rule 'r': unknown destination 'mial'" in err and len(err.strip().splitlines()) == 1
    config.write_text("[notify]\nsendmial = []\n")
    assert main(["--config", str(config), "--rules", str(rules), "--check"]) == 2
    assert "[notify] unknown key 'sendmial'" in capsys.readouterr().err


def test_mail_through_the_mta_smtp_listener(bus, exim, exim_smtp, notify, publish, tmp_path: Path) -> None:
    """What the hardened unit uses: NoNewPrivileges= keeps setuid sendmail
    programs from queueing, so mail goes to the MTA's listener instead."""
    box = exim.maildir("frank")
    rules = tmp_path / "notify.d"
    rules.mkdir()
    (rules / "frank.toml").write_text('mail = "frank@debpulse.test"\n[[rule]]\nname = "hello"\n'
                                      'packages = ["hello"]\nto = ["mail"]\n')
    config = tmp_path / "notify.toml"
    config.write_text(f'[notify]\nfrom = "n@debpulse.test"\nsmtp = "127.0.0.1:{exim_smtp.port}"\n')
    n = notify(config, rules).start()
    n.wait_joined_bus(publish)
    publish("debbugs.bug.report", BUG)
    wait_for(lambda: mails(box), what="the mail")
    [m] = mails(box)
    assert m["X-Debpulse-Package"] == "hello" and m["To"] == "frank@debpulse.test"
    assert n.stop() == 0
