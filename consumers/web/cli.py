"""debpulse-web: the history's query API, served by uvicorn."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from debpulse.adapters.common.service import ready, stopping
from debpulse.emitters import cli
from debpulse.emitters.config import Config
from debpulse.emitters.errors import ConfigError

log = logging.getLogger("debpulse-web")

WEB_KEYS = {"listen", "dsn", "pool_min", "pool_max", "statement_timeout", "default_delta", "base_url",
            "export_chunk", "proxy_headers", "live_keep"}
DEFAULT_LISTEN = "127.0.0.1:9960"

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
    from .api import WebSettings

    section = config.section("web")
    section.check_keys(WEB_KEYS)
    archive = config.section("archive")
    dsn = args.dsn or section.get("dsn", str, None) or archive.get("read_dsn", str, None) \
        or archive.get("dsn", str, "dbname=debpulse")
    listen = args.listen or section.get("listen", str, DEFAULT_LISTEN)
    where = "--listen" if args.listen else f"{section.where}: [web] listen"
    host, port = _address(listen, where)
    timeout = float(section.get("statement_timeout", (int, float), 3))
    default_delta = float(section.get("default_delta", (int, float), 0))
    pool_min, pool_max = section.get("pool_min", int, 1), section.get("pool_max", int, 10)
    chunk = section.get("export_chunk", int, 1000)
    keep = section.get("live_keep", int, 2000)
    if timeout <= 0 or default_delta < 0 or not 0 <= pool_min <= pool_max or pool_max < 1 or chunk < 1 or keep < 1:
        raise ConfigError(f"{section.where}: [web] statement_timeout, pool_max, export_chunk and live_keep must be "
                          "positive, default_delta not negative, pool_min at most pool_max")
    return {
        "dsn": dsn, "host": host, "port": port, "pool": (pool_min, pool_max),
        "proxy_headers": section.get("proxy_headers", bool, False),
        "settings": WebSettings(default_delta=default_delta, statement_timeout=timeout,
                                base_url=section.get("base_url", str, None), export_chunk=chunk,
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
