"""Mailroom's fair sorted task queues (`handler`, `batch`) on Redis, as real v9 lays them out.

Each org has a zset `<base>:<org_id>` of task JSON scored by epoch seconds plus a priority offset, and
`<base>:active` counts the workers busy on each org. A pop takes the org with the fewest busy workers,
atomically in Lua. There is no acknowledgement: once popped, a task lives only in the worker's memory.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis

HIGH_PRIORITY = -10_000_000
DEFAULT_PRIORITY = 0
LOW_PRIORITY = 10_000_000

# KEYS[1] active set; ARGV[1] queue base. Returns {org, task}, {"empty"} or {"retry"} (an org listed as
# active whose queue turned out empty was dropped from the active set; the caller pops again).
_POP_LUA = """
local first = redis.call("ZRANGE", KEYS[1], 0, 0)
local owner = first[1]
if not owner then
  return {"empty", ""}
end
local popped = redis.call("ZPOPMIN", ARGV[1] .. ":" .. owner)
if popped[1] then
  redis.call("ZINCRBY", KEYS[1], 1, owner)
  return {owner, popped[1]}
end
redis.call("ZREM", KEYS[1], owner)
return {"retry", ""}
"""

# KEYS[1] active set; ARGV[1] org: one worker fewer on that org, never below zero.
_DONE_LUA = """
local busy = tonumber(redis.call("ZINCRBY", KEYS[1], -1, ARGV[1]))
if busy < 0 then
  redis.call("ZADD", KEYS[1], 0, ARGV[1])
end
return busy
"""

# KEYS[1] active set; ARGV[1] queue base: the total of queued tasks over every active org.
_SIZE_LUA = """
local owners = redis.call("ZRANGE", KEYS[1], 0, -1)
local total = 0
for i = 1, #owners do
  total = total + redis.call("ZCARD", ARGV[1] .. ":" .. owners[i])
end
return total
"""


def iso_now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class QueuedTask:
    org_id: int
    type: str
    task: dict[str, Any]
    queued_on: str
    raw: str


class FairSortedQueue:
    def __init__(self, redis: Redis, base: str) -> None:
        self.base = base
        self._redis = redis
        self._pop = redis.register_script(_POP_LUA)
        self._done = redis.register_script(_DONE_LUA)
        self._size = redis.register_script(_SIZE_LUA)

    @property
    def active_key(self) -> str:
        return f"{self.base}:active"

    def queue_key(self, org_id: int) -> str:
        return f"{self.base}:{org_id}"

    @staticmethod
    def encode(org_id: int, task_type: str, task: dict[str, Any]) -> str:
        return json.dumps({"type": task_type, "org_id": org_id, "task": task, "queued_on": iso_now()})

    async def push(self, org_id: int, task_type: str, task: dict[str, Any], priority: int = DEFAULT_PRIORITY) -> None:
        score = time.time() + priority
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(self.queue_key(org_id), {self.encode(org_id, task_type, task): score})
            pipe.zincrby(self.active_key, 0, str(org_id))
            await pipe.execute()

    async def pop(self) -> QueuedTask | None:
        while True:
            owner, raw = await self._pop(keys=[self.active_key], args=[self.base])
            owner = owner.decode() if isinstance(owner, bytes) else owner
            raw = raw.decode() if isinstance(raw, bytes) else raw
            if owner == "empty":
                return None
            if owner == "retry":
                continue
            org_id = int(owner)
            try:
                payload = json.loads(raw)
                return QueuedTask(
                    org_id=org_id,
                    type=str(payload["type"]),
                    task=dict(payload.get("task") or {}),
                    queued_on=str(payload.get("queued_on", "")),
                    raw=raw,
                )
            except (ValueError, KeyError, TypeError):
                # an unreadable task is dropped, as real mailroom does after failing to decode it
                await self.done(org_id)
                raise MalformedTask(self.base, org_id, raw) from None

    async def done(self, org_id: int) -> None:
        await self._done(keys=[self.active_key], args=[str(org_id)])

    async def size(self) -> int:
        return int(await self._size(keys=[self.active_key], args=[self.base]))


class MalformedTask(ValueError):
    def __init__(self, base: str, org_id: int, raw: str) -> None:
        super().__init__(f"{base}:{org_id}: task is not JSON with a 'type': {raw[:200]!r}")
