"""A real push of 500 commits through the installed git hook becomes one
line in the channel; a small push is one line per commit."""

from __future__ import annotations

import time
from pathlib import Path

from scm.conftest import Git, wait_drained
from scm.test_hook_bus import fast_import_commits, hooked_repo
from services import wait_for

from .conftest import bot_config

GIT_CHANNEL = """\
[[irc.channels]]
name = "#commits"
include = { topics = ["git.#"] }
hold = 0.2
rate = 5
burst = 3
"""


def test_a_500_commit_push_is_one_line(ircd, reader, irc_bot, publish, bus, tmp_path: Path) -> None:
    git = Git(tmp_path / "home", bus.env)
    bare, work = hooked_repo(git, tmp_path)
    r = reader("reader", "#commits")
    bot = irc_bot(bot_config(tmp_path / "irc.toml", ircd.port, GIT_CHANNEL)).start()
    bot.wait_joined_bus(publish)
    wait_for(lambda: "dpbot" in r.names("#commits"), what="the bot in #commits")

    first = git.commit(work, "Initial packaging", {"debian/control": "Source: hello\n"})
    second = git.commit(work, "Fix typo", {"debian/control": "Source: hello\nSection: devel\n"})
    git(work, "push", "-q", "origin", "master")
    wait_for(lambda: len(r.said("#commits")) >= 2, what="the commit lines")
    fast_import_commits(git, work, 500)
    git(work, "push", "-q", "origin", "master")
    wait_drained(bare)
    wait_for(lambda: len(r.said("#commits")) >= 3, what="the push line", timeout=60)
    bot.wait_acked_all()  # the ref.update and its 100 described commits too
    time.sleep(0.5)
    lines = r.said("#commits")
    assert lines[:2] == [f"Jane Maintainer committed {first[:7]} to hello (master): Initial packaging "
                         f"https://salsa.example.org/hello/-/commit/{first}",
                         f"Jane Maintainer committed {second[:7]} to hello (master): Fix typo "
                         f"https://salsa.example.org/hello/-/commit/{second}"]
    assert len(lines) == 3, lines
    assert " pushed 500 commits to hello (master) (first 100 described) https://salsa.example.org/hello/-/" in lines[2]
    assert "101 messages in one line" in bot.tail()
    assert bot.stop() == 0
