"""Courier stand-in's deadlines on Postgres work behave as lib/pq's context cancellation (fidelity row 22).

When a deadline passes, lib/pq v1.10.9 sends the server a cancel request and marks the connection bad, but
keeps waiting for the query's answer: a slow server cancels the query, a black-holed one never answers.
"""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest
from psycopg import errors
from standin.courier.db import Database, DeadlineExceeded
from test_courier_support import TcpRelay, relay_url


def _host_port(pg_url: str) -> tuple[str, int]:
    info = psycopg.conninfo.conninfo_to_dict(pg_url)
    return str(info.get("host") or "127.0.0.1"), int(info.get("port") or 5432)


def test_deadline_cancels_a_slow_query_on_the_server(pg_url: str) -> None:
    async def scenario() -> float:
        database = Database(pg_url, max_size=2)
        await database.open()
        try:
            started = time.monotonic()
            with pytest.raises((errors.QueryCanceled, DeadlineExceeded)):
                async with database.connection(deadline_s=1.0) as conn:
                    await conn.execute("SELECT pg_sleep(10)")
            return time.monotonic() - started
        finally:
            await database.close()

    assert asyncio.run(scenario()) < 6  # cancelled by the server, not left to run its 10 s


def test_deadline_does_not_unblock_a_query_sent_into_a_black_hole(pg_url: str) -> None:
    relay = TcpRelay(*_host_port(pg_url))

    async def work(database: Database) -> None:
        async with database.connection(deadline_s=1.0) as conn:
            relay.hold()
            await conn.execute("SELECT 1")

    async def scenario() -> None:
        database = Database(relay_url(pg_url, relay), max_size=2)
        await database.open()
        try:
            blocked = asyncio.create_task(work(database))
            done, _ = await asyncio.wait([blocked], timeout=4)
            assert not done  # the deadline passed 3 s ago: a cancel went out, the query still waits
            relay.heal()
            with pytest.raises((psycopg.OperationalError, DeadlineExceeded)):
                await asyncio.wait_for(blocked, timeout=10)
        finally:
            await database.close()

    try:
        asyncio.run(scenario())
    finally:
        relay.close()
