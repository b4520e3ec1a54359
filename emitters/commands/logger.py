"""debpulse-logger: publish from the shell, as fedmsg-logger does.

It hands events to the local relay and holds no key.  With no relay
answering within the bound, the events go to the spool and the command
still exits 0 (with a warning): it never hangs and never loses them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from .. import cli
from ..errors import ConfigError
from ..event import Event
from ..options import BusOptions
from ..relay_client import RelayClient
from ..topics import check_relative

EPILOG = """\
examples:
  debpulse-logger --message "dinstall finished"
  echo '{"source": "hello", "version": "2.10-3"}' | debpulse-logger --json-input --modname dak --topic package.note
  tail -f /var/log/some.log | debpulse-logger        # one message per line
"""
CHUNK = 500


@cli.entry
def main(argv: Sequence[str] | None = None) -> int:
    p = cli.parser("debpulse-logger", "Publish messages through the local relay.", EPILOG)
    cli.add_common(p)
    p.add_argument("--message", metavar="TEXT", help="publish TEXT (otherwise read lines from stdin)")
    p.add_argument("--json-input", action="store_true", help="each input line is a JSON object: the body")
    p.add_argument("--modname", default="logger", help="the service part of the topic (default: logger)")
    p.add_argument("--topic", default="log", help="the rest of the topic (default: log)")
    p.add_argument("--relay", metavar="URL", help="the relay's local socket (default: the runtime directory)")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="how long to wait for the relay (default 1)")
    args = p.parse_args(argv)
    cli.setup_logging(args.verbose)
    config = cli.config_from(args)
    topic = f"{args.modname}.{args.topic}"
    check_relative(topic)
    opts = BusOptions.from_args(args, config, name="logger")
    if args.timeout is not None:
        opts.relay_timeout = args.timeout
    client = RelayClient(opts)

    def body(line: str, n: int) -> dict:
        if not args.json_input:
            return {"log": line}
        try:
            value = json.loads(line)
        except ValueError as exc:
            raise ConfigError(f"input line {n}: not JSON ({exc})") from None
        if not isinstance(value, dict):
            raise ConfigError(f"input line {n}: the body must be a JSON object")
        return value

    if args.message is not None:
        lines: Sequence[str] = [args.message]
    else:
        lines = (line.rstrip("\n") for line in sys.stdin)  # type: ignore[assignment]
    batch: list[Event] = []
    routes = set()
    for n, line in enumerate(lines, 1):
        if args.json_input and not line.strip():
            continue
        batch.append(Event(topic, body(line, n), origin="debpulse-logger"))
        if len(batch) >= CHUNK:
            routes.add(client.emit_many(batch))
            batch = []
    if batch:
        routes.add(client.emit_many(batch))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
