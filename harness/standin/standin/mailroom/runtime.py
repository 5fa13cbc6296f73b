"""Everything a mailroom task needs: settings, switches, database pools, Redis, queues, caches."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from typing import Any

from psycopg import AsyncConnection
from redis.asyncio import Redis

from standin.common.switches import Switches
from standin.mailroom.assets import AssetCache
from standin.mailroom.config import MailroomConfig
from standin.mailroom.courier_queue import CourierQueue, OutgoingMsg
from standin.mailroom.dbpool import DbPool
from standin.mailroom.locks import Locker, contact_lock_key
from standin.mailroom.queues import DEFAULT_PRIORITY, FairSortedQueue, iso_now
from standin.mailroom.search import ContactSearch

log = logging.getLogger("mailroom")

HANDLE_CONTACT_EVENT = "handle_contact_event"


@dataclass
class Runtime:
    config: MailroomConfig
    switches: Switches
    db: DbPool
    readonly_db: DbPool
    redis: Redis
    handler_queue: FairSortedQueue
    batch_queue: FairSortedQueue
    courier: CourierQueue
    assets: AssetCache
    search: ContactSearch
    post_commit_failures: int = 0  # test aid: post-commit transactions still to fail at their begin

    def contact_locker(self, org_id: int, contact_id: int) -> Locker:
        return Locker(
            self.redis,
            contact_lock_key(org_id, contact_id),
            self.config.contact_lock_expiry,
            poll=float(self.switches["contact_lock_poll_s"]),
        )

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

    async def queue_after_commit(self, msgs: list[OutgoingMsg]) -> None:
        """A sprint's replies, once its transaction committed: queued to courier inside a new transaction
        that reads their URNs (runner.go post-commit hooks, msgio.QueueMessages). Any failure of that
        transaction is raised, so the caller's event is requeued and the replies stay Q."""
        if not msgs:
            return
        if not self.switches["post_commit_tx"]:
            await self.send_to_courier(msgs)
            return
        async with self.db.connection() as conn:
            if self.post_commit_failures > 0:
                self.post_commit_failures -= 1
                raise PostCommitError("error starting transaction for post commit hooks (switch post_commit_failures)")
            try:
                async with conn.transaction():
                    urns = await _load_urns(conn, [m.contact_urn_id for m in msgs])
                    msgs = [replace(m, urn=urns.get(m.contact_urn_id, m.urn)) for m in msgs]
                    await self.send_to_courier(msgs, conn)
            except Exception as exc:
                raise PostCommitError(f"error committing session changes: {exc}") from exc

    async def send_to_courier(self, msgs: list[OutgoingMsg], conn: AsyncConnection[Any] | None = None) -> None:
        """Queue the messages to courier; those that fail to queue are marked per switch (with `conn`, in
        its transaction, where a failure to mark fails the transaction as lib/pq's commit would)."""
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
            await self.mark_for_requeuing(failed, conn)

    async def mark_for_requeuing(self, msg_ids: list[int], conn: AsyncConnection[Any] | None = None) -> None:
        if self.switches["push_failure_status"] != "I":
            log.warning("switch push_failure_status=Q: %d unqueued messages left Q", len(msg_ids))
            return
        try:
            if conn is not None:
                await _mark_initializing(conn, msg_ids, self.config.requeue_delay)
            else:
                async with self.db.connection() as own:
                    await _mark_initializing(own, msg_ids, self.config.requeue_delay)
        except Exception as exc:  # logged like real mailroom; the rows stay Q
            log.error("error marking messages as initializing: %s", exc)
            if conn is not None:
                raise


class PostCommitError(RuntimeError):
    """The transaction of the post-commit hooks failed: the sprint is written, its replies not queued."""


async def _mark_initializing(conn: AsyncConnection[Any], msg_ids: list[int], delay: float) -> None:
    async with conn.cursor() as cur:
        await cur.execute(
            "UPDATE msgs_msg SET status = 'I', next_attempt = now() + make_interval(secs => %s), "
            "modified_on = now() WHERE id = ANY(%s)",
            (delay, msg_ids),
        )


async def _load_urns(conn: AsyncConnection[Any], urn_ids: list[int]) -> dict[int, str]:
    async with conn.cursor() as cur:
        await cur.execute("SELECT id, identity FROM contacts_contacturn WHERE id = ANY(%s)", (sorted(set(urn_ids)),))
        return {int(row[0]): str(row[1]) for row in await cur.fetchall()}
