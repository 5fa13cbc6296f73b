"""The `msgs_sent_<date>` sets: ids courier has wired, checked before every send (today and yesterday)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

SET_TTL_S = 60 * 60 * 24 * 2


def sent_set_key(moment: datetime) -> str:
    return "msgs_sent_" + moment.astimezone(UTC).strftime("%Y_%m_%d")


def _today_and_yesterday() -> tuple[str, str]:
    now = datetime.now(UTC)
    return sent_set_key(now), sent_set_key(now - timedelta(days=1))


class SentGuard:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def was_sent(self, msg_id: int) -> bool:
        today, yesterday = _today_and_yesterday()
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.sismember(today, str(msg_id))
            pipe.sismember(yesterday, str(msg_id))
            found = await pipe.execute()
        return any(bool(value) for value in found)

    async def mark_sent(self, msg_id: int) -> None:
        today, _ = _today_and_yesterday()
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.sadd(today, str(msg_id))
            pipe.expire(today, SET_TTL_S)
            await pipe.execute()

    async def clear(self, msg_id: int) -> None:
        today, yesterday = _today_and_yesterday()
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.srem(today, str(msg_id))
            pipe.srem(yesterday, str(msg_id))
            await pipe.execute()
