"""The `seen-msgs` interval hash: recently received texts per channel and URN.

As redisx's IntervalHash: one Redis hash per interval, named `seen-msgs:<UTC time truncated to the
interval>`; a lookup reads the current and the previous interval, so a repeat is recognised for
one to two intervals. A send to the URN clears its entry.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime

from redis.asyncio import Redis

KEY_BASE = "seen-msgs"
INTERVALS = 2

_GET_SCRIPT = """
for _, key in ipairs(KEYS) do
  local value = redis.call('HGET', key, ARGV[1])
  if value then return value end
end
return false
"""


def text_hash(text: str, attachments: list[str] | None = None) -> str:
    payload = text + "|" + "|".join(attachments or [])
    return hashlib.sha1(payload.encode()).hexdigest()


class SeenMessages:
    def __init__(self, redis: Redis, interval_s: int) -> None:
        self._redis = redis
        self._interval_s = max(1, interval_s)
        self._get = redis.register_script(_GET_SCRIPT)

    def keys(self, now: float | None = None) -> list[str]:
        moment = time.time() if now is None else now
        keys = []
        for index in range(INTERVALS):
            start = (int(moment) // self._interval_s - index) * self._interval_s
            stamp = datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            keys.append(f"{KEY_BASE}:{stamp}")
        return keys

    @staticmethod
    def fingerprint(channel_uuid: str, urn_identity: str) -> str:
        return f"{channel_uuid}|{urn_identity}"

    async def previous_uuid(self, fingerprint: str, digest: str) -> str | None:
        """The uuid of the same text seen recently from this channel and URN, if any."""
        value = await self._get(keys=self.keys(), args=[fingerprint])
        if not value:
            return None
        text = value.decode() if isinstance(value, bytes) else str(value)
        previous_uuid, _, previous_digest = text.partition("|")
        return previous_uuid if previous_digest == digest else None

    async def record(self, fingerprint: str, msg_uuid: str, digest: str) -> None:
        key = self.keys()[0]
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, fingerprint, f"{msg_uuid}|{digest}")
            pipe.expire(key, INTERVALS * self._interval_s)
            await pipe.execute()

    async def clear(self, fingerprint: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            for key in self.keys():
                pipe.hdel(key, fingerprint)
            await pipe.execute()
