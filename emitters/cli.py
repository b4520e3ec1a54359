"""What every debpulse-* command shares: the common flags, logging to
stderr, one-line errors with exit code 2, and opening the bus.

The same flag means the same thing on every tool: --config, --endpoint,
--srv, --gnupg-home, --keyring, --signing-key, --state-dir, -v.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from .config import Config, load_config
from .errors import ConfigError, DebpulseError

EX_USAGE = 2
EX_TEMPFAIL = 75


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit 2 (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EX_USAGE, f"{self.prog}: {message} (see --help)\n")


_prog: str | None = None


def man_reference(prog: str) -> str:
    """Where --help sends the reader for the whole story."""
    return f"See {prog.split()[0]}(1) and the manual for more."


def parser(prog: str, description: str, epilog: str = "") -> Parser:
    global _prog
    _prog = prog  # errors name the command, also when run as `python -m ...`
    return Parser(
        prog=prog,
        description=description,
        epilog=(epilog.rstrip("\n") + "\n\n" if epilog else "") + man_reference(prog),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_common(p: argparse.ArgumentParser, *, subscribe: bool = False, publish: bool = False) -> None:
    g = p.add_argument_group("common options")
    g.add_argument(
        "--config", metavar="FILE", help="TOML configuration (default /etc/debpulse/debpulse.toml, $DEBPULSE_CONFIG)"
    )
    g.add_argument("--state-dir", metavar="DIR", type=Path, help="positions, outbox, spool, quarantine")
    g.add_argument("-v", "--verbose", action="count", default=0, help="more log output (repeatable)")
    if subscribe or publish:
        g.add_argument("--gnupg-home", metavar="DIR", help="GnuPG home with the signing key or the keyring")
    if subscribe:
        g.add_argument(
            "--endpoint", action="append", default=[], metavar="URL", help="connect to this publisher (repeatable)"
        )
        g.add_argument(
            "--srv",
            action="append",
            default=[],
            metavar="DOMAIN",
            help="find publishers in _fedmsg._tcp.DOMAIN SRV records (repeatable)",
        )
        g.add_argument("--keyring", metavar="FILE", help="certificates of allowed signers (armored or binary)")
        g.add_argument("--policy", metavar="FILE", help="signer policy TOML: which key may publish which topics")
    if publish:
        g.add_argument("--signing-key", metavar="KEY", help="fingerprint in --gnupg-home, or a secret key file")
        g.add_argument("--relay", metavar="URL", help="hand events to this relay socket (default: the local relay)")
        g.add_argument("--publish", metavar="URL", help="bind a PUB socket and publish directly (needs --signing-key)")
        g.add_argument("--environment", choices=("dev", "stg", "production"), help="topic environment (default dev)")


def setup_logging(verbose: int) -> None:
    level = logging.WARNING - 10 * verbose if verbose else logging.INFO
    logging.basicConfig(
        level=max(level, logging.DEBUG),
        stream=sys.stderr,
        format="%(name)s: %(levelname)s: %(message)s",
    )


def config_from(args: argparse.Namespace) -> Config:
    return load_config(getattr(args, "config", None))


def entry(main: Callable[[Sequence[str] | None], int]) -> Callable[[Sequence[str] | None], int]:
    """Decorate a command's main: our errors become one line on stderr and
    an exit code, which is returned (tests) and which the console script
    passes to sys.exit."""

    @functools.wraps(main)
    def wrapper(argv: Sequence[str] | None = None) -> int:
        return _guarded(main, argv)

    return wrapper


def run(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> NoReturn:
    """Run a command's main and exit with its code."""
    sys.exit(_guarded(main, argv))


def _guarded(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None) -> int:
    # Sequoia builds a long backtrace for every error when this is set, which
    # makes rejecting a bad signature slow.
    os.environ.pop("RUST_BACKTRACE", None)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        return main(argv)
    except (ConfigError, DebpulseError) as exc:
        prog = _prog or Path(sys.argv[0]).name
        print(f"{prog}: {exc}", file=sys.stderr)
        return EX_USAGE if isinstance(exc, ConfigError) else 1
    except Terminated:
        return 0  # systemd's stop: a clean exit, not a failure
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # stdout closed (debpulse-tail | head): quiet exit, as cat does.
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        except OSError:
            pass
        return 0


class Terminated(KeyboardInterrupt):
    """SIGTERM, unwinding like Ctrl-C so that finally blocks run."""


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM unwinds like Ctrl-C so that finally blocks close sockets and
    # databases cleanly (systemd stops services with SIGTERM).
    raise Terminated
