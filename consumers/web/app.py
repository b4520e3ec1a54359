"""The ASGI application: the pages (live, pulse, package, person, week)
and the API's routes, CORS, the database pool and the live updates' hub
for the application's lifetime.  More route modules join by passing
their routes to `create_app`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from . import api, pages
from .db import Database
from .hub import Hub


async def not_found(request: Request, exc: Exception) -> Response:
    return api.error(request, 404, "not_found")


async def not_allowed(request: Request, exc: Exception) -> Response:
    return api.error(request, 405, f"{request.method} is not allowed here")


def create_app(db: Database, settings: api.WebSettings | None = None,
               routes: Sequence[BaseRoute] = ()) -> Starlette:
    settings = settings or api.WebSettings()
    hub = Hub(db, pages.renderer((settings.base_url or "").rstrip("/")), keep=settings.live_keep)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await db.open()
        await hub.start()
        try:
            yield
        finally:
            await hub.stop()
            await db.close()

    app = Starlette(
        # The pages first: `/` is the live page for a browser, the API's index for a program.
        routes=[*pages.ROUTES, *api.ROUTES, *routes],
        # datagrepper's default: any origin may read (the data is public).
        middleware=[Middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["GET"], max_age=600)],
        exception_handlers={404: not_found, 405: not_allowed},
        lifespan=lifespan,
    )
    app.state.db = db
    app.state.settings = settings
    app.state.hub = hub
    return app
