"""The web's database side: a pool of read-only connections (psycopg 3,
psycopg_pool), every statement bounded by statement_timeout.

Point `dsn` at a streaming replica to keep reads off the archive's
primary: the web never writes, and everything it reads (rows and the
counters) is replicated by PostgreSQL itself.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool


class Database:
    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 10, statement_timeout: float = 3.0,
                 wait: float = 5.0) -> None:
        self.dsn = dsn  # the live pages LISTEN on a connection of their own
        self.statement_timeout = statement_timeout
        self.wait = wait
        self.pool = AsyncConnectionPool(
            dsn, min_size=min_size, max_size=max_size, open=False, name="debpulse-web",
            kwargs={"autocommit": True, "row_factory": dict_row, "application_name": "debpulse-web"},
            configure=self._configure, timeout=wait,
        )

    async def _configure(self, conn: psycopg.AsyncConnection) -> None:
        await conn.execute("SET TIME ZONE 'UTC'")
        await conn.execute("SET default_transaction_read_only = on")
        await conn.execute(f"SET statement_timeout = {int(self.statement_timeout * 1000)}")

    async def open(self) -> None:
        # Not waiting for the database: the web answers 503 until it is there.
        await self.pool.open(wait=False)

    async def close(self) -> None:
        await self.pool.close()

    async def all(self, query: str, params: Any = None) -> list[dict[str, Any]]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(query, params)
            return await cur.fetchall()

    async def one(self, query: str, params: Any = None) -> dict[str, Any] | None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(query, params)
            return await cur.fetchone()

    async def tuples(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=psycopg.rows.tuple_row)
            await cur.execute(query, params)
            return await cur.fetchall()

