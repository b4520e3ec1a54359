"""The pages a person opens (I/O): the live page (`/`) and its stream
(`/stream`), the pulse (`/pulse`), a package (`/package/<source>`), a
person (`/user/<name>`) and a week (`/week/<YYYY>-W<ww>`).

Server-rendered HTML, readable without JavaScript; one small script
(static/live.js) streams new messages and pulse charts by Server-Sent
Events.  Every page but the live one also answers JSON (the Accept
header, as the API does).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from . import api, charts, live, negotiate, shapes, views, weeks
from .api import TEMPLATES, guarded, html_response, json_response, run_search
from .hub import Hub
from .params import BadParameter, Search, _user, grouped
from .query import COLUMNS

STATIC = Path(__file__).parent / "static"
KEEPALIVE = 15.0        # seconds between comments on a quiet stream (proxies close idle ones)
RETRY_MS = 1000         # how soon a browser reconnects
# `pulse=`: which charts a stream sends when they change (the hour chart is the larger).
PULSE_CHARTS = {"": (), "0": (), "minute": ("minute",), "1": ("minute",), "all": ("minute", "hour")}
TEMPLATES.globals["colour"] = charts.colour


def render_card(card: live.Card, base: str = "") -> str:
    return TEMPLATES.get_template("card.html").render(c=card, base=base)


def renderer(base: str) -> Any:
    def render(row: dict[str, Any]) -> str:
        return render_card(live.card(row), base)
    return render


def _hub(request: Request) -> Hub:
    return request.app.state.hub


def _base(request: Request) -> str:
    return (api._settings(request).base_url or "").rstrip("/")  # noqa: SLF001 (the same settings)


def _query(params: dict[str, list[str]]) -> str:
    return urlencode([(k, v) for k, vs in params.items() for v in vs])


async def _category_names(request: Request) -> list[str]:
    return [r["name"] for r in await api._db(request).all("SELECT name FROM categories ORDER BY name")]  # noqa: SLF001


# -- the live page -------------------------------------------------------------------------


@guarded
async def live_page(request: Request) -> Response:
    if not negotiate.wants_html(request.headers.get("accept")):
        return await api.index(request)  # programs get the API's index, as before
    params = live.form_params(grouped(request.query_params.multi_items()))
    rows = live.rows_param(params)
    params.pop("rows", None)
    search = live.parse_filters(params)
    hub = _hub(request)
    await _waited(hub)
    after = hub.position  # the stream starts here; the page and the stream may overlap, never leave a hole
    found, _ = await run_search(api._db(request), search, timeout=api._settings(request).statement_timeout,  # noqa: SLF001
                                count=False, limit=rows)
    base = _base(request)
    stream = f"{base}/stream?" + _query({**params, "pulse": ["minute"]})
    return html_response(
        "live.html", title="Live", base=base, cards=[render_card(live.card(r), base) for r in found],
        after=after, rows=rows, stream=stream, filters={k: v[0] for k, v in params.items()},
        filtered=bool(params), categories=await _category_names(request), minute_chart=hub.charts.get("minute", ""),
        api_url=f"{base}/raw?" + _query(params), feed_url=f"{base}/feed.atom?" + _query(params))


async def _waited(hub: Hub) -> None:
    try:
        await asyncio.wait_for(hub.started.wait(), 5)
    except TimeoutError:
        raise api.Unavailable("the live feed has not reached the database yet") from None


@guarded
async def stream(request: Request) -> Response:
    """Server-Sent Events: `message` (a card, its id the archive
    position) and `pulse` (the charts).  Starts after `Last-Event-ID`
    (what a browser sends when it reconnects), else `after`, else now."""
    params = live.form_params(grouped(request.query_params.multi_items()))
    search = live.parse_filters(params, extra=live.STREAM_PARAMS)
    resume = live.position(request.headers.get("last-event-id"), "Last-Event-ID")
    if resume is None:
        resume = live.position((params.get("after") or [None])[-1], "after")
    charts_wanted = PULSE_CHARTS.get((params.get("pulse") or [""])[-1])
    if charts_wanted is None:
        raise BadParameter("pulse", f"one of {', '.join(repr(k) for k in PULSE_CHARTS if k)}")
    hub = _hub(request)
    await _waited(hub)
    start = hub.position if resume is None else resume
    return StreamingResponse(_events(hub, search, start, charts_wanted), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _events(hub: Hub, search: Search, position: int, charts_wanted: tuple[str, ...]) -> AsyncIterator[str]:
    yield f"retry: {RETRY_MS}\n: from {position}\n\n"
    shown = hub.pulse_version
    while True:
        waiter = hub.waiter()
        try:
            cards, position = await hub.since(position, search)
        except Exception as exc:  # noqa: BLE001 (the database went away: end; the browser comes back)
            yield f": {type(exc).__name__}\n\n"
            return
        out = [live.sse(html, event="message", ident=ident) for ident, html in cards]
        if charts_wanted and hub.pulse_version != shown and hub.charts:
            shown = hub.pulse_version
            out.append(live.pulse_event({name: hub.charts[name] for name in charts_wanted}))
        if out:
            yield "".join(out)
        if position < hub.position:
            continue  # more to read now
        if hub.closing.is_set():
            return
        try:
            async with asyncio.timeout(KEEPALIVE):  # no task per wait: a thousand streams wake often
                await waiter.wait()
        except TimeoutError:
            yield ": keepalive\n\n"


async def script(request: Request) -> Response:
    return FileResponse(STATIC / "live.js", media_type="text/javascript", headers={"Cache-Control": "max-age=3600"})


# -- the pulse -----------------------------------------------------------------------------


@guarded
async def pulse_page(request: Request) -> Response:
    hub = _hub(request)
    await _waited(hub)
    now = datetime.now(UTC)
    if negotiate.wants_html(request.headers.get("accept")):
        base = _base(request)
        return html_response("pulse.html", title="Pulse", base=base, charts=hub.charts,
                             stream=f"{base}/stream?pulse=all", after=hub.position,
                             minutes=hub.pulse.minutes.total(now), hours=hub.pulse.hours.total(now))
    out = {}
    for name, window in (("minute", hub.pulse.minutes), ("hour", hub.pulse.hours)):
        starts, series = window.series(now)
        out[name] = {"start": [shapes.iso(s) for s in starts], "series": series}
    return json_response(out)


# -- a package, a person --------------------------------------------------------------------


async def _known_topics(request: Request) -> list[str]:
    return [r["name"] for r in await api._db(request).all("SELECT name FROM topics")]  # noqa: SLF001


async def _rows(request: Request, search: Search, limit: int) -> list[dict[str, Any]]:
    if not (search.topics or search.categories or search.users or search.packages):
        return []
    rows, _ = await run_search(api._db(request), search, timeout=api._settings(request).statement_timeout,  # noqa: SLF001
                               count=False, limit=limit)
    return rows


def _card_json(row: dict[str, Any]) -> dict[str, Any]:
    c = live.card(row)
    return {"msg_id": c.msg_id, "date": c.date, "topic": c.topic, "summary": c.summary, "link": c.link,
            "agent": c.agent, "signer": c.signer}


@guarded
async def package_page(request: Request) -> Response:
    source = request.path_params["source"]
    if not source or len(source) > 200 or "\x00" in source:
        raise BadParameter("source", "not a package name")
    known = await _known_topics(request)
    db = api._db(request)  # noqa: SLF001
    info = await db.one("SELECT message_count, last_seen FROM packages WHERE name = %s", (source,))
    sections = {}
    for key, _, topics in views.SECTIONS:
        topic_names = views.full_topics(known, topics)
        rows = await _rows(request, Search(packages=(source,), topics=topic_names), 15) if topic_names else []
        sections[key] = rows
    builds = await _rows(request, Search(packages=(source,), topics=views.full_topics(
        known, [views.BUILD_COMPLETE])), 300) if views.full_topics(known, [views.BUILD_COMPLETE]) else []
    states_rows = await _rows(request, Search(packages=(source,), topics=views.full_topics(
        known, [views.STATE_UPDATE])), 300) if views.full_topics(known, [views.STATE_UPDATE]) else []
    last = views.last_successful_builds(builds)
    states = views.current_states(states_rows)
    building = views.building_now(states)
    if negotiate.wants_html(request.headers.get("accept")):
        base = _base(request)
        return html_response(
            "package.html", title=source, base=base, source=source, info=info,
            sections=[(heading, [render_card(live.card(r), base) for r in sections[key]])
                      for key, heading, _ in views.SECTIONS],
            last=last, states=states, building=building, quote=quote,
            live_url=f"{base}/?package={quote(source)}", api_url=f"{base}/raw?package={quote(source)}")
    return json_response({
        "package": source,
        "messages": info["message_count"] if info else 0,
        "last_seen": shapes.iso(info["last_seen"]) if info and info["last_seen"] else None,
        **{key: [_card_json(r) for r in sections[key]] for key, _, _ in views.SECTIONS},
        "last_successful_build": {b.architecture: {"version": b.version, "builder": b.who,
                                                   "date": shapes.iso(b.row["ts"])} for b in last},
        "wanna_build": {s.architecture: {"state": s.state, "version": s.version, "by": s.who,
                                         "date": shapes.iso(s.row["ts"])} for s in states},
        "building": [s.architecture for s in building],
    })


RECENT_OF_USER = 5000  # how far back a person page looks for each kind of activity


@guarded
async def user_page(request: Request) -> Response:
    name = _user(request.path_params["name"])
    if not name or len(name) > 200 or "\x00" in name:
        raise BadParameter("name", "not a person")
    db = api._db(request)  # noqa: SLF001
    info = await db.one("SELECT id, message_count, last_seen FROM users WHERE name = %s", (name,))
    rows: list[dict[str, Any]] = []
    if info:
        rows = await db.all(
            "WITH recent AS (SELECT ts, message_id FROM message_users WHERE user_id = %s"
            " ORDER BY ts DESC, message_id DESC LIMIT %s)"
            f" SELECT DISTINCT ON (m.topic_id) {COLUMNS} FROM recent r"
            " JOIN messages m ON m.ts = r.ts AND m.id = r.message_id"
            " JOIN topics t ON t.id = m.topic_id JOIN categories c ON c.id = m.category_id"
            " LEFT JOIN publishers pb ON pb.id = m.publisher_id"
            " ORDER BY m.topic_id, m.ts DESC, m.id DESC", (info["id"], RECENT_OF_USER))
    kinds = views.last_of_each_kind(rows)
    recent = await _rows(request, Search(users=(name,)), 20) if info else []
    if negotiate.wants_html(request.headers.get("accept")):
        base = _base(request)
        return html_response(
            "user.html", title=name, base=base, name=name, info=info, window=RECENT_OF_USER,
            kinds=[(kind, render_card(live.card(r), base) if r else None) for kind, r in kinds],
            recent=[render_card(live.card(r), base) for r in recent],
            live_url=f"{base}/?user={quote(name)}", api_url=f"{base}/raw?user={quote(name)}")
    return json_response({
        "user": name,
        "messages": info["message_count"] if info else 0,
        "last_seen": shapes.iso(info["last_seen"]) if info and info["last_seen"] else None,
        "last": {kind: _card_json(r) if r else None for kind, r in kinds},
        "recent": [_card_json(r) for r in recent],
    })


# -- a week -------------------------------------------------------------------------------------


async def _week_stats(request: Request, week: weeks.Week, topic_ids: list[int]) -> weeks.WeekStats:
    rows = await api._db(request).all(weeks.WEEK_SQL, (weeks.BUILD_LIKE, topic_ids, week.start, week.end))  # noqa: SLF001
    return weeks.aggregate(rows)


@guarded
async def week_page(request: Request) -> Response:
    try:
        week = weeks.Week.parse(request.path_params["week"])
    except weeks.BadWeek as exc:
        raise BadParameter("week", str(exc)) from None
    db = api._db(request)  # noqa: SLF001
    topic_rows = await db.all("SELECT id, name FROM topics")
    from debpulse.emitters.topics import relative_topic

    wanted = set(weeks.TOPICS)
    topic_ids = [r["id"] for r in topic_rows if relative_topic(r["name"]) in wanted]
    accept_ids = [r["id"] for r in topic_rows if relative_topic(r["name"]) == "dak.package.accept"]
    this = await _week_stats(request, week, topic_ids)
    before = await _week_stats(request, week.shift(-1), topic_ids)
    accepts = await db.all(weeks.ACCEPTS_SQL, {"accept": accept_ids, "start": week.start, "end": week.end,
                                               "since": week.start - weeks.LOOKBACK})
    data = weeks.overview(week, this, before, weeks.maintainer_changes(accepts, week.start))
    if not negotiate.wants_html(request.headers.get("accept")):
        return json_response(data)
    base = _base(request)
    days = [d.strftime("%a %d") for d in week.days]
    compare = charts.compare_bars([(a["label"], a["count"], a["previous"]) for a in data["activities"]],
                                  title=f"Activity in {week.name} against the week before",
                                  colours=[charts.colour(a["service"]) for a in data["activities"]])
    daily = {a["activity"]: charts.stacked_columns(days, {a["label"]: a["per_day"]}, title=f"{a['label']} per day",
                                                   width=140, height=36, bare=True,
                                                   colours={a["label"]: charts.colour(a["service"])})
             for a in data["activities"]}
    now = weeks.Week.of(datetime.now(UTC))
    return html_response(
        "week.html", title=f"Week {week.name}", base=base, week=week, data=data, compare=compare, daily=daily,
        previous=week.shift(-1).name, next=week.shift(1).name if week.start < now.start else None,
        days=days, week_start=week.monday.strftime("%d %B %Y"),
        week_end=week.days[-1].strftime("%d %B %Y"))


async def this_week(request: Request) -> Response:
    return RedirectResponse(f"{_base(request)}/week/{weeks.Week.of(datetime.now(UTC)).name}", 302)


@guarded
async def api_help(request: Request) -> Response:
    """What the query API answers (what `/` showed before the live page)."""
    row = await api._db(request).one("SELECT coalesce(sum(message_count), 0)::bigint AS n FROM categories")  # noqa: SLF001
    return html_response("index.html", title="The query API", total=row["n"] if row else 0, base=_base(request))


ROUTES = [
    Route("/", live_page, methods=["GET"]),
    Route("/stream", stream, methods=["GET"]),
    Route("/static/live.js", script, methods=["GET"]),
    Route("/pulse", pulse_page, methods=["GET"]),
    Route("/package/{source:path}", package_page, methods=["GET"]),
    Route("/user/{name:path}", user_page, methods=["GET"]),
    Route("/week", this_week, methods=["GET"]),
    Route("/week/{week}", week_page, methods=["GET"]),
    Route("/api", api_help, methods=["GET"]),
]
