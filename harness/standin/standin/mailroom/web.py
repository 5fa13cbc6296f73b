"""Mailroom's HTTP server: `GET /mr/` answers 200 with the component and version, as real.

As mailroom v9.2.2 (web/server.go: handleIndex) the index touches neither the database nor Redis, so a
load balancer's check stays green through their outages. The older switch `health_pings_deps` adds what
it sees of them to the body (2 s each); the status stays 200 whatever they say.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from standin.mailroom.config import VERSION
from standin.mailroom.msg_send import add_msg_send_route
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

    async def index(request: web.Request) -> web.Response:
        if not rt.switches["health_pings_deps"]:
            return web.json_response({"url": str(request.rel_url), "component": "mailroom", "version": VERSION})
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
    add_msg_send_route(app, rt)
    return app
