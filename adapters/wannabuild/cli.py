"""debpulse-wanna-build: publish wanna-build's state changes and build results."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, NoReturn

from debpulse.adapters.common.service import (
    adapter_state_dir,
    add_metrics_flag,
    check_tables,
    metrics_port,
    ready,
    serve_metrics,
)
from debpulse.emitters.cli import add_common, after_command, config_from, parser, run, setup_logging
from debpulse.emitters.config import Config, Derived, Key, Table
from debpulse.emitters.emitter import open_emitter
from debpulse.emitters.errors import ConfigError

from .poller import DEFAULT_CHANNEL, Settings, WannaBuildSource
from .trigger_sql import install_sql, uninstall_sql

log = logging.getLogger("debpulse.wannabuild")

NAME = "wannabuild"
DEFAULT_DSN = "service=wanna-build"
WANNABUILD = Table(NAME, {
    "dsn": Key(str, DEFAULT_DSN, "libpq connection string or URI of wanna-build's database (the guest service "
               "will do)"),
    "architectures": Key(list, [], "the architectures to follow (at least one, here or with `--arch`)", items=str),
    "suites": Key(list, [], "the suites to follow (none: every public suite)", items=str),
    "poll_interval": Key((int, float), 30.0, "seconds between polls when no notification comes"),
    "lookback": Key((int, float), 600.0, "seconds a wanna-build transaction may stay open before its rows are "
                    "taken as final"),
    "batch": Key(int, 1000, "rows read per stream and poll"),
    "start": Key(str, "now", "where to begin without stored positions: `now`, `beginning` or an ISO time"),
    "listen": Key(bool, True, "`LISTEN` for the notify trigger's notifications (`debpulse-wanna-build "
                  "install-trigger`)"),
    "channel": Key(str, DEFAULT_CHANNEL, "the notification channel"),
    "timezone": Key(str, Derived("the server's"), "the PostgreSQL `TimeZone` wanna-build writes with"),
    "metrics_port": Key(int, None, "serve Prometheus metrics on `127.0.0.1:PORT`"),
}, "Where debpulse-wanna-build reads build states: wanna-build's public views in PostgreSQL.",
   read_by=("debpulse-wanna-build",))

EXAMPLE = """\
examples:
  # follow amd64 and arm64 in sid as the public guest, events to the local relay
  debpulse-wanna-build --dsn 'host=localhost port=5433 dbname=wanna-build user=guest' \\
      --arch amd64 --arch arm64 --suite sid

  # the same from /etc/debpulse/debpulse.toml:
  #   [wannabuild]
  #   dsn = "service=wanna-build"
  #   architectures = ["amd64", "arm64"]
  #   suites = ["sid", "experimental"]
  #   lookback = 600        # seconds: the longest wanna-build transaction tolerated
  debpulse-wanna-build

  # print the optional NOTIFY trigger, or install it as the database owner
  debpulse-wanna-build install-trigger
  debpulse-wanna-build install-trigger --install --dsn 'service=wanna-build-privileged'
"""


def _run_options(p: Any) -> None:
    """What `run` (the default) takes, before or after the subcommand."""
    p.add_argument("--dsn", help=f"libpq connection string or URI (default {DEFAULT_DSN!r}, the guest service)")
    p.add_argument("--arch", action="append", default=[], metavar="ARCH", help="architecture to follow (repeatable)")
    p.add_argument("--suite", action="append", default=[], metavar="SUITE",
                   help="suite to follow (repeatable; default every public suite)")
    p.add_argument("--interval", type=float, metavar="SECONDS", help="poll interval without notifications (30)")
    p.add_argument("--lookback", type=float, metavar="SECONDS",
                   help="how long a wanna-build transaction may stay open before its rows are final (600)")
    p.add_argument("--batch", type=int, metavar="ROWS", help="rows read per stream and poll (1000)")
    p.add_argument("--start", metavar="WHEN",
                   help="where to begin without stored marks: now, beginning or an ISO time (now)")
    p.add_argument("--no-listen", dest="listen", action="store_false", default=None,
                   help="do not LISTEN for the trigger's notifications")
    p.add_argument("--channel", help=f"notification channel (default {DEFAULT_CHANNEL})")
    p.add_argument("--timezone", help="PostgreSQL TimeZone wanna-build writes with (default the server's)")
    p.add_argument("--once", action="store_true", help="catch up, then exit")
    add_metrics_flag(p)
    add_common(p, publish=True)


def build_parser() -> argparse.ArgumentParser:
    p = parser("debpulse-wanna-build", "Read wanna-build's public views in PostgreSQL and publish each state "
               "change (wannabuild.package.state.update) and build result (wannabuild.package.build.complete).",
               EXAMPLE)
    _run_options(p)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    r = sub.add_parser("run", help="follow wanna-build and publish (the default)",
                       description="Follow wanna-build and publish (the default command).")
    _run_options(after_command(r))
    t = sub.add_parser("install-trigger", help="print or install the optional NOTIFY trigger",
                       description="Print the SQL of a trigger that notifies debpulse-wanna-build of new rows, "
                       "or run it (as a role that may create triggers on public.transactions and "
                       "public.pkg_history).", epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--install", action="store_true", help="run the SQL instead of printing it")
    t.add_argument("--uninstall", action="store_true", help="remove the trigger (printed, or run with --install)")
    after = after_command(t)
    after.add_argument("--dsn", help="connection of a privileged role (needed with --install)")
    after.add_argument("--channel", help=f"notification channel (default {DEFAULT_CHANNEL})")
    add_common(after)
    return p


def settings_from(args: argparse.Namespace, config: Config) -> Settings:
    """Flags win over the [wannabuild] table."""
    check_tables(config)
    sec = WANNABUILD.read(config)
    interval = float(sec.pick(args.interval, "poll_interval"))
    lookback = float(sec.pick(args.lookback, "lookback"))
    batch = int(sec.pick(args.batch, "batch"))
    if interval <= 0 or lookback < 0 or batch < 1:
        raise ConfigError(f"{sec.where}: [{NAME}] poll_interval and batch must be positive, lookback not negative")
    return Settings(
        dsn=str(sec.pick(args.dsn, "dsn")),
        architectures=args.arch or sec["architectures"],
        suites=args.suite or sec["suites"],
        lookback=timedelta(seconds=lookback),
        batch=batch,
        interval=interval,
        listen=bool(sec.pick(args.listen, "listen")),
        channel=str(sec.pick(args.channel, "channel")),
        start=str(sec.pick(args.start, "start")),
        timezone=sec.pick(args.timezone, "timezone"),
    )


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    setup_logging(args.verbose)
    if args.command == "install-trigger":
        return _install_trigger(args)
    config = config_from(args)
    settings = settings_from(args, config)
    port = metrics_port(args, WANNABUILD.read(config))
    directory = adapter_state_dir(args, config, NAME)  # marks, rejected rows
    emitter = open_emitter(args, config, name=NAME)
    try:
        source = WannaBuildSource(settings, emitter, directory)
        if not args.once:
            serve_metrics(port)
        source.run(once=args.once, watching=lambda: ready(f"following {len(source.streams)} stream(s)"))
    finally:
        emitter.close()
    return 0


def _install_trigger(args: argparse.Namespace) -> int:
    config = config_from(args)
    channel = args.channel or WANNABUILD.read(config)["channel"]
    text = uninstall_sql() if args.uninstall else install_sql(channel)
    if not args.install:
        sys.stdout.write(text)
        return 0
    if not args.dsn:
        raise ConfigError("--install needs --dsn of a role that may create triggers (not the guest)")
    import psycopg

    try:
        with psycopg.connect(args.dsn, autocommit=True) as conn:
            conn.execute(text)  # type: ignore[arg-type]  # our own constant SQL
    except psycopg.Error as exc:
        raise ConfigError(f"install-trigger: {' '.join(str(exc).split())}") from None
    log.info("%s the notify trigger (channel %s)", "removed" if args.uninstall else "installed", channel)
    return 0


def main(argv: Sequence[str] | None = None) -> NoReturn:
    run(_main, argv)


if __name__ == "__main__":
    main()
