"""Events that started as real dak, debbugs and git samples, and how tests
put them on the bus (through the real relay)."""

from __future__ import annotations

import argparse
import subprocess
from collections.abc import Iterable
from pathlib import Path

from debpulse.adapters.dak.mail import parse_mail as parse_dak_mail
from debpulse.adapters.debbugs.mail import parse_mail as parse_debbugs_mail
from debpulse.adapters.scm import push, refs
from debpulse.adapters.scm.commits import Repository, gather
from debpulse.emitters.config import Config
from debpulse.emitters.event import Event
from debpulse.emitters.options import BusOptions
from debpulse.emitters.relay_client import RelayClient

DAK_MAIL = "03-ACCEPTED-maintainer_xfsprogs_5.6.0-1_amd64_2020.eml"
DEBBUGS_MAIL = "bts-followup_979653.eml"


def dak_events(fixtures: Path) -> list[Event]:
    return list(parse_dak_mail((fixtures / "dak" / "mails" / DAK_MAIL).read_bytes()).events)


def debbugs_events(fixtures: Path) -> list[Event]:
    return list(parse_debbugs_mail((fixtures / "debbugs" / "mails" / DEBBUGS_MAIL).read_bytes()).events)


def git_events(fixtures: Path, work: Path, max_commits: int = 2) -> list[Event]:
    """A push of the sample repository (an update, a tag, a new branch), read from a bare clone of its bundle."""
    bare = work / "hello.git"
    if not bare.exists():
        subprocess.run(["git", "clone", "-q", "--bare", str(fixtures / "git" / "hello-packaging.bundle"), str(bare)],
                       check=True, capture_output=True)
    updates = refs.parse((fixtures / "git" / "post-receive-stdin-02-update-tag-newbranch.txt").read_bytes())
    facts = gather(Repository(bare), updates, max_commits)
    ctx = push.Context(repo="hello", path=str(bare), agent="jane", max_commits=max_commits)
    return push.events(ctx, facts)


def publish(bus, events: Iterable[Event], name: str = "test") -> None:  # type: ignore[no-untyped-def]
    """Hand events to the test relay, as an adapter's default emitter does."""
    args = argparse.Namespace(relay=bus.relay_socket, state_dir=str(bus.state / "publishers"))
    opts = BusOptions.from_args(args, Config(), name=name)
    opts.relay_timeout = 10.0  # a loaded test machine; a spooled event would fail the test below
    client = RelayClient(opts)
    try:
        assert client.emit_many(list(events)) == "relay"
    finally:
        client.close()
