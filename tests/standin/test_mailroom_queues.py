"""Mailroom stand-in in-process: the fair queue's Lua and the retry_msgs cron's conditions."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import psycopg
import pytest
import redis
from standin.mailroom.config import load_config
from standin.mailroom.crons import retry_pending_messages
from standin.mailroom.queues import HIGH_PRIORITY, FairSortedQueue
from standin.mailroom.runtime import Runtime
from standin.mailroom.service import close_runtime, create_runtime
from standin.mailroom.switches import load_mailroom_switches
from test_mailroom_support import (
    FAVORITES,
    db_fixture,  # noqa: F401 - fixture
    migrated_pg_fixture,  # noqa: F401 - fixture
    rds_fixture,  # noqa: F401 - fixture
    receive,
    seed_org,
)

T = TypeVar("T")


def run_with_runtime(
    pg: str,
    redis_url: str,
    body: Callable[[Runtime], Awaitable[T]],
    switches: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> T:
    async def main() -> T:
        config = load_config(
            {"MAILROOM_DB": pg, "MAILROOM_REDIS": redis_url, "MAILROOM_DB_POOL_SIZE": "2", **(env or {})}
        )
        rt = await create_runtime(config, load_mailroom_switches(json.dumps(switches or {})))
        try:
            return await body(rt)
        finally:
            await close_runtime(rt)

    return asyncio.run(main())


def test_pop_takes_the_org_with_fewest_busy_workers(redis_url: str, rds: redis.Redis) -> None:
    async def body() -> list[Any]:
        from redis.asyncio import Redis

        client = Redis.from_url(redis_url, decode_responses=True)
        queue = FairSortedQueue(client, "handler")
        await queue.push(1, "t", {"n": "org1-a"})
        await queue.push(1, "t", {"n": "org1-b"})
        await queue.push(2, "t", {"n": "org2-a"})
        first = await queue.pop()  # both orgs idle: lowest member wins
        second = await queue.pop()  # org 1 is busy now: org 2 goes first
        size_while_busy = await queue.size()
        await queue.done(1)
        await queue.done(2)
        third = await queue.pop()
        empty = await queue.pop()
        await queue.done(1)
        await queue.done(1)  # one too many: never below zero
        busy = await client.zscore("handler:active", "1")
        await client.aclose()
        return [first, second, size_while_busy, third, empty, busy]

    first, second, size_while_busy, third, empty, busy = asyncio.run(body())
    assert (first.org_id, first.task["n"]) == (1, "org1-a")
    assert (second.org_id, second.task["n"]) == (2, "org2-a")
    assert size_while_busy == 1
    assert third.task["n"] == "org1-b"
    assert empty is None
    assert busy == 0.0
    assert rds.zrange("handler:active", 0, -1) == ["1"], "org 2's empty queue was dropped from the active set"


def test_priority_goes_before_time(redis_url: str, rds: redis.Redis) -> None:
    async def body() -> list[str]:
        from redis.asyncio import Redis

        client = Redis.from_url(redis_url, decode_responses=True)
        queue = FairSortedQueue(client, "batch")
        await queue.push(7, "t", {"n": "default"})
        await queue.push(7, "t", {"n": "high"}, HIGH_PRIORITY)
        popped = []
        for _ in range(2):
            task = await queue.pop()
            assert task is not None
            popped.append(task.task["n"])
            await queue.done(7)
        await client.aclose()
        return popped

    assert asyncio.run(body()) == ["high", "default"]


@pytest.fixture()
def lost_message(db: psycopg.Connection[Any]) -> Any:
    if not FAVORITES.exists():
        pytest.skip(f"{FAVORITES} is not present beside the checkout")
    seed = seed_org(db, [FAVORITES], {"Favorites": ["favorites"]})
    old = datetime.now(UTC) - timedelta(minutes=6)
    young = receive(db, None, seed, "tel:+250788000020", "too young to retry")
    lost = receive(db, None, seed, "tel:+250788000021", "favorites", created_on=old)
    return seed, lost, young


def _busy_handler_queue(rds: redis.Redis) -> None:
    rds.zadd("handler:99", {json.dumps({"type": "handle_contact_event", "task": {"contact_id": 1}}): 1.0})
    rds.zincrby("handler:active", 0, "99")


@pytest.mark.parametrize(
    ("switches", "env", "queue_busy", "expect_retry"),
    [
        ({}, {}, False, True),  # real v9: queue empty, P older than 5 min → requeued
        ({}, {}, True, False),  # real v9: anything in the handler queue → nothing
        ({"retry_pending_only_when_queue_empty": False}, {}, True, True),
        ({"retry_pending": False}, {}, False, False),  # v10.1.29+: cron removed
        ({}, {"MAILROOM_RETRY_PENDING_MESSAGES": "false"}, False, False),  # the real env switch
    ],
)
def test_retry_msgs_conditions(
    migrated_pg: str,
    redis_url: str,
    rds: redis.Redis,
    lost_message: Any,
    switches: dict[str, Any],
    env: dict[str, str],
    queue_busy: bool,
    expect_retry: bool,
) -> None:
    seed, lost, young = lost_message
    if queue_busy:
        _busy_handler_queue(rds)
    result = run_with_runtime(migrated_pg, redis_url, retry_pending_messages, switches, env)
    events = [json.loads(e) for e in rds.lrange(f"c:{seed.org_id}:{lost.contact_id}", 0, -1)]
    if expect_retry:
        assert result == {"retried": 1}
        assert [(e["type"], e["task"]["msg_id"], e["task"]["text"]) for e in events] == [
            ("msg_event", lost.msg_id, "favorites")
        ]
        assert rds.zcard(f"handler:{seed.org_id}") == 1
        assert rds.llen(f"c:{seed.org_id}:{young.contact_id}") == 0, "a message under 5 min old is left alone"
    else:
        assert events == []
        assert rds.zcard(f"handler:{seed.org_id}") == 0


def test_retry_msgs_requeues_a_message_once_per_hour(
    migrated_pg: str, redis_url: str, rds: redis.Redis, lost_message: Any
) -> None:
    seed, lost, _young = lost_message

    async def twice(rt: Runtime) -> list[dict[str, Any]]:
        first = await retry_pending_messages(rt)
        await rt.redis.delete(f"handler:{seed.org_id}")  # as if a worker took the task and lost it again
        second = await retry_pending_messages(rt)
        return [first, second]

    assert run_with_runtime(migrated_pg, redis_url, twice) == [{"retried": 1}, {"retried": 0}]
    assert rds.llen(f"c:{seed.org_id}:{lost.contact_id}") == 1


def test_retry_msgs_age_is_configurable_for_tests(
    migrated_pg: str, redis_url: str, rds: redis.Redis, lost_message: Any
) -> None:
    seed, _lost, young = lost_message
    result = run_with_runtime(
        migrated_pg, redis_url, retry_pending_messages, env={"MAILROOM_STANDIN_RETRY_PENDING_AGE": "0.001"}
    )
    assert result == {"retried": 2}
    assert rds.llen(f"c:{seed.org_id}:{young.contact_id}") == 1
