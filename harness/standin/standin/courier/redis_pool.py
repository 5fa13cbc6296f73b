"""Courier's Redis client, shaped like the pool courier v9.2.1 gets from redisx v0.8.1 `NewPool`.

redisx dials with redigo's `redis.Dial` and no options: a 30 s connect timeout, no read or write
deadline, no retry of a failed dial or command. The pool holds at most 32 connections and makes
callers wait for one (`Wait: true`), so once 32 commands are stuck on a black-holed Redis every
other caller queues behind them. A reply that never comes therefore blocks its caller until the
connection is closed by the other side.
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis

MAX_ACTIVE = 32


def open_redis(url: str, read_timeout_s: float, connect_timeout_s: float) -> Redis:
    """A lazily connecting client; `read_timeout_s` 0 means no read deadline (v9.2.1)."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_ACTIVE,
        timeout=None,
        socket_timeout=read_timeout_s if read_timeout_s > 0 else None,
        socket_connect_timeout=connect_timeout_s if connect_timeout_s > 0 else None,
    )
    return Redis.from_pool(pool)
