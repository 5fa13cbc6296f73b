"""Queueing an outgoing message to courier exactly as mailroom's msgio does (mailroom v9).

Only for the switch `api_send_through_mailroom` off (the stand-in before issue 9, no real version): the web
then sends `POST messages.json` itself instead of calling mailroom's `/mr/msg/send` over HTTP, so it needs
mailroom's half of the courier contract: one Lua call that adds a JSON array of one contact's
messages to `msgs:<channel_uuid>|<tps>/<priority>` scored by epoch seconds, and marks the queue active in
`msgs:active` unless this second's TPS budget is spent (courier re-activates it then).
"""

from __future__ import annotations

import json
import time
from typing import Any

from temba.mailroom.queue import format_datetime
from temba.msgs.models import Msg
from temba.redisconn import get_redis

BULK_PRIORITY = 0
HIGH_PRIORITY = 1
DEFAULT_TPS = 10  # mailroom reads channels with COALESCE(tps, 10)

# Same semantics as mailroom's queuePushScript, written for this stand-in.
PUSH_SCRIPT = """
local queue_type, queue_name, tps, priority, items, epoch_secs =
    KEYS[1], KEYS[2], tonumber(KEYS[3]), KEYS[4], KEYS[5], KEYS[6]
local queue_key = queue_type .. ":" .. queue_name .. "|" .. tps
redis.call("ZADD", queue_key .. "/" .. priority, epoch_secs, items)
local current = -1
if tps > 0 then
    current = tonumber(redis.call("GET", queue_key .. ":tps:" .. math.floor(epoch_secs)))
end
if not current or current < tps then
    redis.call("ZINCRBY", queue_type .. ":active", 0, queue_key)
    return 1
end
return 0
"""


def courier_msg(msg: Msg, urn_identity: str, channel_uuid: str) -> dict[str, Any]:
    """One message as courier expects it in its queue (docs/architecture.md plus mailroom's own fields)."""
    return {
        "id": msg.id,
        "uuid": str(msg.uuid),
        "org_id": msg.org_id,
        "origin": "chat",
        "text": msg.text,
        "high_priority": bool(msg.high_priority),
        "tps_cost": 1,
        "created_on": format_datetime(msg.created_on),
        "queued_on": format_datetime(msg.queued_on or msg.created_on),
        "channel_id": msg.channel_id,
        "channel_uuid": channel_uuid,
        "contact_id": msg.contact_id,
        "contact_urn_id": msg.contact_urn_id,
        "urn": urn_identity,
        "error_count": msg.error_count,
    }


def queue_key(channel_uuid: str, tps: int | None) -> str:
    return f"msgs:{channel_uuid}|{tps if tps is not None else DEFAULT_TPS}"


def push_to_courier(
    msgs: list[dict[str, Any]], channel_uuid: str, tps: int | None, high_priority: bool
) -> None:
    """Push one contact's batch of courier messages; raises redis errors to the caller."""
    epoch_secs = f"{time.time():.6f}"
    priority = HIGH_PRIORITY if high_priority else BULK_PRIORITY
    effective_tps = tps if tps is not None else DEFAULT_TPS
    get_redis().eval(
        PUSH_SCRIPT, 6, "msgs", channel_uuid, str(effective_tps), str(priority), json.dumps(msgs), epoch_secs
    )
