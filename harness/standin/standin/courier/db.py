"""Postgres access with Go database/sql's failure behaviour: reuse idle connections, fail fast when down.

courier's sqlx pool hands out an idle connection when it has one and otherwise dials, so a refused
connection is an immediate error (and the message is spooled at once). psycopg-pool's regular pool
instead makes a caller wait for a background reconnect. So: an idle pooled connection is used when
there is one; otherwise the caller dials its own connection for that unit of work, which fails at once
when the database is unreachable, while the pool refills in the background.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

# courier's backendTimeout bounds every DB operation at 20 s
BACKEND_TIMEOUT_S = 20.0
CONNECT_TIMEOUT_S = 10
# kept open so a loaded courier rarely dials; work beyond them dials its own connection
POOLED_CONNECTIONS = 12
POOLED_WAIT_S = 0.2


class Database:
    def __init__(self, url: str, max_size: int = 16) -> None:
        self._url = url
        self._kwargs: dict[str, Any] = {
            "autocommit": True,
            "row_factory": dict_row,
            "connect_timeout": CONNECT_TIMEOUT_S,
            "application_name": "courier",
        }
        self._pool: AsyncConnectionPool[AsyncConnection[DictRow]] = AsyncConnectionPool(
            url,
            min_size=min(POOLED_CONNECTIONS, max_size),
            max_size=max_size,
            timeout=POOLED_WAIT_S,
            # a connection broken while idle (DB restart, failover) is dropped at checkout, as Go's
            # database/sql retries a bad connection on a fresh one
            check=AsyncConnectionPool.check_connection,
            open=False,
            kwargs=self._kwargs,
        )

    async def open(self) -> None:
        await self._pool.open(wait=False)

    async def close(self) -> None:
        await self._pool.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection[DictRow]]:
        pooled: AsyncConnection[DictRow] | None = None
        if self._pool.get_stats().get("pool_available", 0) > 0:
            try:
                pooled = await self._pool.getconn()
            except PoolTimeout:
                pooled = None
        if pooled is not None:
            try:
                yield pooled
            finally:
                await self._pool.putconn(pooled)
            return
        dialed = await AsyncConnection.connect(self._url, **self._kwargs)
        try:
            yield dialed
        finally:
            await dialed.close()

    async def ping(self) -> None:
        async with self.connection() as conn:
            await conn.execute("SELECT 1")
