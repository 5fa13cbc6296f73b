"""Pushing outgoing messages onto courier's Redis queues (after the database commit).

Layout as real v9: `msgs:<channel_uuid>|<tps>/<1 high | 0 bulk>` zsets of JSON arrays holding one
contact's messages, scored by epoch seconds, and `msgs:active` listing queues with work, unless the
channel already used up this second's tps (courier adds it back when the second rolls over).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

BULK_PRIORITY = 0
HIGH_PRIORITY = 1

# KEYS: queue type, channel uuid, tps, priority, items JSON, epoch seconds
_PUSH_LUA = """
local base = KEYS[1] .. ":" .. KEYS[2] .. "|" .. KEYS[3]
local tps = tonumber(KEYS[3])
local epoch = KEYS[6]
redis.call("ZADD", base .. "/" .. KEYS[4], epoch, KEYS[5])
local used = -1
if tps > 0 then
  used = tonumber(redis.call("GET", base .. ":tps:" .. math.floor(tonumber(epoch))))
end
if not used or used < tps then
  redis.call("ZINCRBY", KEYS[1] .. ":active", 0, base)
  return 1
end
return 0
"""


@dataclass(frozen=True)
class OutgoingMsg:
    """An outgoing msgs_msg row as courier needs it."""

    id: int
    uuid: str
    org_id: int
    channel_id: int
    channel_uuid: str
    tps: int
    contact_id: int
    contact_urn_id: int
    urn: str
    text: str
    high_priority: bool
    error_count: int
    created_on: str
    queued_on: str
    flow_uuid: str | None = None
    flow_name: str | None = None
    session_id: int | None = None
    session_status: str | None = None
    # Only on a sprint's last message when its session waits with a timeout (mailroom v9.2.2
    # core/msgio/courier.go: NewCourierMsg): courier then restarts the timeout once this message is out.
    session_wait_started_on: str | None = None
    session_timeout: int | None = None

    def courier_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "uuid": self.uuid,
            "org_id": self.org_id,
            "channel_id": self.channel_id,
            "channel_uuid": self.channel_uuid,
            "contact_id": self.contact_id,
            "contact_urn_id": self.contact_urn_id,
            "urn": self.urn,
            "text": self.text,
            "high_priority": self.high_priority,
            "error_count": self.error_count,
            "created_on": self.created_on,
            "queued_on": self.queued_on,
            "origin": "flow" if self.flow_uuid else "chat",
            "tps_cost": 1,
        }
        if self.flow_uuid:
            body["flow"] = {"uuid": self.flow_uuid, "name": self.flow_name or ""}
        if self.session_id is not None:
            body["session_id"] = self.session_id
            body["session_status"] = self.session_status or ""
        if self.session_wait_started_on is not None and self.session_timeout:
            body["session_wait_started_on"] = self.session_wait_started_on
            body["session_timeout"] = self.session_timeout
        return body


class CourierQueue:
    def __init__(self, redis: Redis) -> None:
        self._push = redis.register_script(_PUSH_LUA)

    async def push_contact_batch(self, msgs: list[OutgoingMsg]) -> None:
        """Queue one contact's messages on one channel, split into runs of equal priority, in order."""
        if not msgs:
            return
        epoch = f"{time.time():.6f}"
        batch: list[OutgoingMsg] = []
        for msg in msgs:
            if batch and msg.high_priority != batch[0].high_priority:
                await self._push_batch(batch, epoch)
                batch = []
            batch.append(msg)
        await self._push_batch(batch, epoch)

    async def _push_batch(self, batch: list[OutgoingMsg], epoch: str) -> None:
        first = batch[0]
        priority = HIGH_PRIORITY if first.high_priority else BULK_PRIORITY
        items = json.dumps([m.courier_json() for m in batch])
        await self._push(keys=["msgs", first.channel_uuid, str(first.tps), str(priority), items, epoch])
