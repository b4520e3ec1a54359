"""The query API's routes: datagrepper's (`/raw`, `/v2/search`, `/id`,
`/v2/id`, `/messagecount`) and what it lacked (`/topics`, `/categories`,
keyset cursors, `/export` as NDJSON, `/feed.atom`).  JSON for programs,
HTML when a browser asks (the Accept header).

Every answer that goes wrong says why in one line: a bad parameter is a
400 naming it; a query that runs out of its time (statement_timeout) is
a 422 saying how to narrow it; a database that is away is a 503.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psycopg
from jinja2 import Environment, FileSystemLoader, select_autoescape
from psycopg_pool import PoolTimeout
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from . import atom, negotiate, shapes
from .cursor import Cursor, encode
from .db import Database
from .params import (
    FILTERS,
    HTML_ONLY,
    BadParameter,
    Search,
    check_names,
    grouped,
    parse_meta,
    parse_search,
)
from .query import RESOLVE_SQL, Names, Plan, advice, build, by_msg_id_sql, resolve_params

TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                        autoescape=select_autoescape(default=True, default_for_string=True))
FILTER_PARAMS = (*FILTERS, *(f"not_{f}" for f in FILTERS), "contains", "start", "end", "delta")
EXPORT_PARAMS = (*FILTER_PARAMS, "order", "meta")
FEED_PARAMS = (*FILTER_PARAMS, "rows_per_page")
ID_PARAMS = ("id", "meta", "callback", *HTML_ONLY)


@dataclass
class WebSettings:
    default_delta: float = 0          # seconds; 0: no time bound unless asked (datagrepper's default)
    statement_timeout: float = 3.0
    base_url: str | None = None       # for links in feeds, when behind a proxy that rewrites paths
    export_chunk: int = 1000
    live_keep: int = 2000             # newest rows the live pages' hub keeps in memory


class Unavailable(Exception):
    """Something the answer needs is not there yet: a 503."""


class TooBroad(Exception):
    def __init__(self, search: Search, timeout: float) -> None:
        super().__init__(advice(search, timeout=timeout))


def _db(request: Request) -> Database:
    return request.app.state.db


def _settings(request: Request) -> WebSettings:
    return request.app.state.settings


def _base(request: Request) -> str:
    return (_settings(request).base_url or str(request.base_url)).rstrip("/")


def _params(request: Request) -> dict[str, list[str]]:
    return grouped(request.query_params.multi_items())


# -- answering -------------------------------------------------------------------


def json_response(data: Any, status: int = 200, *, callback: str | None = None,
                  headers: dict[str, str] | None = None) -> Response:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    if callback:  # JSONP, for datagrepper's widget; the name was checked
        return Response(f"/**/{callback}({text});", status, headers, media_type="application/javascript")
    return Response(text, status, headers, media_type="application/json")


def html_response(template: str, status: int = 200, **context: Any) -> Response:
    return Response(TEMPLATES.get_template(template).render(**context), status, media_type="text/html")


def error(request: Request, status: int, message: str, **extra: Any) -> Response:
    if negotiate.wants_html(request.headers.get("accept")):
        return html_response("error.html", status, title=f"{status}", error=message, base=_base(request))
    return json_response({"error": message, **extra}, status)


def guarded(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """Errors as answers: 400 with the parameter, 422 with advice, 503."""
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except BadParameter as exc:
            return error(request, 400, str(exc), parameter=exc.parameter)
        except TooBroad as exc:
            return error(request, 422, str(exc))
        except psycopg.errors.QueryCanceled:
            timeout = _settings(request).statement_timeout
            return error(request, 422, f"the query did not finish within {timeout:g} s; narrow it")
        except Unavailable as exc:
            return error(request, 503, f"{exc}; try again shortly")
        except (PoolTimeout, psycopg.OperationalError, psycopg.errors.SerializationFailure) as exc:
            return error(request, 503, f"the database is not available ({' '.join(str(exc).split())[:200]});"
                                       " try again shortly", )
    endpoint.__name__ = handler.__name__
    return endpoint


async def names_of(db: Database, search: Search) -> Names:
    return Names.from_rows([tuple(r) for r in await db.tuples(RESOLVE_SQL, resolve_params(search))])


async def run_search(db: Database, search: Search, *, timeout: float, count: bool = True,
                     limit: int | None = None, cursor: Cursor | None = None) -> tuple[list[dict[str, Any]], int | None]:
    """The page of rows and the total (None when not asked) for a search;
    TooBroad when a statement runs out of time.  Reusable by other views."""
    try:
        plan: Plan | None = build(search, await names_of(db, search), limit=limit, cursor=cursor)
        if plan is None:
            return [], 0
        rows = await db.all(plan.rows_sql, plan.rows_params)
        total = None
        if count:
            total = plan.total
            if total is None:
                total = (await db.tuples(plan.count_sql, plan.count_params))[0][0]
        return rows, total
    except psycopg.errors.QueryCanceled:
        raise TooBroad(search, timeout) from None


def _with(request: Request, path: str | None = None, **changes: str | None) -> str:
    """This request's URL with some parameters changed (None removes)."""
    items = [(k, v) for k, v in request.query_params.multi_items() if k not in changes]
    items += [(k, v) for k, v in changes.items() if v is not None]
    return f"{_base(request)}{path or request.url.path}" + (f"?{urlencode(items)}" if items else "")


# -- search ------------------------------------------------------------------------


async def _search(request: Request, version: int) -> Response:
    settings = _settings(request)
    search = parse_search(_params(request), default_delta=settings.default_delta)
    rows, total = await run_search(_db(request), search, timeout=settings.statement_timeout)
    assert total is not None
    more = len(rows) == search.rows_per_page and (search.cursor is not None or search.offset + len(rows) < total)
    next_cursor = encode(Cursor(rows[-1]["ts"], rows[-1]["id"], search.order)) if more and rows else None
    headers = {}
    if next_cursor:
        headers["Link"] = f'<{_with(request, cursor=next_cursor, page=None)}>; rel="next"'
    if negotiate.wants_html(request.headers.get("accept")):
        base = _base(request)
        cards = [{"summary": shapes.meta(r, ("summary",))["summary"], "url": shapes.meta(r, ("url",))["url"],
                  "date": shapes.iso(r["ts"]), "topic": r["topic"], "msg_id": r["msg_id"],
                  "self": atom.message_url(base, r["msg_id"])} for r in rows]
        response = html_response("messages.html", title="Messages", messages=cards, total=total, base=base,
                                 feed=_with(request, "/feed.atom", cursor=None, page=None, order=None),
                                 next=_with(request, cursor=next_cursor, page=None) if next_cursor else None)
        response.headers.update(headers)
        return response
    shape = shapes.v2 if version == 2 else shapes.v1
    body: dict[str, Any] = {
        "raw_messages": [shape(r, search.meta) for r in rows],
        "count": len(rows),
        "total": total,
        "pages": math.ceil(total / search.rows_per_page),
        "arguments": search.arguments(),
        "next_cursor": next_cursor,
    }
    if search.warnings:
        body["WARNING"] = list(search.warnings)
    return json_response(body, callback=search.callback, headers=headers)


@guarded
async def raw(request: Request) -> Response:
    return await _search(request, 1)


@guarded
async def v2_search(request: Request) -> Response:
    return await _search(request, 2)


async def _by_id(request: Request, version: int) -> Response:
    params = _params(request)
    check_names(params, ID_PARAMS)
    ident = params.get("id", [None])[0]
    if not ident:
        raise BadParameter("id", "required (the msg_id of a message)")
    meta, _ = parse_meta(params)
    row = await _db(request).one(by_msg_id_sql(), (ident,))
    if row is None:
        return error(request, 404, f"no message with id {ident!r}")
    if negotiate.wants_html(request.headers.get("accept")):
        info = shapes.meta(row, ("summary", "url"))
        return html_response("message.html", title=info["summary"], url=info["url"], date=shapes.iso(row["ts"]),
                             topic=row["topic"], msg_id=row["msg_id"], signer=row["signer"], scope=row["scope"],
                             users=row["usernames"], packages=row["packages"], base=_base(request),
                             body=json.dumps(row["body"], indent=2, ensure_ascii=False, sort_keys=True))
    data = shapes.v2(row, meta) if version == 2 else shapes.v1(row, meta, envelope=True)
    return json_response(data, callback=params.get("callback", [None])[0])


@guarded
async def by_id(request: Request) -> Response:
    return await _by_id(request, 1)


@guarded
async def v2_by_id(request: Request) -> Response:
    return await _by_id(request, 2)


# -- counts and names -------------------------------------------------------------


@guarded
async def messagecount(request: Request) -> Response:
    check_names(_params(request), ("callback",))
    row = await _db(request).one("SELECT coalesce(sum(message_count), 0)::bigint AS n FROM categories")
    assert row is not None
    return json_response({"messagecount": row["n"]}, callback=request.query_params.get("callback"))


def _when(value: Any) -> str | None:
    return shapes.iso(value) if value is not None else None


@guarded
async def topics(request: Request) -> Response:
    check_names(_params(request), ("category",))
    category = request.query_params.get("category")
    rows = await _db(request).all(
        "SELECT t.name, c.name AS category, t.message_count AS count, t.first_seen, t.last_seen"
        " FROM topics t JOIN categories c ON c.id = t.category_id"
        " WHERE %(c)s::text IS NULL OR c.name = %(c)s ORDER BY t.name", {"c": category})
    names = [{"topic": r["name"], "category": r["category"], "count": r["count"],
              "first_seen": _when(r["first_seen"]), "last_seen": _when(r["last_seen"])} for r in rows]
    if negotiate.wants_html(request.headers.get("accept")):
        return html_response("names.html", title="Topics", kind="topic", param="topic", with_category=True,
                             names=[{**n, "name": n["topic"]} for n in names], base=_base(request))
    return json_response({"topics": names, "total": len(names)})


@guarded
async def categories(request: Request) -> Response:
    check_names(_params(request), ())
    rows = await _db(request).all("SELECT name, message_count AS count, last_seen FROM categories ORDER BY name")
    names = [{"category": r["name"], "count": r["count"], "last_seen": _when(r["last_seen"])} for r in rows]
    if negotiate.wants_html(request.headers.get("accept")):
        return html_response("names.html", title="Categories", kind="category", param="category",
                             with_category=False, names=[{**n, "name": n["category"]} for n in names],
                             base=_base(request))
    return json_response({"categories": names, "total": len(names)})


# -- export and feed ----------------------------------------------------------------


@guarded
async def export(request: Request) -> Response:
    """Every matching message, one JSON object (v1 shape) per line, oldest
    first unless order=desc: read in keyset chunks, each statement bounded,
    so a year costs memory for one chunk only."""
    settings = _settings(request)
    params = _params(request)
    check_names(params, EXPORT_PARAMS)
    params.setdefault("order", ["asc"])
    search = parse_search(params, default_delta=settings.default_delta, allowed=EXPORT_PARAMS)
    db = _db(request)
    chunk = settings.export_chunk
    first, _ = await run_search(db, search, timeout=settings.statement_timeout, count=False, limit=chunk)

    async def lines() -> AsyncIterator[bytes]:
        rows = first
        while True:
            yield "".join(json.dumps(shapes.v1(r, search.meta), ensure_ascii=False) + "\n" for r in rows).encode()
            if len(rows) < chunk:
                return
            cursor = Cursor(rows[-1]["ts"], rows[-1]["id"], search.order)
            try:
                rows, _ = await run_search(db, search, timeout=settings.statement_timeout, count=False,
                                           limit=chunk, cursor=cursor)
            except (TooBroad, psycopg.Error, PoolTimeout) as exc:
                # The status is sent already: the last line says what went wrong.
                yield (json.dumps({"error": str(exc), "resume_cursor": encode(cursor)}) + "\n").encode()
                return

    return StreamingResponse(lines(), media_type="application/x-ndjson")


@guarded
async def feed(request: Request) -> Response:
    settings = _settings(request)
    params = _params(request)
    check_names(params, FEED_PARAMS)
    search = parse_search(params, default_delta=settings.default_delta, allowed=FEED_PARAMS)
    rows, _ = await run_search(_db(request), search, timeout=settings.statement_timeout, count=False)
    described = ", ".join(f"{k}={v}" for k, v in request.query_params.multi_items() if k != "rows_per_page")
    base = _base(request)
    body = atom.feed(rows, title=f"debpulse: {described or 'every message'}", self_url=_with(request),
                     html_url=_with(request, "/raw"), base_url=base)
    return Response(body, media_type="application/atom+xml")


# -- the rest ----------------------------------------------------------------------------


@guarded
async def index(request: Request) -> Response:
    row = await _db(request).one("SELECT coalesce(sum(message_count), 0)::bigint AS n FROM categories")
    total = row["n"] if row else 0
    if negotiate.wants_html(request.headers.get("accept")):
        return html_response("index.html", title="debpulse history", total=total, base=_base(request))
    return json_response({"messagecount": total, "routes": [r.path for r in ROUTES]})


async def live(request: Request) -> Response:
    return PlainTextResponse("ok")


async def ready(request: Request) -> Response:
    try:
        await _db(request).one("SELECT 1")
    except (PoolTimeout, psycopg.Error) as exc:
        return PlainTextResponse(f"database not available: {exc}", 503)
    return PlainTextResponse("ok")


ROUTES = [
    Route("/", index, methods=["GET"]),
    Route("/raw", raw, methods=["GET"]),
    Route("/raw/", raw, methods=["GET"]),
    Route("/v2/search", v2_search, methods=["GET"]),
    Route("/v2/search/", v2_search, methods=["GET"]),
    Route("/id", by_id, methods=["GET"]),
    Route("/id/", by_id, methods=["GET"]),
    Route("/v2/id", v2_by_id, methods=["GET"]),
    Route("/v2/id/", v2_by_id, methods=["GET"]),
    Route("/messagecount", messagecount, methods=["GET"]),
    Route("/topics", topics, methods=["GET"]),
    Route("/categories", categories, methods=["GET"]),
    Route("/export", export, methods=["GET"]),
    Route("/feed.atom", feed, methods=["GET"]),
    Route("/healthz/live", live, methods=["GET"]),
    Route("/healthz/ready", ready, methods=["GET"]),
]
