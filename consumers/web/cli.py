"""debpulse-web: the history's query API, served by uvicorn."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from debpulse.adapters.common.service import ready, stopping
from debpulse.emitters import cli
from debpulse.emitters.config import Config, Derived, Key, Table
from debpulse.emitters.errors import ConfigError

log = logging.getLogger("debpulse-web")

DEFAULT_LISTEN = "127.0.0.1:9960"
WEB = Table("web", {
    "listen": Key(str, DEFAULT_LISTEN, "where it serves, `HOST:PORT` (behind a reverse proxy that terminates TLS)"),
    "dsn": Key(str, Derived("`[archive] read_dsn`, else `[archive] dsn`"), "libpq connection string of the "
               "database it reads (a replica will do)"),
    "pool_min": Key(int, 1, "database connections kept open at least"),
    "pool_max": Key(int, 10, "database connections at most"),
    "statement_timeout": Key((int, float), 3, "seconds a query may take; a longer one is answered 422, with how "
                             "to narrow it"),
    "default_delta": Key((int, float), 0, "seconds searched when a query gives no time (`0`: all of it)"),
    "base_url": Key(str, Derived("the address of each request"), "the public address, for links in Atom feeds "
                    "behind a proxy"),
    "export_chunk": Key(int, 1000, "rows per database round trip of an NDJSON export"),
    "proxy_headers": Key(bool, False, "trust `X-Forwarded-For` and `X-Forwarded-Proto` from the proxy"),
    "live_keep": Key(int, 2000, "newest messages the live pages keep in memory"),
}, "`debpulse-web`: the live pages and datagrepper's query API over the history.", read_by=("debpulse-web",))

EPILOG = """\
examples:
  debpulse-web --dsn "host=db-replica.example.org dbname=debpulse user=debpulse_web"
  # then open http://127.0.0.1:9960/ (live), /pulse, /week, /package/hello, /user/jane
  curl 'http://127.0.0.1:9960/raw?package=hello&rows_per_page=5'
  curl 'http://127.0.0.1:9960/feed.atom?user=jane'

/etc/debpulse/debpulse.toml:
  [web]
  listen = "127.0.0.1:9960"          # behind a reverse proxy that terminates TLS
  dsn = "service=debpulse-replica"   # default: [archive] read_dsn, then [archive] dsn
  statement_timeout = 3              # seconds; a query that needs more gets a 422 saying how to narrow it
  default_delta = 0                  # seconds searched when a query gives no time (0: all of it)
"""


def _address(value: str, where: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{where} {value!r} is not HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


def options(args: argparse.Namespace, config: Config) -> dict:
    from debpulse.consumers.archive.cli import ARCHIVE

    from .api import WebSettings

    section = WEB.read(config)
    archive = ARCHIVE.read(config)
    dsn = args.dsn or section["dsn"] or archive["read_dsn"] or archive["dsn"]
    listen = args.listen or section["listen"]
    where = "--listen" if args.listen else f"{section.where}: [web] listen"
    host, port = _address(listen, where)
    timeout = float(section["statement_timeout"])
    default_delta = float(section["default_delta"])
    pool_min, pool_max = section["pool_min"], section["pool_max"]
    chunk = section["export_chunk"]
    keep = section["live_keep"]
    if timeout <= 0 or default_delta < 0 or not 0 <= pool_min <= pool_max or pool_max < 1 or chunk < 1 or keep < 1:
        raise ConfigError(f"{section.where}: [web] statement_timeout, pool_max, export_chunk and live_keep must be "
                          "positive, default_delta not negative, pool_min at most pool_max")
    return {
        "dsn": dsn, "host": host, "port": port, "pool": (pool_min, pool_max),
        "proxy_headers": section["proxy_headers"],
        "settings": WebSettings(default_delta=default_delta, statement_timeout=timeout,
                                base_url=section["base_url"], export_chunk=chunk,
                                live_keep=keep),
    }


@cli.entry
def main(argv: Sequence[str] | None = None) -> int:
    p = cli.parser("debpulse-web", "Serve the history (debpulse-archive's database) over HTTP: the live page, "
                   "the pulse, pages per package, person and week, datagrepper's API, Atom feeds, NDJSON export.",
                   EPILOG)
    cli.add_common(p)
    p.add_argument("--dsn", metavar="DSN", help="PostgreSQL to read from (a replica is fine)")
    p.add_argument("--listen", metavar="HOST:PORT", help=f"address to serve on (default {DEFAULT_LISTEN})")
    args = p.parse_args(argv)
    cli.setup_logging(args.verbose)
    opts = options(args, cli.config_from(args))
    import uvicorn

    from .app import create_app
    from .db import Database

    db = Database(opts["dsn"], min_size=opts["pool"][0], max_size=opts["pool"][1],
                  statement_timeout=opts["settings"].statement_timeout)
    app = create_app(db, opts["settings"])
    server = uvicorn.Server(uvicorn.Config(
        app, host=opts["host"], port=opts["port"], log_config=None, access_log=args.verbose > 0,
        proxy_headers=opts["proxy_headers"], lifespan="on", timeout_graceful_shutdown=10))
    return asyncio.run(_serve(server, f"{opts['host']}:{opts['port']}", app.state.hub))


async def _serve(server: object, where: str, hub: object) -> int:
    import uvicorn

    from .hub import Hub

    assert isinstance(server, uvicorn.Server) and isinstance(hub, Hub)
    task = asyncio.create_task(server.serve())

    async def end_streams() -> None:
        # uvicorn waits for open responses before it stops: end the live
        # streams at once (their browsers reconnect and resume).
        while not server.should_exit:
            await asyncio.sleep(0.1)
        hub.close_streams()

    watch = asyncio.create_task(end_streams())
    while not server.started:
        if task.done():
            try:
                task.result()
            except SystemExit:
                pass
            print(f"debpulse-web: could not serve on {where}", file=sys.stderr)
            return 1
        await asyncio.sleep(0.02)
    ready(f"serving on http://{where}")
    log.info("serving on http://%s", where)
    try:
        await task
    finally:
        watch.cancel()
        stopping()
    return 0


if __name__ == "__main__":
    sys.exit(main())
