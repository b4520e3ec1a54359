"""The ASGI application: the API's routes, CORS, the database pool for
the application's lifetime.  More route modules (live views, pages per
package or person) join by passing their routes to `create_app`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from . import api
from .db import Database


async def not_found(request: Request, exc: Exception) -> Response:
    return api.error(request, 404, "not_found")


async def not_allowed(request: Request, exc: Exception) -> Response:
    return api.error(request, 405, f"{request.method} is not allowed here")


def create_app(db: Database, settings: api.WebSettings | None = None,
               routes: Sequence[BaseRoute] = ()) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await db.open()
        try:
            yield
        finally:
            await db.close()

    app = Starlette(
        routes=[*api.ROUTES, *routes],
        # datagrepper's default: any origin may read (the data is public).
        middleware=[Middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["GET"], max_age=600)],
        exception_handlers={404: not_found, 405: not_allowed},
        lifespan=lifespan,
    )
    app.state.db = db
    app.state.settings = settings or api.WebSettings()
    return app
