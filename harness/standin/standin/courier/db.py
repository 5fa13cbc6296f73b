"""Postgres access with Go database/sql's failure behaviour: reuse idle connections, fail fast when down.

courier's sqlx pool hands out an idle connection when it has one and otherwise dials, so a refused
connection is an immediate error (and the message is spooled at once). psycopg-pool's regular pool
instead makes a caller wait for a background reconnect. So: an idle pooled connection is used when
there is one; otherwise the caller dials its own connection for that unit of work, which fails at once
when the database is unreachable, while the pool refills in the background.

A deadline (courier's context timeouts) works as lib/pq v1.10.9's `watchCancel`: when it passes, a cancel
request is sent to the server and the connection is marked bad, but the query goes on waiting for the
server's answer. A slow server cancels the query and the work fails; a black-holed one never answers, so
the work blocks until the connection is closed. Cancelling the awaiting task instead would make psycopg
give up after its own 10 s (3.3) or wait forever (3.2), depending on the installed version.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

log = logging.getLogger("courier.db")

# courier's backendTimeout bounds every DB operation at 20 s
BACKEND_TIMEOUT_S = 20.0
CONNECT_TIMEOUT_S = 10
# kept open so a loaded courier rarely dials; work beyond them dials its own connection
POOLED_CONNECTIONS = 12
POOLED_WAIT_S = 0.2
# lib/pq's watchCancelDialContextTimeout: how long the cancel request may take
CANCEL_TIMEOUT_S = 10.0


class DeadlineExceeded(TimeoutError):
    def __str__(self) -> str:
        return "context deadline exceeded"


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
        self._cancels: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        await self._pool.open(wait=False)

    async def close(self) -> None:
        await self._pool.close()

    @asynccontextmanager
    async def connection(self, deadline_s: float | None = None) -> AsyncIterator[AsyncConnection[DictRow]]:
        """A connection for one unit of work; with `deadline_s`, under lib/pq's context semantics."""
        loop = asyncio.get_running_loop()
        deadline = None if deadline_s is None else loop.time() + deadline_s
        async with self._checkout() as conn:
            if deadline is None:
                yield conn
                return
            if loop.time() >= deadline:  # database/sql starts no work for an expired context
                raise DeadlineExceeded()
            watch = loop.call_at(deadline, self._cancel_soon, conn)
            try:
                yield conn
            finally:
                watch.cancel()
                if loop.time() >= deadline:
                    await conn.close()  # marked bad, never handed out again
            if loop.time() >= deadline:
                raise DeadlineExceeded()

    def _cancel_soon(self, conn: AsyncConnection[DictRow]) -> None:
        task = asyncio.create_task(self._cancel(conn))
        self._cancels.add(task)
        task.add_done_callback(self._cancels.discard)

    @staticmethod
    async def _cancel(conn: AsyncConnection[DictRow]) -> None:
        try:
            await conn.cancel_safe(timeout=CANCEL_TIMEOUT_S)
        except Exception as exc:
            log.warning("cancelling a query past its deadline failed: %s", exc)

    @asynccontextmanager
    async def _checkout(self) -> AsyncIterator[AsyncConnection[DictRow]]:
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
