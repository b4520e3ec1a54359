"""debpulse-trigger: run an importer when, and only when, a matching message arrives."""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from debpulse.emitters import cli, metrics, paths, systemd
from debpulse.emitters.config import Key, Table
from debpulse.emitters.consumer import open_subscriber
from debpulse.emitters.errors import ConfigError

from .runner import DeadLetters, RetryPolicy, Runner, TopicFilter, Trigger, check_settings

log = logging.getLogger("debpulse.trigger")

EPILOG = """\
The command gets the message envelope on stdin as JSON lines (one line per
message; a debounce window gives one line per message of the batch) and
DEBPULSE_TOPIC, DEBPULSE_MSG_ID, DEBPULSE_PACKAGE, DEBPULSE_VERSION,
DEBPULSE_SUITE, DEBPULSE_COUNT, DEBPULSE_TOPICS, DEBPULSE_PACKAGES and
DEBPULSE_SUITES in its environment.  Message content is never put on the
command line and never reaches a shell.

examples:
  # re-import Sources once a minute at most, for the suites that got uploads
  debpulse-trigger --topic dak.package.accept --debounce 60 --resume udd-sources \\
      -- /usr/local/lib/debpulse/udd-import-sources
  # refresh a package's tracker data whenever one of its bugs changes
  debpulse-trigger --topic 'debbugs.bug.#' --concurrency 4 --resume tracker-bugs \\
      -- /usr/local/lib/debpulse/tracker-refresh-bugs
"""

TRIGGER = Table("trigger", {
    "debounce": Key((int, float), None, "run once per window of this many seconds, with every message of the "
                    "window (not set: once per message)"),
    "max_batch": Key(int, 1000, "close a debounce window at this many messages"),
    "concurrency": Key(int, 1, "commands running at once at most"),
    "attempts": Key(int, 5, "runs of a failing command before its message is dead-lettered"),
    "backoff": Key((int, float), 2.0, "seconds to wait after a failure, doubling at each one"),
    "max_backoff": Key((int, float), 300.0, "the longest wait between runs"),
    "timeout": Key((int, float), None, "seconds after which a run fails (not set: no limit)"),
    "stop_timeout": Key((int, float), 10.0, "at stop, seconds after `SIGTERM` before a command still running "
                        "gets `SIGKILL`"),
    "metrics_port": Key(int, None, "serve Prometheus metrics on `127.0.0.1:PORT`"),
}, "How debpulse-trigger runs its command; the command and the topics are on its command line, so that one "
   "configuration serves several triggers.", read_by=("debpulse-trigger",))


def split_command(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Options before `--`, the command after it (never parsed as options)."""
    argv = list(argv)
    if "--" not in argv:
        return argv, []
    i = argv.index("--")
    return argv[:i], argv[i + 1:]


def check_command(command: list[str]) -> None:
    if not command:
        raise ConfigError("give the command to run after --, e.g. -- /usr/local/bin/import-sources")
    exe = command[0]
    if os.sep in exe:
        if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
            raise ConfigError(f"command {exe}: not an executable file")
    elif shutil.which(exe) is None:
        raise ConfigError(f"command {exe}: not found in PATH")


@cli.entry
def main(argv: Sequence[str] | None = None) -> int:
    options, command = split_command(sys.argv[1:] if argv is None else argv)
    p = cli.parser("debpulse-trigger", "Run a command for each matching, verified message on the bus "
                   "(usage: debpulse-trigger --topic PATTERN [options] -- COMMAND [ARGS...]).", EPILOG)
    cli.add_common(p, subscribe=True)
    p.add_argument("--topic", action="append", default=[], metavar="PATTERN", required=True,
                   help="topic, prefix of whole parts, or pattern with '*' (one part) and '#' (any); repeatable")
    p.add_argument("--debounce", type=float, metavar="SECONDS",
                   help="run once per window of SECONDS with every message of the window")
    p.add_argument("--max-batch", type=int, metavar="N", help="close a debounce window at N messages (default 1000)")
    p.add_argument("--concurrency", type=int, metavar="N", help="run up to N commands at once (default 1)")
    p.add_argument("--resume", metavar="NAME", help="keep a checkpoint NAME: a restart misses and repeats nothing")
    p.add_argument("--attempts", type=int, metavar="N", help="runs before a message is dead-lettered (default 5)")
    p.add_argument("--backoff", type=float, metavar="SECONDS", help="first wait after a failure, doubling (default 2)")
    p.add_argument("--max-backoff", type=float, metavar="SECONDS", help="longest wait between runs (default 300)")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="a run taking longer fails (default: none)")
    p.add_argument("--stop-timeout", type=float, metavar="SECONDS",
                   help="at stop, SIGKILL a command still running this long after SIGTERM (default 10)")
    p.add_argument("--dead-letter", metavar="DIR", type=Path,
                   help="where failed messages go (default STATE_DIR/trigger/NAME/dead-letter)")
    p.add_argument("--metrics-port", type=int, metavar="PORT", help="serve Prometheus metrics on 127.0.0.1:PORT")
    args = p.parse_args(options)
    cli.setup_logging(args.verbose)
    config = cli.config_from(args)
    section = TRIGGER.read(config)
    pick = section.pick
    check_command(command)
    if args.resume is not None and (not re.fullmatch(r"[A-Za-z0-9._-]+", args.resume) or not args.resume.strip(".")):
        raise ConfigError(f"--resume name {args.resume!r}: use letters, digits, '-', '_' and '.'")
    topics = TopicFilter(args.topic)
    retry = RetryPolicy(
        attempts=int(pick(args.attempts, "attempts")),
        backoff=float(pick(args.backoff, "backoff")),
        max_backoff=float(pick(args.max_backoff, "max_backoff")),
        timeout=_opt_float(pick(args.timeout, "timeout")),
        stop_timeout=float(pick(args.stop_timeout, "stop_timeout")),
    )
    retry.check()
    concurrency = int(pick(args.concurrency, "concurrency"))
    debounce = _opt_float(pick(args.debounce, "debounce"))
    max_batch = int(pick(args.max_batch, "max_batch"))
    check_settings(concurrency, debounce, max_batch)
    port = pick(args.metrics_port, "metrics_port")
    state = Path(args.state_dir or paths.state_dir())
    dead = args.dead_letter or state / "trigger" / (args.resume or "default") / "dead-letter"
    runner = Runner(retry, DeadLetters(dead))
    sub = open_subscriber(args, config, topics=topics.subscription(), resume=args.resume, auto_ack=False)
    # Subscribed: every message from here on reaches the command.
    systemd.notify("READY=1")
    try:
        trigger = Trigger(sub, topics, command, runner, concurrency=concurrency, debounce=debounce,
                          max_batch=max_batch)
        if port is not None:
            metrics.serve(int(port))

        def on_signal(signum: int, frame: object) -> None:
            log.info("%s: abandoning running commands (not acked) and stopping", signal.Signals(signum).name)
            trigger.stop()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        log.info("running %s for %s (resume %s, dead letters in %s)", command[0], " ".join(args.topic),
                 args.resume or "off", dead)
        trigger.run()
    finally:
        sub.close()
    log.info("stopped after handling %d message(s)", trigger.handled)
    return 0


def _opt_float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(main())
