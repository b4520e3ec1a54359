"""debpulse-notify: tell people, by mail and IRC, what their rules follow."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import socket
import sys
from collections.abc import Sequence
from email.utils import parseaddr
from pathlib import Path

from debpulse.consumers.irc.control import default_control_socket
from debpulse.emitters import cli, metrics, paths
from debpulse.emitters.config import Config, Derived, Key, Table
from debpulse.emitters.consumer import open_subscriber
from debpulse.emitters.errors import ConfigError

from ..common import service
from .rules import RuleBook, RuleError, load_rules
from .service import Delivery, Notifier
from .store import Store

log = logging.getLogger("debpulse.notify")

DEFAULT_SENDMAIL = ["/usr/sbin/sendmail", "-oi", "-t"]
NOTIFY = Table("notify", {
    "rules": Key(str, "/etc/debpulse/notify.d", "the directory of rule files, one per person or team"),
    "resume": Key(str, "notify", "checkpoint name: a restart continues where it stopped"),
    "from": Key(str, Derived("`debpulse <USER@FQDN>`, USER being `debpulse` as root", lambda v: _default_sender()),
                "the `From` of the mail sent"),
    "sendmail": Key(list, DEFAULT_SENDMAIL, "the command mail is handed to", items=str),
    "smtp": Key(str, None, "send by SMTP to `HOST:PORT` instead of `sendmail`"),
    "irc_socket": Key(str, Derived("`debpulse-irc`'s default, `STATE_DIR/irc/control.sock`",
                                   lambda v: str(default_control_socket())),
                      "`debpulse-irc`'s control socket, for private lines"),
    "retry_max": Key((int, float), 600, "the longest wait in seconds between attempts to deliver"),
    "metrics_port": Key(int, None, "serve Prometheus metrics on `127.0.0.1:PORT`"),
}, "Where debpulse-notify finds the rules, and how it sends mail and private IRC lines.",
   read_by=("debpulse-notify",))

EPILOG = """\
examples:
  debpulse-notify --config /etc/debpulse/debpulse.toml
  debpulse-notify --check --rules /etc/debpulse/notify.d     # check every rule file and exit

/etc/debpulse/debpulse.toml:
  [notify]
  rules = "/etc/debpulse/notify.d"    # one TOML file per person or team
  from = "Debian notifications <notify@debian.org>"
  sendmail = ["/usr/sbin/sendmail", "-oi", "-t"]

/etc/debpulse/notify.d/alice.toml:
  mail = "alice@example.org"
  addresses = ["alice@debian.org"]
  irc = "alice"
  [[rule]]
  name = "my packages"
  my_packages = true
  exclude = { topics = ["git.receive"] }
  to = ["mail"]
  digest = { every = 3600, count = 50 }

Nothing is sent until a rule says so.  The rules are read again when a file
changes or on SIGHUP.
"""


class RulesWatch:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.stamp = self._stamp()

    def _stamp(self) -> tuple:
        try:
            return tuple(sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size)
                                for p in self.directory.glob("*.toml")))
        except OSError:
            return ()

    def changed(self) -> bool:
        stamp = self._stamp()
        if stamp != self.stamp:
            self.stamp = stamp
            return True
        return False


def _settings(args: argparse.Namespace, config: Config) -> tuple[Path, Delivery, str]:
    section = NOTIFY.read(config)
    rules = args.rules or Path(section["rules"])
    sender = section["from"]
    if "@" not in parseaddr(sender)[1]:
        raise ConfigError(f"{section.where}: [notify] from {sender!r} is not a mail address")
    sendmail = section["sendmail"]
    if not sendmail:
        raise ConfigError(f"{section.where}: [notify] sendmail must name a command")
    smtp: tuple[str, int] | None = None
    if (value := section["smtp"]) is not None:
        if section.given("sendmail"):
            raise ConfigError(f"{section.where}: [notify] give sendmail or smtp, not both")
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"{section.where}: [notify] smtp {value!r} is not HOST:PORT")
        smtp = (host.strip("[]"), int(port))
    irc_socket = Path(section["irc_socket"])
    retry_max = float(section["retry_max"])
    if retry_max <= 0:
        raise ConfigError(f"{section.where}: [notify] retry_max must be positive")
    domain = parseaddr(sender)[1].rsplit("@", 1)[1]
    resume = args.resume or section["resume"]
    return Path(rules), Delivery(sender, sendmail, irc_socket, smtp, domain, retry_max), resume


def _default_sender() -> str:
    user = "debpulse" if os.geteuid() == 0 else getpass.getuser()
    return f"debpulse <{user}@{socket.getfqdn()}>"


def load_book(directory: Path) -> RuleBook:
    try:
        return RuleBook(load_rules(directory))
    except RuleError as exc:
        raise ConfigError(str(exc)) from None


@cli.entry
def main(argv: Sequence[str] | None = None) -> int:
    p = cli.parser("debpulse-notify", "Mail and IRC notifications for people and teams, by their rules.", EPILOG)
    cli.add_common(p, subscribe=True)
    p.add_argument("--rules", type=Path, metavar="DIR", help="rule files, one per person or team "
                   "(default [notify] rules, else /etc/debpulse/notify.d)")
    p.add_argument("--resume", metavar="NAME", help="checkpoint name (default 'notify')")
    p.add_argument("--check", action="store_true", help="check the configuration and the rules, then exit")
    p.add_argument("--metrics-port", type=int, metavar="PORT", help="serve Prometheus metrics on 127.0.0.1:PORT")
    args = p.parse_args(argv)
    cli.setup_logging(args.verbose)
    config = cli.config_from(args)
    rules_dir, delivery, resume = _settings(args, config)
    book = load_book(rules_dir)
    if args.check:
        print(f"{len(book.recipients)} people or teams, {len(book)} rules: fine")
        return 0
    state = Path(args.state_dir or paths.state_dir()) / "notify" / resume
    store = Store(state / "notify.sqlite")
    watch = RulesWatch(rules_dir)

    def reload() -> RuleBook | None:
        try:
            new = load_book(rules_dir)
        except ConfigError as exc:
            log.error("rules not reloaded, the old ones stay in force: %s", exc)
            return None
        log.info("rules reloaded: %d people or teams, %d rules", len(new.recipients), len(new))
        return new

    try:
        sub = open_subscriber(args, config, resume=resume, auto_ack=False)
    except BaseException:
        store.close()
        raise
    notifier = Notifier(sub, store, book, delivery, reload)
    port = NOTIFY.read(config).pick(args.metrics_port, "metrics_port")
    if port is not None:
        metrics.serve(port)

    service.run(notifier, watch, log, f"{len(book.recipients)} people or teams, {len(book)} rules from {rules_dir}; "
                f"{store.waiting()} notification(s) waiting")
    return 0


if __name__ == "__main__":
    sys.exit(main())
