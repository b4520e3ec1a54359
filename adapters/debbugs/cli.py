"""debpulse-debbugs: debbugs mail and SOAP into signed bus messages."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from debpulse.adapters.common.maildir import MaildirSource, pipe_main
from debpulse.adapters.common.position import Position
from debpulse.adapters.common.quarantine import Quarantine
from debpulse.adapters.common.service import (
    adapter_state_dir,
    add_metrics_flag,
    check_tables,
    metrics_port,
    ready,
    serve_metrics,
)
from debpulse.emitters import cli
from debpulse.emitters.config import Config, Key, Table, Values
from debpulse.emitters.emitter import open_emitter
from debpulse.emitters.errors import ConfigError

from .client import DEFAULT_URL, DebbugsClient
from .handler import Enricher, MailHandler
from .reconcile import Reconciler

log = logging.getLogger("debpulse-debbugs")

DEBBUGS = Table("debbugs", {
    "maildir": Key(str, None, "the Maildir that receives debbugs' mail (`debpulse-debbugs maildir`)"),
    "soap_url": Key(str, DEFAULT_URL, "debbugs' SOAP endpoint"),
    "soap": Key(bool, True, "ask SOAP: `false` means no enrichment of the mail and no reconciliation"),
    "soap_timeout": Key((int, float), 30, "seconds per SOAP request"),
    "soap_attempts": Key(int, 3, "tries per SOAP request"),
    "enrich_pause": Key((int, float), 60, "seconds SOAP is left alone after a failure (the mail is published "
                        "unenriched meanwhile)"),
    "poll_interval": Key((int, float), 300, "seconds between reconciliation rounds (`debpulse-debbugs poll`)"),
    "newest": Key(bool, True, "look for new bugs with `newest_bugs` each round"),
    "newest_count": Key(int, 10, "bugs `newest_bugs` is asked for"),
    "catch_up": Key(int, 1000, "new bug numbers asked at most per round"),
    "watch": Key(list, [], "bugs whose logs are reconciled each round", shows="list of bug numbers"),
    "metrics_port": Key(int, None, "serve the Maildir watcher's Prometheus metrics on `127.0.0.1:PORT`"),
    "poll_metrics_port": Key(int, None, "the same for the poller, which runs beside the watcher"),
}, "What debpulse-debbugs reads: debbugs' mail, and its SOAP interface for enrichment and reconciliation.",
   read_by=("debpulse-debbugs",))

EPILOG = """\
examples:
  debpulse-debbugs maildir ~/Maildir/bugs          # watch a Maildir, enrich from bugs.debian.org
  debpulse-debbugs mail < message.eml               # one mail from an MTA pipe (exit 75: retry later)
  debpulse-debbugs poll --watch 979653 --watch 999743   # reconcile over SOAP every 5 minutes
  debpulse-debbugs --no-soap maildir ~/Maildir/bugs # mail only, events marked "enriched": false

configuration ([debbugs] table):
  maildir = "/srv/mail/bugs"      soap_url = "https://bugs.debian.org/cgi-bin/soap.cgi"
  soap = true                     soap_timeout = 30      soap_attempts = 3
  enrich_pause = 60               poll_interval = 300    newest = true
  newest_count = 10               catch_up = 1000        watch = [979653, 999743]
  metrics_port = 9953             poll_metrics_port = 9954   # maildir and poll run side by side
"""


def _options(p: Any) -> None:
    """What every subcommand takes, before or after the subcommand."""
    cli.add_common(p, publish=True)
    add_metrics_flag(p)
    g = p.add_argument_group("debbugs SOAP")
    g.add_argument("--soap-url", metavar="URL", help=f"SOAP endpoint (default {DEFAULT_URL})")
    g.add_argument("--no-soap", action="store_true", help="never ask SOAP: no enrichment, no reconciliation")
    g.add_argument("--soap-timeout", type=float, metavar="SECONDS", help="per request (default 30)")


def build_parser() -> argparse.ArgumentParser:
    p = cli.parser("debpulse-debbugs", "Publish debbugs mail and SOAP reconciliation on the bus.", EPILOG)
    _options(p)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def example(text: str) -> dict[str, Any]:
        return {"epilog": f"example:\n  {text}", "formatter_class": argparse.RawDescriptionHelpFormatter}

    m = sub.add_parser("maildir", help="watch a Maildir and publish every debbugs mail delivered to it",
                       **example("debpulse-debbugs --metrics-port 9953 maildir /var/lib/debpulse/mail/debbugs"))
    m.add_argument("maildir", nargs="?", type=Path, help="the Maildir (default [debbugs] maildir)")
    mail = sub.add_parser("mail", help="publish one mail read from stdin (for an MTA pipe)",
                          **example("debpulse-debbugs mail < message.eml   # exit 75: the MTA retries later"))
    r = sub.add_parser("poll", help="reconcile over SOAP: new bugs and changes of watched bugs",
                       **example("debpulse-debbugs poll --watch 979653 --interval 300"))
    r.add_argument("--watch", action="append", type=int, default=[], metavar="BUG",
                   help="watch this bug's last_modified (repeatable)")
    r.add_argument("--interval", type=float, metavar="SECONDS", help="between rounds (default 300)")
    r.add_argument("--once", action="store_true", help="one round, then exit")
    r.add_argument("--no-newest", action="store_true", help="do not look for new bugs with newest_bugs")
    for sp in (m, mail, r):
        _options(cli.after_command(sp))
    return p


def _client(args: argparse.Namespace, section: Values) -> DebbugsClient | None:
    if args.no_soap or not section["soap"]:
        return None
    timeout = section.pick(args.soap_timeout, "soap_timeout")
    if timeout <= 0:
        raise ConfigError("--soap-timeout / [debbugs] soap_timeout must be positive")
    return DebbugsClient(
        args.soap_url or section["soap_url"],
        timeout=float(timeout),
        attempts=section["soap_attempts"],
    )


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """The console script: one-line errors, exit 2 for bad usage."""
    cli.run(_main, argv)


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cli.setup_logging(args.verbose)
    config = cli.config_from(args)
    check_tables(config)
    section = DEBBUGS.read(config)
    state = adapter_state_dir(args, config, "debbugs")
    client = _client(args, section)
    quarantine = Quarantine(state / "quarantine", "debbugs")

    # The watcher and the poller run side by side: one port key each.
    port = metrics_port(args, section, "poll_metrics_port" if args.command == "poll" else "metrics_port")

    if args.command == "poll":
        if client is None:
            raise ConfigError("poll needs SOAP (drop --no-soap / [debbugs] soap = false)")
        return _poll(args, config, section, client, state, port)

    enricher = Enricher(client, pause=float(section["enrich_pause"])) if client else None
    emitter = open_emitter(args, config, name="debbugs")
    try:
        handler = MailHandler(emitter, enricher)
        if args.command == "mail":
            return pipe_main(sys.stdin.buffer.read(), handler, quarantine)
        maildir = args.maildir or section["maildir"]
        if not maildir:
            raise ConfigError("no Maildir: give one on the command line or set [debbugs] maildir")
        source = MaildirSource(Path(maildir), handler, quarantine, name="debbugs")
        serve_metrics(port)
        source.run(watching=lambda: ready(f"watching {maildir}"))
        return 0
    finally:
        emitter.close()


def _poll(args: argparse.Namespace, config: Config, section: Values, client: DebbugsClient, state: Path,
          port: int | None) -> int:
    watch: list[Any] = args.watch or section["watch"]
    if not all(isinstance(b, int) and not isinstance(b, bool) and b > 0 for b in watch):
        raise ConfigError(f"{section.where}: [debbugs] watch must be a list of bug numbers")
    interval = section.pick(args.interval, "poll_interval")
    if interval <= 0:
        raise ConfigError("--interval / [debbugs] poll_interval must be positive")
    emitter = open_emitter(args, config, name="debbugs")
    try:
        reconciler = Reconciler(
            client, emitter, Position(state / "reconcile.json"),
            watch=watch,
            newest=not args.no_newest and section["newest"],
            newest_count=section["newest_count"],
            catch_up=section["catch_up"],
        )
        if args.once:
            count = reconciler.poll_once()
            log.info("%d event(s) from SOAP", count)
            return 0
        serve_metrics(port)
        reconciler.run(float(interval), watching=lambda: ready(f"reconciling over SOAP every {interval:g} s"))
        return 0
    finally:
        emitter.close()


if __name__ == "__main__":
    main()
