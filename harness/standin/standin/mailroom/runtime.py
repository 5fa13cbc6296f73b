"""Everything a mailroom task needs: settings, switches, database pools, Redis, queues, caches."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from standin.common.switches import Switches
from standin.mailroom.assets import AssetCache
from standin.mailroom.config import MailroomConfig
from standin.mailroom.courier_queue import CourierQueue, OutgoingMsg
from standin.mailroom.queues import DEFAULT_PRIORITY, FairSortedQueue, iso_now
from standin.mailroom.search import ContactSearch

log = logging.getLogger("mailroom")

HANDLE_CONTACT_EVENT = "handle_contact_event"


@dataclass
class Runtime:
    config: MailroomConfig
    switches: Switches
    db: AsyncConnectionPool[AsyncConnection[Any]]
    readonly_db: AsyncConnectionPool[AsyncConnection[Any]]
    redis: Redis
    handler_queue: FairSortedQueue
    batch_queue: FairSortedQueue
    courier: CourierQueue
    assets: AssetCache
    search: ContactSearch

    async def queue_contact_event(
        self,
        org_id: int,
        contact_id: int,
        event_type: str,
        task: dict[str, Any],
        front: bool = False,
        error_count: int = 0,
    ) -> None:
        """Put an event on the contact's list and a handle task for the contact on the handler queue."""
        payload: dict[str, Any] = {"type": event_type, "org_id": org_id, "task": task, "queued_on": iso_now()}
        if error_count:
            payload["error_count"] = error_count
        key = f"c:{org_id}:{contact_id}"
        if front:
            await self.redis.lpush(key, json.dumps(payload))
        else:
            await self.redis.rpush(key, json.dumps(payload))
        await self.handler_queue.push(org_id, HANDLE_CONTACT_EVENT, {"contact_id": contact_id}, DEFAULT_PRIORITY)

    async def send_to_courier(self, msgs: list[OutgoingMsg]) -> None:
        """After commit: queue the messages to courier; those that fail to queue are marked per switch."""
        by_contact_channel: dict[tuple[int, str], list[OutgoingMsg]] = {}
        for msg in msgs:
            by_contact_channel.setdefault((msg.contact_id, msg.channel_uuid), []).append(msg)
        failed: list[int] = []
        for (contact_id, channel_uuid), batch in by_contact_channel.items():
            try:
                await self.courier.push_contact_batch(batch)
            except Exception as exc:  # any Redis failure leaves these unqueued
                log.error(
                    "error queuing messages to courier: %s (contact_id=%s channel_uuid=%s)",
                    exc,
                    contact_id,
                    channel_uuid,
                )
                failed.extend(m.id for m in batch)
        if failed:
            await self.mark_for_requeuing(failed)

    async def mark_for_requeuing(self, msg_ids: list[int]) -> None:
        if self.switches["push_failure_status"] != "I":
            log.warning("switch push_failure_status=Q: %d unqueued messages left Q", len(msg_ids))
            return
        try:
            async with self.db.connection() as conn, conn.cursor() as cur:
                await cur.execute(
                    "UPDATE msgs_msg SET status = 'I', next_attempt = now() + make_interval(secs => %s), "
                    "modified_on = now() WHERE id = ANY(%s)",
                    (self.config.requeue_delay, msg_ids),
                )
        except Exception as exc:  # logged like real mailroom; the rows stay Q
            log.error("error marking messages as initializing: %s", exc)
