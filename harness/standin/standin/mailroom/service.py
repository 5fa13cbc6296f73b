"""Mailroom put together: pools, foremen, crons and the web server, with a graceful stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from standin.common.switches import Switches
from standin.mailroom.assets import ORG_CACHE_TTL, AssetCache, OrgAssets
from standin.mailroom.config import MailroomConfig
from standin.mailroom.courier_queue import CourierQueue
from standin.mailroom.crons import mailroom_crons, run_cron_forever
from standin.mailroom.dbpool import DbPool, DialingPool
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
REDIS_CONNECT_TIMEOUT = 30.0
DB_PING_TIMEOUT = 1.0  # db.PingContext's context at start (mailroom.go: openAndCheckDBConnection)


class RedisUnreachable(RuntimeError):
    """Redis did not answer at start: real v9.2.2 panics at the first `rt.RP.Get()` and exits."""


class UnknownTask(ValueError):
    pass


class AssetsUnavailable(RuntimeError):
    pass


TaskFunc = Callable[[Runtime, int, dict[str, Any], OrgAssets | None], Awaitable[None]]

_PERFORMERS: dict[str, TaskFunc] = {
    HANDLE_CONTACT_EVENT: handle_contact_event,
    START_FLOW: start_flow,
    START_FLOW_BATCH: start_flow_batch,
}


def _pool(url: str, size: int, switches: Switches) -> DbPool:
    if not switches["db_pool_backoff"]:
        return DialingPool(url, max_open=size, connect_timeout=DB_CONNECT_TIMEOUT)
    return AsyncConnectionPool(
        url,
        min_size=1,
        max_size=size,
        open=False,
        timeout=DB_POOL_WAIT,
        kwargs={"autocommit": True, "connect_timeout": DB_CONNECT_TIMEOUT},
        check=AsyncConnectionPool.check_connection,
        name="mailroom",
    )


def _redis(url: str, switches: Switches) -> Redis:
    read_timeout = float(switches["redis_socket_timeout_s"])
    if read_timeout > 0:  # the stand-in before issue 9
        return Redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=5,
            socket_timeout=read_timeout,
            health_check_interval=30,
        )
    # redigo's Dial defaults: 30 s to connect, then no deadline on any command
    return Redis.from_url(url, decode_responses=True, socket_connect_timeout=REDIS_CONNECT_TIMEOUT)


async def create_runtime(config: MailroomConfig, switches: Switches) -> Runtime:
    """Pools and clients, opened without waiting: a database down at start is only logged, as real."""
    db = _pool(config.db, config.db_pool_size, switches)
    readonly = _pool(config.readonly_db, config.db_pool_size, switches) if config.readonly_db else db
    await db.open(wait=False)
    if readonly is not db:
        await readonly.open(wait=False)
    redis = _redis(config.redis, switches)
    return Runtime(
        config=config,
        switches=switches,
        db=db,
        readonly_db=readonly,
        redis=redis,
        handler_queue=FairSortedQueue(redis, "handler"),
        batch_queue=FairSortedQueue(redis, "batch"),
        courier=CourierQueue(redis),
        assets=AssetCache(ORG_CACHE_TTL if switches["assets_before_lock"] else None),
        search=ContactSearch(config.elastic, nil_client_at_start=bool(switches["es_nil_client_at_start"])),
        post_commit_failures=int(switches["post_commit_failures"]),
    )


async def _ping_db(db: DbPool) -> None:
    async with db.connection() as conn:
        await conn.execute("SELECT 1")


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
        redis_ok = await self._log_dependencies(rt)
        if not redis_ok and self.switches["exit_without_redis"]:
            await close_runtime(rt)
            self.rt = None
            raise RedisUnreachable("redis not reachable at start: exiting, as mailroom v9.2.2 panics on a nil pool")
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

    async def _log_dependencies(self, rt: Runtime) -> bool:
        """Log what answers, as real start-up does; True when Redis answered."""
        try:
            await asyncio.wait_for(_ping_db(rt.db), timeout=DB_PING_TIMEOUT)
            log.info("db ok")
        except Exception as exc:
            log.error("db not reachable: %s", exc)
        try:
            await rt.redis.ping()
            log.info("redis ok")
            return True
        except Exception as exc:
            log.error("redis not reachable: %s", exc)
            return False

    async def _perform(self, task: QueuedTask) -> None:
        assert self.rt is not None
        perform = _PERFORMERS.get(task.type)
        if perform is None:
            raise UnknownTask(f"unknown task type {task.type!r}")
        oa = None
        if self.switches["assets_before_lock"]:
            # tasks.Perform (v9.1.27+): before the task runs, so a failure leaves its events unpopped
            try:
                oa = await self.rt.assets.for_task(self.rt.db, task.org_id)
            except Exception as exc:
                raise AssetsUnavailable(f"error loading org assets: {exc}") from exc
        await perform(self.rt, task.org_id, task.task, oa)

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
