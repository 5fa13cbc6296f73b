"""The hand-over of an inbound message to mailroom: one MULTI on the shared Redis."""

from __future__ import annotations

import json
import time
from typing import Any

from redis.asyncio import Redis

from .timefmt import rfc3339, utcnow

# handler tasks from courier are scored this far in the past so they jump ahead of batch work
HIGH_PRIORITY_OFFSET_S = 10_000_000


def contact_queue_key(org_id: int, contact_id: int) -> str:
    return f"c:{org_id}:{contact_id}"


async def queue_msg_event(redis: Redis, org_id: int, contact_id: int, task: dict[str, Any]) -> None:
    """RPUSH the msg_event onto the contact's queue and schedule handle_contact_event for the org."""
    queued_on = rfc3339(utcnow())
    event = {"type": "msg_event", "org_id": org_id, "task": task, "queued_on": queued_on}
    handle = {
        "type": "handle_contact_event",
        "org_id": org_id,
        "task": {"contact_id": contact_id},
        "queued_on": queued_on,
    }
    score = f"{time.time() - HIGH_PRIORITY_OFFSET_S:.5f}"
    async with redis.pipeline(transaction=True) as pipe:
        pipe.rpush(contact_queue_key(org_id, contact_id), json.dumps(event))
        pipe.execute_command("ZADD", f"handler:{org_id}", score, json.dumps(handle))
        pipe.zincrby("handler:active", 0, str(org_id))
        await pipe.execute()
