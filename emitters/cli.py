"""What every debpulse-* command shares: the common flags, logging to
stderr, one-line errors with exit code 2, and opening the bus.

The same flag means the same thing on every tool: --config, --endpoint,
--srv, --nameserver, --trust-anchor, --gnupg-home, --keyring, --signing-key,
--state-dir, -v; a tool with subcommands takes them before or after it.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

from .config import Config, load_config
from .errors import ConfigError, DebpulseError

EX_USAGE = 2
EX_TEMPFAIL = 75


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit 2 (no usage dump),
    and options a subcommand repeats (`after_command`) may come on either
    side of it."""

    def error(self, message: str) -> NoReturn:
        self.exit(EX_USAGE, f"{self.prog}: {message} (see --help)\n")

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        # Subcommand parsers go through parse_known_args only: the merge
        # happens once, on the whole command line.
        return _merge_after_command(super().parse_args(args, namespace))


_prog: str | None = None
_AFTER = "__after_command"


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


class after_command:  # noqa: N801 (used like a function: after_command(sp))
    """The options a command takes before its subcommand, offered again
    after it: `debpulse-debbugs -v poll` and `debpulse-debbugs poll -v`
    mean the same.  Wraps a subcommand's parser for the functions that add
    options (add_common, add_metrics_flag, ...): the copies have no default,
    so one not given keeps the value from before the subcommand, and
    Parser.parse_args folds them in (counts add up, lists join)."""

    def __init__(self, target: Any) -> None:
        self._target = target

    def add_argument_group(self, *args: Any, **kwargs: Any) -> after_command:
        return after_command(self._target.add_argument_group(*args, **kwargs))

    def add_argument(self, *flags: str, **kwargs: Any) -> argparse.Action:
        action = self._target.add_argument(*flags, **{**kwargs, "default": argparse.SUPPRESS})
        if action.metavar is None and action.nargs != 0 and action.option_strings and not action.choices:
            action.metavar = action.dest.upper()  # the help text shows the usual name
        action.dest += _AFTER
        return action  # type: ignore[no-any-return]


def _merge_after_command(args: argparse.Namespace) -> argparse.Namespace:
    for key in [k for k in vars(args) if k.endswith(_AFTER)]:
        value = getattr(args, key)
        delattr(args, key)
        base = key[: -len(_AFTER)]
        before = getattr(args, base, None)
        if isinstance(value, list) and isinstance(before, list):
            value = before + value
        elif base == "verbose" and isinstance(before, int):
            value = before + value
        setattr(args, base, value)
    return args


def add_common(p: Any, *, subscribe: bool = False, publish: bool = False) -> None:
    """The options every tool shares; `p` is a parser, or after_command(subparser)."""
    g = p.add_argument_group("common options")
    g.add_argument(
        "--config", metavar="FILE", help="TOML configuration (default /etc/debpulse/debpulse.toml, $DEBPULSE_CONFIG)"
    )
    g.add_argument("--state-dir", metavar="DIR", type=Path, help="positions, outbox, spool, quarantine")
    g.add_argument("-v", "--verbose", action="count", default=0,
                   help="more log output: -v what it does (INFO), -vv details (DEBUG), -vvv libraries too")
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
        g.add_argument("--nameserver", action="append", default=[], metavar="HOST[:PORT]",
                       help="DNS server for --srv (repeatable; default [dns] nameservers, then /etc/resolv.conf)")
        g.add_argument("--trust-anchor", metavar="FILE",
                       help="DS or DNSKEY records: SRV answers must validate with DNSSEC (default [dns] trust_anchor)")
        g.add_argument("--keyring", action="append", default=[], metavar="FILE",
                       help="certificates of allowed signers, armored or binary (repeatable)")
        g.add_argument("--policy", metavar="FILE", help="signer policy TOML: which key may publish which topics")
        g.add_argument("--timestamp-window", type=float, metavar="SECONDS",
                       help="refuse live messages whose timestamp is further than this from now "
                            "(default 600; 0 turns the check off, e.g. for old captures)")
        g.add_argument("--accept-fedmsg-scope", action="store_true",
                       help="also accept signatures over msg only (real fedmsg publishers; [subscribe] "
                            "accept_fedmsg_scope)")
    if publish:
        g.add_argument("--signing-key", metavar="KEY", help="fingerprint in --gnupg-home, or a secret key file")
        g.add_argument("--relay", metavar="URL", help="hand events to this relay socket (default: the local relay)")
        g.add_argument("--publish", metavar="URL", help="bind a PUB socket and publish directly (needs --signing-key)")
        g.add_argument("--environment", choices=("dev", "stg", "production"), help="topic environment (default dev)")


# Verbosity: 0 warnings and errors only; 1 (-v) what the program does;
# 2 (-vv) details; 3 (-vvv) also the libraries' own logs (pika, ...),
# which otherwise repeat in many lines what one of ours says.
def setup_logging(verbose: int) -> None:
    level = (logging.WARNING, logging.INFO)[verbose] if verbose < 2 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(name)s: %(levelname)s: %(message)s"))
    if verbose < 3:
        handler.addFilter(_ours)
    logging.basicConfig(level=level, handlers=[handler])


def _ours(record: logging.LogRecord) -> bool:
    return record.name.startswith(("debpulse", "__main__"))


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """SIGTERM and SIGINT wait until the block is done (a DNS withdrawal, a
    line and its checkpoint), then take effect."""
    held = {signal.SIGTERM, signal.SIGINT}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


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
