"""Postgres access: a connection per unit of work, failing fast when the database is unreachable.

Go's database/sql (what courier uses) reconnects transparently and fails at once on a refused
connection; psycopg-pool's regular pool instead makes callers wait for a background reconnect.
The null pool connects in the caller, which keeps "DB down -> immediate error -> spool" faithful.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncNullConnectionPool

# courier's backendTimeout bounds every DB operation at 20 s
BACKEND_TIMEOUT_S = 20.0
CONNECT_TIMEOUT_S = 10


class Database:
    def __init__(self, url: str, max_size: int = 16) -> None:
        self._pool: AsyncNullConnectionPool[AsyncConnection[DictRow]] = AsyncNullConnectionPool(
            url,
            max_size=max_size,
            timeout=BACKEND_TIMEOUT_S,
            open=False,
            kwargs={
                "autocommit": True,
                "row_factory": dict_row,
                "connect_timeout": CONNECT_TIMEOUT_S,
                "application_name": "courier",
            },
        )

    async def open(self) -> None:
        await self._pool.open(wait=False)

    async def close(self) -> None:
        await self._pool.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection[DictRow]]:
        async with self._pool.connection() as conn:
            yield conn

    async def ping(self) -> None:
        async with self.connection() as conn:
            await conn.execute("SELECT 1")
