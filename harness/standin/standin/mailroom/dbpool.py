"""Database connections handed out as Go's database/sql does for real mailroom v9.2.2 (lib/pq).

A query takes an idle connection or dials a new one at once: nothing reconnects in the background and
nothing backs off, so in an outage a query fails as soon as its dial fails, and the first query after
the outage succeeds. Up to `max_open` connections (callers wait beyond that), `max_idle` kept idle,
each closed once older than `max_lifetime` (mailroom.go: openAndCheckDBConnection).

An idle connection the server has closed (a failover behind the load balancer) is dropped at checkout,
as database/sql drops a connection lib/pq reports as bad and retries on a new one. That check reads the
socket without a round trip, so an established connection to a black-holed server is still used and
its query blocks, as in real v9.2.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from psycopg import AsyncConnection
from psycopg.pq import ConnStatus, TransactionStatus

MAX_IDLE = 8
MAX_LIFETIME = 30 * 60.0


class DbPool(Protocol):
    """What mailroom's code needs of a pool: this module's and psycopg_pool's (the older switch) both fit."""

    def connection(self, timeout: float | None = None) -> AbstractAsyncContextManager[AsyncConnection[Any]]: ...

    async def open(self, wait: bool = False) -> None: ...

    async def close(self) -> None: ...


@dataclass
class _Pooled:
    conn: AsyncConnection[Any]
    born: float


class DialingPool:
    def __init__(
        self,
        conninfo: str,
        max_open: int,
        connect_timeout: float,
        max_idle: int = MAX_IDLE,
        max_lifetime: float = MAX_LIFETIME,
    ) -> None:
        self.conninfo = conninfo
        self.max_open = max_open
        self.max_idle = max_idle
        self.max_lifetime = max_lifetime
        self._connect_timeout = connect_timeout
        self._slots = asyncio.Semaphore(max_open)
        self._idle: list[_Pooled] = []
        self._closed = False

    async def open(self, wait: bool = False) -> None:
        """Nothing to open: database/sql dials on the first query."""

    @asynccontextmanager
    async def connection(self, timeout: float | None = None) -> AsyncIterator[AsyncConnection[Any]]:
        """An autocommit connection; `timeout` bounds only the wait for a free slot when all are open."""
        if timeout is None:
            await self._slots.acquire()
        else:
            await asyncio.wait_for(self._slots.acquire(), timeout)
        try:
            pooled = await self._checkout()
        except BaseException:
            self._slots.release()
            raise
        try:
            yield pooled.conn
        finally:
            try:
                await self._checkin(pooled)
            finally:
                self._slots.release()

    async def _checkout(self) -> _Pooled:
        if self._closed:
            raise RuntimeError("database pool is closed")
        now = time.monotonic()
        while self._idle:
            pooled = self._idle.pop()  # most recently used first, as database/sql
            if now - pooled.born < self.max_lifetime and _looks_alive(pooled.conn):
                return pooled
            await _close_quietly(pooled.conn)
        conn = await AsyncConnection.connect(
            self.conninfo, autocommit=True, connect_timeout=max(1, round(self._connect_timeout))
        )
        return _Pooled(conn, time.monotonic())

    async def _checkin(self, pooled: _Pooled) -> None:
        conn = pooled.conn
        keep = (
            not self._closed
            and len(self._idle) < self.max_idle
            and time.monotonic() - pooled.born < self.max_lifetime
            and not conn.closed
            and not conn.broken
            and conn.info.transaction_status == TransactionStatus.IDLE
        )
        if keep:
            self._idle.append(pooled)
        else:
            await _close_quietly(conn)

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for pooled in idle:
            await _close_quietly(pooled.conn)


def _looks_alive(conn: AsyncConnection[Any]) -> bool:
    """False when the connection is known dead or the server sent something to an idle connection: on an
    idle session that is its goodbye (EOF, or a FATAL such as an administrator shutdown)."""
    if conn.closed or conn.broken or conn.pgconn.status != ConnStatus.OK:
        return False
    if conn.info.transaction_status != TransactionStatus.IDLE:
        return False
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


async def _close_quietly(conn: AsyncConnection[Any]) -> None:
    with contextlib.suppress(Exception):
        await conn.close()
