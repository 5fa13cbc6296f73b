"""Courier's side of the outgoing message queue in Redis.

Layout (as courier v9 and mailroom use it): `msgs:active` is a sorted set of queue names scored by
the number of workers busy on each (`msgs:<channel uuid>|<tps>`); each queue has a high priority
`/1` and a bulk `/0` sorted set of JSON arrays of messages scored by due time. A pop takes the
least-busy queue, enforces its tps with a per-second counter, prefers `/1`, hands out the first
message of the array and puts the rest back on `/1`, due a few seconds later. Queues that are
throttled or hold only future work are parked in `msgs:throttled` / `msgs:future` and returned to
`msgs:active` every second. Nothing tracks popped messages: a worker that dies loses its message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

log = logging.getLogger("courier.queue")

QUEUE_TYPE = "msgs"
EMPTY = "empty"
RETRY = "retry"

# ARGV: now (epoch seconds), requeue delay (seconds); returns {queue or "empty"/"retry", message JSON}
_POP = """
local now = tonumber(ARGV[1])
local active = 'msgs:active'
local best = redis.call('ZRANGE', active, 0, 0, 'WITHSCORES')
if #best == 0 then return {'empty', ''} end
local queue, busy = best[1], best[2]

local bar = string.find(queue, '|', 1, true)
local tps = 0
if bar then tps = tonumber(string.sub(queue, bar + 1)) or 0 end

local second_key = queue .. ':tps:' .. math.floor(now)
if tps > 0 then
  local used = tonumber(redis.call('GET', second_key) or '0')
  if used >= tps then
    redis.call('ZINCRBY', 'msgs:throttled', busy, queue)
    redis.call('ZREM', active, queue)
    return {'retry', ''}
  end
end

local function head(key)
  local found = redis.call('ZRANGEBYSCORE', key, '-inf', '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  if #found == 0 then return nil, nil end
  return found[1], tonumber(found[2])
end

local source = queue .. '/1'
local value, due = head(source)
local only_future = false
if value and due > now then
  only_future = true
  value = nil
end
if not value then
  local bulk_value, bulk_due = head(queue .. '/0')
  if bulk_value then
    if bulk_due > now then
      only_future = true
    else
      value, source, only_future = bulk_value, queue .. '/0', false
    end
  end
end

if value then
  redis.call('ZREM', source, value)
  redis.call('ZINCRBY', active, 1, queue)
  local batch = cjson.decode(value)
  local first = table.remove(batch, 1)
  if tps > 0 then
    redis.call('INCR', second_key)
    redis.call('EXPIRE', second_key, 10)
  end
  if #batch > 0 then
    redis.call('ZADD', queue .. '/1', now + tonumber(ARGV[2]), cjson.encode(batch))
    redis.call('ZINCRBY', 'msgs:future', 0, queue)
  end
  return {queue, cjson.encode(first)}
end

if only_future then redis.call('ZINCRBY', 'msgs:future', 0, queue) end
redis.call('ZREM', active, queue)
return {'retry', ''}
"""

# ARGV: queue name; frees one worker slot of the queue, wherever the queue is parked
_COMPLETE = """
local throttled = redis.call('ZADD', 'msgs:throttled', 'XX', 'CH', 'INCR', -1, ARGV[1])
if not throttled then
  local busy = tonumber(redis.call('ZINCRBY', 'msgs:active', -1, ARGV[1]))
  if busy < 0 then redis.call('ZADD', 'msgs:active', 0, ARGV[1]) end
end
return 1
"""

_DETHROTTLE = """
for _, parked in ipairs({'msgs:throttled', 'msgs:future'}) do
  local members = redis.call('ZRANGE', parked, 0, -1, 'WITHSCORES')
  for i = 1, #members, 2 do
    redis.call('ZINCRBY', 'msgs:active', members[i + 1], members[i])
  end
  redis.call('DEL', parked)
end
return 1
"""


@dataclass(frozen=True)
class Popped:
    queue: str
    payload: dict[str, Any]


class OutgoingQueue:
    def __init__(self, redis: Redis, requeue_delay_s: float) -> None:
        self._redis = redis
        self._requeue_delay_s = requeue_delay_s
        self._pop = redis.register_script(_POP)
        self._complete = redis.register_script(_COMPLETE)
        self._dethrottle = redis.register_script(_DETHROTTLE)

    async def pop(self) -> Popped | None:
        """The next due message of the least busy queue, or None when nothing is due."""
        while True:
            token, value = await self._pop(keys=[], args=[f"{time.time():.6f}", self._requeue_delay_s])
            token = token.decode() if isinstance(token, bytes) else str(token)
            if token == EMPTY:
                return None
            if token == RETRY:
                continue
            text = value.decode() if isinstance(value, bytes) else str(value)
            try:
                payload = json.loads(text)
            except ValueError:
                await self.complete(token)
                raise ValueError(f"unable to unmarshal message: {text}") from None
            return Popped(queue=token, payload=payload)

    async def complete(self, queue: str) -> None:
        await self._complete(keys=[], args=[queue])

    async def dethrottle_forever(self, stopping: asyncio.Event) -> None:
        """Every second, on the second, give throttled and future queues back to the workers."""
        while not stopping.is_set():
            delay = 1.0 - (time.time() % 1.0)
            try:
                await asyncio.wait_for(stopping.wait(), timeout=delay)
                return
            except TimeoutError:
                pass
            try:
                await self._dethrottle(keys=[], args=[])
            except Exception as exc:
                log.error("error dethrottling: %s", exc)
