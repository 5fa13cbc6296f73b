"""Mailroom put together: pools, foremen, crons and the web server, with a graceful stop."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from standin.common.switches import Switches
from standin.mailroom.assets import AssetCache
from standin.mailroom.config import MailroomConfig
from standin.mailroom.courier_queue import CourierQueue
from standin.mailroom.crons import mailroom_crons, run_cron_forever
from standin.mailroom.handler import handle_contact_event
from standin.mailroom.queues import FairSortedQueue, QueuedTask
from standin.mailroom.runtime import HANDLE_CONTACT_EVENT, Runtime
from standin.mailroom.search import ContactSearch
from standin.mailroom.starts import START_FLOW, START_FLOW_BATCH, start_flow, start_flow_batch
from standin.mailroom.web import build_app
from standin.mailroom.workers import Foreman

log = logging.getLogger("mailroom")

DB_CONNECT_TIMEOUT = 5
DB_POOL_WAIT = 15.0


class UnknownTask(ValueError):
    pass


def _pool(url: str, size: int) -> AsyncConnectionPool[AsyncConnection[Any]]:
    return AsyncConnectionPool(
        url,
        min_size=1,
        max_size=size,
        open=False,
        timeout=DB_POOL_WAIT,
        kwargs={"autocommit": True, "connect_timeout": DB_CONNECT_TIMEOUT},
        # a connection broken by a failover is replaced before use, as database/sql retries a bad conn
        check=AsyncConnectionPool.check_connection,
        name="mailroom",
    )


async def create_runtime(config: MailroomConfig, switches: Switches) -> Runtime:
    """Pools and clients, opened without waiting: like real mailroom, a dependency down at start is only
    logged, and tasks fail until it is back."""
    db = _pool(config.db, config.db_pool_size)
    readonly = _pool(config.readonly_db, config.db_pool_size) if config.readonly_db else db
    await db.open(wait=False)
    if readonly is not db:
        await readonly.open(wait=False)
    redis = Redis.from_url(
        config.redis, decode_responses=True, socket_connect_timeout=5, socket_timeout=15, health_check_interval=30
    )
    return Runtime(
        config=config,
        switches=switches,
        db=db,
        readonly_db=readonly,
        redis=redis,
        handler_queue=FairSortedQueue(redis, "handler"),
        batch_queue=FairSortedQueue(redis, "batch"),
        courier=CourierQueue(redis),
        assets=AssetCache(),
        search=ContactSearch(config.elastic, nil_client_at_start=bool(switches["es_nil_client_at_start"])),
    )


async def close_runtime(rt: Runtime) -> None:
    await rt.redis.aclose()
    if rt.readonly_db is not rt.db:
        await rt.readonly_db.close()
    await rt.db.close()


class Mailroom:
    def __init__(self, config: MailroomConfig, switches: Switches) -> None:
        self.config = config
        self.switches = switches
        self._stopping = asyncio.Event()
        self._runners: list[asyncio.Task[None]] = []
        self._web: web.AppRunner | None = None
        self.rt: Runtime | None = None

    async def start(self) -> None:
        config = self.config
        self.rt = rt = await create_runtime(config, self.switches)
        await self._log_dependencies(rt)
        await rt.search.connect()

        handler = Foreman(rt.handler_queue, config.handler_workers, self._perform, config.idle_pop_sleep)
        batch = Foreman(rt.batch_queue, config.batch_workers, self._perform, config.idle_pop_sleep)
        self._runners = [
            asyncio.create_task(handler.run(self._stopping), name="handler-foreman"),
            asyncio.create_task(batch.run(self._stopping), name="batch-foreman"),
        ]
        for cron in mailroom_crons(rt):
            self._runners.append(asyncio.create_task(run_cron_forever(rt, cron, self._stopping), name=cron.name))

        self._web = web.AppRunner(build_app(rt), access_log=None)
        await self._web.setup()
        await web.TCPSite(self._web, config.address, config.port).start()
        log.info(
            "mailroom started on %s:%d (version switches=%s)", config.address, config.port, self.switches.as_dict()
        )

    async def _log_dependencies(self, rt: Runtime) -> None:
        try:
            async with rt.db.connection(timeout=2) as conn:
                await conn.execute("SELECT 1")
            log.info("db ok")
        except Exception as exc:
            log.error("db not reachable: %s", exc)
        try:
            await rt.redis.ping()
            log.info("redis ok")
        except Exception as exc:
            log.error("redis not reachable: %s", exc)

    async def _perform(self, task: QueuedTask) -> None:
        assert self.rt is not None
        if task.type == HANDLE_CONTACT_EVENT:
            await handle_contact_event(self.rt, task.org_id, task.task)
        elif task.type == START_FLOW:
            await start_flow(self.rt, task.org_id, task.task)
        elif task.type == START_FLOW_BATCH:
            await start_flow_batch(self.rt, task.org_id, task.task)
        else:
            raise UnknownTask(f"unknown task type {task.type!r}")

    async def stop(self) -> None:
        """Stop popping, let the tasks in hand finish, stop crons and the web server."""
        log.info("mailroom stopping")
        self._stopping.set()
        await asyncio.gather(*self._runners, return_exceptions=True)
        if self._web is not None:
            await self._web.cleanup()
        if self.rt is not None:
            await close_runtime(self.rt)
        log.info("mailroom stopped")
