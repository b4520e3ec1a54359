"""debpulse-logger: publish from the shell, as fedmsg-logger does.

It hands events to the local relay and holds no key.  Lines from stdin go
out as they are read, as fedmsg-logger sends them: a burst already waiting
is handed over in one go, but nothing waits for more to come.  With no relay
answering within the bound, the events go to the spool and the command
still exits 0 (with a warning): it never hangs and never loses them.
"""

from __future__ import annotations

import json
import os
import select
import sys
from collections.abc import Iterator, Sequence

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


def read_batches(fd: int, most: int = CHUNK) -> Iterator[list[str]]:
    """Lines from `fd` as they come: each batch is what had arrived when it
    was read (at most `most` lines), so `tail -f LOG | debpulse-logger`
    publishes every line at once, while a file piped in goes out in chunks
    of `most`.  A last line without its newline counts at the end."""
    pending = b""
    lines: list[str] = []
    eof = False
    while not eof:
        data = os.read(fd, 1 << 16)  # waits until something arrives
        while True:
            if not data:
                eof = True
                break
            pending += data
            *complete, pending = pending.split(b"\n")
            lines += [line.decode("utf-8", "replace").removesuffix("\r") for line in complete]
            while len(lines) >= most:
                yield lines[:most]
                lines = lines[most:]
            if not select.select([fd], [], [], 0)[0]:
                break  # nothing more waiting: hand over what there is
            data = os.read(fd, 1 << 16)
        if lines:
            yield lines
            lines = []
    if pending:
        yield [pending.decode("utf-8", "replace")]


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
        client.emit_many([Event(topic, body(args.message, 1), origin="debpulse-logger")])
        return 0
    n = 0
    for lines in read_batches(sys.stdin.fileno()):
        batch = []
        for line in lines:
            n += 1
            if args.json_input and not line.strip():
                continue
            batch.append(Event(topic, body(line, n), origin="debpulse-logger"))
        if batch:
            client.emit_many(batch)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
