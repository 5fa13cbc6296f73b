"""Mailroom's HTTP server: `GET /mr/` answers 200 with the component and version, as real.

The stand-in adds what it sees of the database and Redis to the body; the status stays 200 whatever
they say (real mailroom's index does not check them), so a load balancer keeps it in rotation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from standin.mailroom.config import VERSION
from standin.mailroom.runtime import Runtime

PING_TIMEOUT = 2.0


async def _check(probe: Callable[[], Awaitable[Any]]) -> str:
    try:
        await asyncio.wait_for(probe(), timeout=PING_TIMEOUT)
        return "ok"
    except Exception as exc:  # any failure is reported, not raised
        return f"error: {type(exc).__name__}: {exc}"[:200]


def build_app(rt: Runtime) -> web.Application:
    async def ping_db() -> None:
        async with rt.db.connection(timeout=PING_TIMEOUT) as conn:
            await conn.execute("SELECT 1")

    async def index(_request: web.Request) -> web.Response:
        db, redis = await asyncio.gather(_check(ping_db), _check(rt.redis.ping))
        return web.json_response(
            {
                "component": "mailroom",
                "version": VERSION,
                "db": db,
                "redis": redis,
                "elastic": "ok" if rt.search.available else "no client",
            }
        )

    app = web.Application()
    app.router.add_get("/mr/", index)
    app.router.add_get("/mr", index)
    return app
