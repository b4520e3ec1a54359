"""debpulse-irc: say what happens on the bus in IRC channels."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from debpulse.emitters import cli, metrics
from debpulse.emitters.config import load_config
from debpulse.emitters.consumer import open_subscriber
from debpulse.emitters.errors import ConfigError, DebpulseError

from ..common import service
from .bot import Bot
from .control import default_control_socket
from .settings import IrcSettings, settings_from

log = logging.getLogger("debpulse.irc")

EPILOG = """\
examples:
  debpulse-irc --config /etc/debpulse/debpulse.toml
  debpulse-irc --check --config /etc/debpulse/debpulse.toml   # check the [irc] table and exit

/etc/debpulse/debpulse.toml:
  [irc]
  nick = "debpulse"
  [irc.networks.oftc]
  host = "irc.oftc.net"
  tls = true
  [[irc.channels]]
  name = "#debian-devel-changes"
  include = { topics = ["dak.package.accept"] }
  [[irc.channels]]
  name = "#debian-ocaml"
  include = { teams = ["debian-ocaml-maint@lists.debian.org", "ocaml-team"] }
  exclude = { topics = ["git.receive"] }
  colours = true

The configuration is read again when a file changes or on SIGHUP: channels
added or removed are joined or left without a restart.  Private lines from
debpulse-notify come in on the local socket (default STATE_DIR/irc/control.sock).
"""


def config_files(explicit: str | None) -> list[Path]:
    """The files whose change means a reload."""
    path = explicit or os.environ.get("DEBPULSE_CONFIG")
    main = Path(path) if path else Path("/etc/debpulse/debpulse.toml")
    confd = main.parent / "conf.d"
    return [main, *(sorted(confd.glob("*.toml")) if confd.is_dir() else [])]


class Watcher:
    """Notices a change of the configuration files (mtime, size, the set of files)."""

    def __init__(self, explicit: str | None) -> None:
        self.explicit = explicit
        self.stamp = self._stamp()

    def _stamp(self) -> tuple:
        out = []
        for f in config_files(self.explicit):
            try:
                st = f.stat()
                out.append((str(f), st.st_mtime_ns, st.st_size))
            except OSError:
                out.append((str(f), None, None))
        return tuple(out)

    def changed(self) -> bool:
        stamp = self._stamp()
        if stamp != self.stamp:
            self.stamp = stamp
            return True
        return False


@cli.entry
def main(argv: Sequence[str] | None = None) -> int:
    p = cli.parser("debpulse-irc", "Say verified bus messages in IRC channels, one connection per network.", EPILOG)
    cli.add_common(p, subscribe=True)
    p.add_argument("--resume", metavar="NAME", help="checkpoint name (default [irc] resume, else 'irc')")
    p.add_argument("--control-socket", metavar="PATH", type=Path,
                   help="where debpulse-notify hands over private lines (default STATE_DIR/irc/control.sock)")
    p.add_argument("--check", action="store_true", help="check the configuration and exit")
    p.add_argument("--metrics-port", type=int, metavar="PORT", help="serve Prometheus metrics on 127.0.0.1:PORT")
    args = p.parse_args(argv)
    cli.setup_logging(args.verbose)
    config = cli.config_from(args)
    settings = settings_from(config)
    if not settings.networks:
        raise ConfigError(f"{config.where('irc')}: no [irc.networks.NAME] table: the bot has nowhere to go")
    if args.check:
        print(f"{len(settings.networks)} network(s), {len(settings.channels)} channel(s): fine")
        return 0
    control = args.control_socket or (Path(settings.control_socket) if settings.control_socket
                                      else default_control_socket())
    watcher = Watcher(args.config)

    def reload() -> IrcSettings | None:
        try:
            new = settings_from(load_config(args.config))
        except (ConfigError, DebpulseError) as exc:
            log.error("configuration not reloaded, the old one stays in force: %s", exc)
            return None
        log.info("configuration reloaded: %d network(s), %d channel(s)", len(new.networks), len(new.channels))
        return new

    sub = open_subscriber(args, config, resume=args.resume or settings.resume, auto_ack=False)
    try:
        bot = Bot(sub, settings, control, reload)
    except OSError as exc:
        sub.close()
        raise ConfigError(f"control socket {control}: {exc.strerror or exc}") from None
    port = args.metrics_port if args.metrics_port is not None else settings.metrics_port
    if port is not None:
        metrics.serve(port)

    networks = ", ".join(
        f"{n.name} ({n.host}:{n.port}, {sum(c.network == n.name for c in settings.channels)} channels)"
        for n in settings.networks.values())
    service.run(bot, watcher, log, f"saying bus messages on {networks}; private lines on {control}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
