"""Each adapter fed with a sample input and run as its real command, the
way an admin runs it.  A feed returns once its adapter has handed the event
to the relay (or is watching for it), raises Skipped when this machine
cannot run it, or StepFailed when something went wrong."""

from __future__ import annotations

import mailbox
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import samples
from .children import Children, StepFailed, command, wait_until_gone
from .wannabuild_db import ARCH, SUITE, ThrowawayPostgres, postgres_bin, unreachable_by_postgres


class Skipped(Exception):
    """This machine lacks what a feed needs; the message says what."""


@dataclass
class Workspace:
    base: Path              # the demo's temporary directory
    children: Children


@dataclass(frozen=True)
class Feed:
    adapter: str
    topic: str              # the message the feed must bring, relative to org.debian.<env>.
    story: str              # what happens, in one line
    run: Callable[[Workspace], None]
    log: str                # the adapter's log, relative to the workspace (without -v)


def _tool(script: str, module: str, *args: str) -> list[str]:
    return [*command(script, module), *args]


def git_push(ws: Workspace) -> None:
    """A bare repository with the hook `debpulse-git install` puts in, a
    clone, a commit and a real `git push`."""
    top = ws.base / "git"
    top.mkdir()
    bare, work = top / "hello.git", top / "hello"

    def git(*args: str, cwd: Path = top) -> None:
        ws.children.run("git", ["git", *args], cwd=cwd)

    git("init", "-q", "--bare", "--initial-branch=main", str(bare))
    ws.children.run("debpulse-git", _tool("debpulse-git", "debpulse.adapters.scm.cli", "install", str(bare)))
    git("clone", "-q", str(bare), str(work))
    git("config", "user.name", samples.MAINTAINER.split(" <")[0], cwd=work)
    git("config", "user.email", samples.MAINTAINER.split("<")[1].rstrip(">"), cwd=work)
    (work / "hello.c").write_text('#include <stdio.h>\n\nint main(void)\n{\n\tputs("Hello, world!");\n'
                                  "\treturn 0;\n}\n")
    git("add", "hello.c", cwd=work)
    git("commit", "-q", "-m", "Greet the whole world again", cwd=work)
    git("push", "-q", "origin", "main", cwd=work)
    # The hook saved the push and handed it to `debpulse-git hook --pending`
    # in the background; the push itself did not wait for the bus.
    pending = bare / "debpulse" / "pending"
    deadline = time.monotonic() + 15
    while any(pending.iterdir()):
        if time.monotonic() > deadline:
            log = bare / "debpulse" / "hook.log"
            raise StepFailed(f"the hook's background job did not publish the push; {log}:\n"
                             + (log.read_text(errors="replace")[-800:] if log.exists() else "(empty)"))
        time.sleep(0.05)
    wait_until_gone(str(pending), 5)


def dak_mail(ws: Workspace) -> None:
    """dak's ACCEPTED mail, delivered into a Maildir; `debpulse-dak --once`
    checks the embedded .changes against the uploader's key."""
    uploader = samples.uploader_key()
    keyring = ws.base / "uploaders.asc"
    keyring.write_text(str(uploader.extract_certificate()))
    maildir = ws.base / "mail" / "dak"
    maildir.parent.mkdir(exist_ok=True)
    mailbox.Maildir(maildir, create=True).add(samples.accepted_mail(uploader))
    ws.children.run("debpulse-dak", _tool("debpulse-dak", "debpulse.adapters.dak.cli", "--maildir", str(maildir),
                                          "--keyring", str(keyring), "--once"))


def wannabuild_transition(ws: Workspace) -> None:
    """A throwaway PostgreSQL with wanna-build's tables, a buildd taking
    hello for building, and `debpulse-wanna-build --once` as the read-only guest."""
    bindir, why = postgres_bin()
    if bindir is None:
        raise Skipped(why)
    if (closed := unreachable_by_postgres(ws.base)) is not None:
        raise Skipped(f"the server runs as postgres, which cannot enter {closed} (set TMPDIR elsewhere)")
    db = ThrowawayPostgres(ws.base / "pg", bindir, ws.children)
    db.start()
    db.load_schema()
    db.change_state(samples.SOURCE, samples.VERSION, "Building", "--take", previous="Needs-Build",
                    builder=f"buildd_{ARCH}-x86-01")
    # A first run starts from the present; --start beginning reads the change
    # made a moment ago.  PostgreSQL stays up until the end of the demo.
    ws.children.run("debpulse-wanna-build", _tool(
        "debpulse-wanna-build", "debpulse.adapters.wannabuild.cli", "--dsn", db.dsn(), "--arch", ARCH,
        "--suite", SUITE, "--start", "beginning", "--once"))


def debbugs_mail(ws: Workspace) -> None:
    """The watcher `debpulse-debbugs maildir` runs like a service; debbugs'
    report mail is delivered into its Maildir while it watches."""
    maildir = ws.base / "mail" / "bugs"
    maildir.parent.mkdir(exist_ok=True)
    box = mailbox.Maildir(maildir, create=True)
    ws.children.start("debpulse-debbugs", _tool("debpulse-debbugs", "debpulse.adapters.debbugs.cli",
                                                "--no-soap", "maildir", str(maildir)))
    box.add(samples.bug_report_mail())


FEEDS = (
    Feed("git", "git.receive",
         "`debpulse-git install` puts its hook into a bare repository; a clone pushes one commit", git_push,
         "git/hello.git/debpulse/hook.log"),
    Feed("dak", "dak.package.accept",
         f"dak's mail \"{samples.CHANGES_NAME} ACCEPTED into {samples.SUITE}\" lands in a Maildir;"
         " `debpulse-dak --maildir DIR --once` reads it", dak_mail, "logs/debpulse-dak.log"),
    Feed("wanna-build", "wannabuild.package.state.update",
         f"a throwaway PostgreSQL with wanna-build's tables, where a buildd takes {samples.SOURCE} on {ARCH};"
         " `debpulse-wanna-build --once` reads it as the read-only guest", wannabuild_transition,
         "logs/debpulse-wanna-build.log"),
    Feed("debbugs", "debbugs.bug.report",
         f"`debpulse-debbugs maildir DIR` watches a Maildir; debbugs' \"report {samples.BUG}\" mail is delivered",
         debbugs_mail, "logs/debpulse-debbugs.log"),
)
