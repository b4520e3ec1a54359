"""The example configuration for the telling consumers loads as the
programs read it."""

from __future__ import annotations

from pathlib import Path

from testbus import ROOT

from debpulse.consumers.common.facts import facts
from debpulse.consumers.irc.settings import settings_from
from debpulse.consumers.notify.rules import RuleBook, load_file, load_rules
from debpulse.emitters.config import load_config

EXAMPLES = ROOT / "deploy" / "examples" / "notifications"


def test_irc_and_notify_tables_load() -> None:
    config = load_config(str(EXAMPLES / "debpulse.toml"))
    irc = settings_from(config)
    assert [c.name for c in irc.channels] == ["#debian-devel-changes", "#debian-ocaml", "#debian-boot"]
    ocaml = irc.channels[1]
    upload = facts("org.debian.production.dak.package.accept", {
        "source": "ocaml", "version": "5.2-1", "suites": ["unstable"], "architectures": ["source"],
        "maintainer": "Debian OCaml Maintainers <debian-ocaml-maint@lists.debian.org>", "changed_by": None})
    assert ocaml.wants(upload) and not irc.channels[2].wants(upload)


def test_rule_files_load(tmp_path: Path, capsys) -> None:
    book = RuleBook(load_rules(EXAMPLES / "notify.d"))
    assert sorted(book.recipients) == ["alice", "ocaml-team"] and len(book) == 4
    desktop = load_file(EXAMPLES / "desktop-notify.toml")
    assert all("desktop" in r.to for r in desktop.rules)
    from debpulse.consumers.desktop.cli import main as desktop_main
    from debpulse.consumers.notify.cli import main as notify_main

    config = str(EXAMPLES / "debpulse.toml")
    assert notify_main(["--config", config, "--rules", str(EXAMPLES / "notify.d"), "--check"]) == 0
    assert desktop_main(["--config", config, "--rules", str(EXAMPLES / "desktop-notify.toml"), "--check"]) == 0
    out = capsys.readouterr().out
    assert "2 people or teams, 4 rules: fine" in out and "2 desktop rule(s): fine" in out
