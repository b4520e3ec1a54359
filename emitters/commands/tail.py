"""debpulse-tail: watch the bus, one verified message per line."""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from collections.abc import Sequence

from .. import cli, systemd
from ..consumer import open_subscriber
from ..subscriber import Gap, Received
from ..topics import relative_topic

EPILOG = """\
examples:
  debpulse-tail                                  # the local relay, every topic
  debpulse-tail --topic dak --topic git.receive  # topic prefixes (with or without org.debian.<env>.)
  debpulse-tail --srv debian.org --json --count 10
  debpulse-tail --resume qa-importer             # continue exactly where the last run stopped
  debpulse-tail --since 1h --topic dak           # what was published in the last hour, then live
"""


def summary_line(item: Received | Gap) -> str:
    """The one line debpulse-tail prints for an item (the demo prints it too)."""
    if isinstance(item, Gap):
        kind = "lost" if item.permanent else "missing (will retry)"
        return f"!! {item.publisher}: messages {item.first}..{item.last} {kind}: {item.reason}"
    try:
        stamp = time.strftime("%H:%M:%S", time.localtime(item.envelope.get("timestamp", 0)))
    except (TypeError, ValueError, OverflowError, OSError):  # a rejected message's time may be anything
        stamp = "--:--:--"
    v = item.verdict
    if v.ok:
        mark = f"ok {v.scope or 'unsigned'} {v.signer[-8:] if v.signer else ''}".rstrip()
    else:
        mark = f"REJECTED {v.reason}"
    flags = " (replayed)" if item.replayed else ""
    return f"{stamp} [{mark}] {relative_topic(item.topic)}: {item.summary}{flags}"


def json_line(item: Received | Gap) -> str:
    if isinstance(item, Gap):
        return json.dumps({"gap": {"publisher": item.publisher, "first": item.first, "last": item.last,
                                   "reason": item.reason, "permanent": item.permanent}})
    return json.dumps({"envelope": item.envelope, "verification": item.verdict.as_dict(),
                       "replayed": item.replayed, "summary": item.summary}, sort_keys=True)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def since_arg(text: str) -> float:
    """--since: epoch seconds, ISO 8601 (UTC unless a zone is given), or a
    duration ago ("15m")."""
    text = text.strip()
    if text[-1:] in _UNITS and text[:-1].replace(".", "", 1).isdigit():
        return time.time() - float(text[:-1]) * _UNITS[text[-1]]
    try:
        value = float(text)
    except ValueError:
        try:
            when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not epoch seconds, an ISO 8601 time or a duration "
                                             "such as 15m") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.UTC)
        value = when.timestamp()
    if not 0 <= value <= time.time() + 86400:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time in the past")
    return value


@cli.entry
def main(argv: Sequence[str] | None = None) -> int:
    p = cli.parser("debpulse-tail", "Print the messages on the bus as they arrive, verified.", EPILOG)
    cli.add_common(p, subscribe=True)
    p.add_argument("--topic", action="append", default=[], metavar="PREFIX", help="only topics starting with PREFIX")
    p.add_argument("--json", action="store_true", help="one JSON object per line: envelope and verification")
    p.add_argument("--count", type=int, metavar="N", help="stop after N messages")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="stop after SECONDS without a message")
    p.add_argument("--resume", metavar="NAME", help="keep a checkpoint NAME and continue from it")
    p.add_argument("--since", metavar="WHEN", type=since_arg,
                   help="start of the subscription: epoch seconds, an ISO 8601 time (UTC unless it says), "
                        "or a duration ago such as 90s, 15m, 2h, 1d (default: now; what publishers still hold "
                        "from then on is fetched from their replay endpoints)")
    p.add_argument("--show-rejected", action="store_true", help="also print messages that failed verification")
    args = p.parse_args(argv)
    if args.count is not None and args.count < 1:
        p.error("--count must be at least 1")
    cli.setup_logging(args.verbose)
    config = cli.config_from(args)
    full = [t for t in args.topic if t.startswith("org.")]
    relative = [t for t in args.topic if not t.startswith("org.")]
    sub = open_subscriber(args, config, topics=full if full and not relative else None,
                          resume=args.resume, auto_ack=False, yield_rejected=args.show_rejected, since=args.since)
    # Subscribed: every message stamped from here on will be shown.
    systemd.notify("READY=1")
    shown = 0
    try:
        while args.count is None or shown < args.count:
            item = sub.receive(timeout=args.timeout)
            if item is None:
                return 0 if shown else 1
            if isinstance(item, Received) and args.topic and not any(
                item.topic.startswith(t) for t in full
            ) and not any(relative_topic(item.topic).startswith(t) for t in relative):
                sub.ack(item)
                continue
            # The line and its checkpoint go together: a SIGTERM or Ctrl-C
            # waits until both are done, so a restart repeats nothing.
            with cli.signals_held():
                print(json_line(item) if args.json else summary_line(item), flush=True)
                sub.ack(item)
            if isinstance(item, Received):
                shown += 1
    finally:
        sub.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
