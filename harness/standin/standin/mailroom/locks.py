"""Redis locks with an expiry and an owner token, as mailroom uses for contacts and crons."""

from __future__ import annotations

import asyncio
import secrets
import time

from redis.asyncio import Redis

# Release only the lock we still own: after expiry another worker may hold it.
_RELEASE_LUA = """
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0
"""

# redisx v0.8.1 locker.go: Grab sleeps one second between two tries
DEFAULT_POLL = 1.0


class Locker:
    def __init__(self, redis: Redis, key: str, expiry: float, poll: float = DEFAULT_POLL) -> None:
        self.key = key
        self._redis = redis
        self._poll = poll
        self._expiry_ms = max(1, int(expiry * 1000))
        self._release = redis.register_script(_RELEASE_LUA)

    async def grab(self, wait: float) -> str | None:
        """The lock's token, or None if another owner held it for the whole `wait`."""
        token = secrets.token_hex(10)
        deadline = time.monotonic() + wait
        while True:
            if await self._redis.set(self.key, token, nx=True, px=self._expiry_ms):
                return token
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(self._poll)

    async def release(self, token: str) -> None:
        await self._release(keys=[self.key], args=[token])


def contact_lock_key(org_id: int, contact_id: int) -> str:
    return f"lock:c:{org_id}:{contact_id}"


def cron_lock_key(name: str) -> str:
    # the real name, "for historical reasons"
    return f"lock:{name}_lock"
