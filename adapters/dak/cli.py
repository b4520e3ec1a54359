"""debpulse-dak: publish what dak does to uploads, from its mail and its queues."""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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
from debpulse.emitters.cli import (
    EX_TEMPFAIL,
    add_common,
    after_command,
    config_from,
    parser,
    run,
    setup_logging,
)
from debpulse.emitters.config import Config, Derived, Key, Table
from debpulse.emitters.emitter import open_emitter
from debpulse.emitters.errors import ConfigError

from .handler import DakHandler
from .queue import QueueSource
from .signature import Keyring

log = logging.getLogger("debpulse.dak")

NAME = "dak"
DAK = Table(NAME, {
    "maildir": Key(str, None, "the Maildir that receives dak's mail (ACCEPTED, NEW, REJECTED, removals)"),
    "queue_dir": Key(str, None, "dak's queue directory (`Dir::Queue`), with `done/`, `new/` and `reject/` in it"),
    "done_dir": Key(str, Derived("`done/` in `queue_dir`"), "accepted `.changes` in `YYYY/MM/DD/` (`Dir::Done`)"),
    "new_dir": Key(str, Derived("`new/` in `queue_dir`"), "the NEW queue"),
    "reject_dir": Key(str, Derived("`reject/` in `queue_dir`"), "rejected uploads with their `.reason` files "
                      "(`Dir::Reject`)"),
    "removals": Key(str, None, "dak's removal log, `removals.822` (`Rm::LogFile822`)"),
    "keyrings": Key(list, [], "uploaders' keyrings to check `.changes` signatures with (none: reported "
                    "unverified)", items=str),
    "settle": Key((int, float), 2.0, "seconds a queue file that does not parse yet may still be being written"),
    "metrics_port": Key(int, None, "serve Prometheus metrics on `127.0.0.1:PORT`"),
}, "What debpulse-dak watches: dak's mail and its queue directories.", read_by=("debpulse-dak",))

EXAMPLE = """\
examples:
  # a Maildir that receives dak's mail, plus ftp-master's queues and removal log
  debpulse-dak --maildir ~/Maildir --queue-dir /srv/ftp-master.debian.org/queue \\
      --removals /srv/ftp.debian.org/web/removals.822 \\
      --keyring /usr/share/keyrings/debian-keyring.gpg

  # from an MTA pipe (~/.forward or an exim router): one mail on stdin,
  # exit 75 (EX_TEMPFAIL) makes the MTA retry when the bus cannot take it
  |/usr/bin/debpulse-dak mail

  # the same from /etc/debpulse/debpulse.toml:
  #   [dak]
  #   maildir = "/var/mail/dak-events"
  #   queue_dir = "/srv/ftp-master.debian.org/queue"   # done/, new/, reject/ below it
  #   removals = "/srv/ftp.debian.org/web/removals.822"
  #   keyrings = ["/usr/share/keyrings/debian-keyring.gpg"]
  debpulse-dak

  # work through what is waiting, then exit
  debpulse-dak --maildir ~/Maildir --once
"""


# A source's run(stop, watching): `watching` is called once it is ready.
Source = Callable[[threading.Event, Callable[[], None]], None]


@dataclass
class Settings:
    maildir: Path | None = None
    done: Path | None = None
    new: Path | None = None
    reject: Path | None = None
    removals: Path | None = None
    keyrings: list[str] = field(default_factory=list)
    settle: float = 2.0

    @property
    def queues(self) -> bool:
        return any(p is not None for p in (self.done, self.new, self.reject, self.removals))


def _options(p: Any) -> None:
    """The options of both subcommands, given before or after the subcommand."""
    p.add_argument("--maildir", type=Path, metavar="DIR", help="Maildir that receives dak's mail")
    p.add_argument("--queue-dir", type=Path, metavar="DIR", help="dak's queue directory: done/, new/, reject/ in it")
    p.add_argument("--done-dir", type=Path, metavar="DIR", help="accepted .changes in YYYY/MM/DD/ (Dir::Done)")
    p.add_argument("--new-dir", type=Path, metavar="DIR", help="the NEW queue")
    p.add_argument("--reject-dir", type=Path, metavar="DIR", help="rejected uploads with .reason files (Dir::Reject)")
    p.add_argument("--removals", type=Path, metavar="FILE", help="dak's removals.822 (Rm::LogFile822)")
    p.add_argument("--keyring", action="append", default=[], metavar="FILE",
                   help="uploaders' keyring to check .changes signatures with (repeatable)")
    p.add_argument("--once", action="store_true", help="handle what is waiting, then exit")
    add_metrics_flag(p)
    add_common(p, publish=True)


def _parser() -> argparse.ArgumentParser:
    p = parser("debpulse-dak", "Publish dak's uploads (dak.package.accept, .new, .reject) and removals "
               "(dak.package.remove) from the mail dak sends and the files it leaves in its queues.", EXAMPLE)
    _options(p)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name, text, example in (
        ("run", "watch the Maildir and the queues (the default)",
         "debpulse-dak run --maildir ~/Maildir --queue-dir /srv/ftp-master.debian.org/queue"),
        ("mail", "publish one mail read from stdin (for an MTA pipe: exit 75 makes the MTA retry)",
         "|/usr/bin/debpulse-dak mail --keyring /usr/share/keyrings/debian-keyring.gpg"),
    ):
        sp = sub.add_parser(name, help=text, description=text, epilog=f"example:\n  {example}",
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        _options(after_command(sp))
    return p


def settings_from(args: argparse.Namespace, config: Config) -> Settings:
    """Flags win over the [dak] table."""
    check_tables(config)
    sec = DAK.read(config)

    def path(flag: Path | None, key: str) -> Path | None:
        value = sec.pick(flag, key)
        return Path(value) if value else None

    s = Settings(
        maildir=path(args.maildir, "maildir"),
        done=path(args.done_dir, "done_dir"),
        new=path(args.new_dir, "new_dir"),
        reject=path(args.reject_dir, "reject_dir"),
        removals=path(args.removals, "removals"),
        keyrings=args.keyring or sec["keyrings"],
        settle=float(sec["settle"]),
    )
    queue_dir = path(args.queue_dir, "queue_dir")
    if queue_dir is not None:
        if not queue_dir.is_dir():
            raise ConfigError(f"queue directory {queue_dir}: not a directory")
        s.done = s.done or queue_dir / "done"
        s.new = s.new or queue_dir / "new"
        s.reject = s.reject or queue_dir / "reject"
    for label, p in (("done", s.done), ("new", s.new), ("reject", s.reject)):
        if p is not None and not p.is_dir():
            raise ConfigError(f"{label} directory {p}: not a directory")
    if s.removals is not None and not s.removals.parent.is_dir():
        raise ConfigError(f"removal log {s.removals}: its directory does not exist")
    return s


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    setup_logging(args.verbose)
    if args.command == "mail":
        return _pipe(args)
    config = config_from(args)
    settings = settings_from(args, config)
    port = metrics_port(args, DAK.read(config))
    if settings.maildir is None and not settings.queues:
        raise ConfigError("nothing to watch: give --maildir or --queue-dir (or [dak] maildir, queue_dir)")
    keyring = _keyring(settings)
    directory = adapter_state_dir(args, config, NAME)
    quarantine = Quarantine(directory / "quarantine", NAME)
    emitter = open_emitter(args, config, name=NAME)
    try:
        handler = DakHandler(emitter, keyring)
        sources: list[Source] = []
        drains: list[Callable[[], int]] = []
        if settings.maildir is not None:
            mails = MaildirSource(settings.maildir, handler.mail, quarantine, name=NAME)
            sources.append(mails.run)
            drains.append(mails.drain)
        if settings.queues:
            queues = QueueSource(
                handler.emit, quarantine, Position(directory / "queues.json"),
                done=settings.done, new=settings.new, reject=settings.reject, removals=settings.removals,
                keyring=keyring, settle=settings.settle,
            )
            sources.append(queues.run)
            drains.append(queues.scan)
        if args.once:
            handled = sum(drain() for drain in drains)
            log.info("handled %d input(s)", handled)
            return 0
        serve_metrics(port)
        return _run_all(sources, lambda: ready(f"watching {len(sources)} source(s)"))
    finally:
        emitter.close()


def _keyring(settings: Settings) -> Keyring | None:
    if not settings.keyrings:
        log.info("no keyring configured: .changes signatures are reported as unverified")
        return None
    keyring = Keyring.load(settings.keyrings)
    log.info("checking .changes signatures against %d certificate(s)", len(keyring))
    return keyring


def _run_all(sources: list[Source], on_ready: Callable[[], None]) -> int:
    """Each source in its own thread; the first to fail stops them all.
    `on_ready` once every source watches and has made its first pass."""
    stop = threading.Event()
    failed: list[BaseException] = []
    started = [threading.Event() for _ in sources]

    def guard(source: Source, watching: threading.Event) -> None:
        try:
            source(stop, watching.set)
        except BaseException as exc:
            log.exception("a source failed; stopping")
            failed.append(exc)
            stop.set()

    threads = [threading.Thread(target=guard, args=(s, w), daemon=True) for s, w in zip(sources, started, strict=True)]
    for t in threads:
        t.start()
    told = False
    try:
        while not stop.wait(0.05 if not told else 0.5):
            if not told and all(w.is_set() for w in started):
                on_ready()
                told = True
    except KeyboardInterrupt:  # SIGTERM from systemd, or Ctrl-C: a clean stop
        log.info("stopping")
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    return 1 if failed else 0


def _pipe(args: argparse.Namespace) -> int:
    """One mail from stdin.  Any failure to set up is a temporary failure
    for the MTA (exit 75), so that the mail waits in its queue for the fix."""
    data = sys.stdin.buffer.read()
    try:
        config = config_from(args)
        settings = settings_from(args, config)
        keyring = _keyring(settings)
        directory = adapter_state_dir(args, config, NAME)
        quarantine = Quarantine(directory / "quarantine", NAME)
        emitter = open_emitter(args, config, name=NAME)
    except (ConfigError, OSError) as exc:
        print(f"debpulse-dak: {exc}", file=sys.stderr)
        return EX_TEMPFAIL
    try:
        return pipe_main(data, DakHandler(emitter, keyring).mail, quarantine)
    finally:
        emitter.close()


def main(argv: Sequence[str] | None = None) -> NoReturn:
    run(_main, argv)


if __name__ == "__main__":
    main()
