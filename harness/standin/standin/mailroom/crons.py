"""Mailroom's crons: every instance runs them, one at a time under the Redis lock `lock:<name>_lock`.

- retry_errored_messages (every minute): outgoing I/E messages whose next_attempt is due → Q, queued.
- retry_msgs (every 5 min): inbound P messages older than 5 min are handled again, only while the
  handler queue is empty, each at most once per message per hour.
- sessions_timeouts (every minute): waits whose timeout_on passed get a timeout_event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg.rows import dict_row
from redis.asyncio import Redis

from standin.mailroom.courier_queue import OutgoingMsg
from standin.mailroom.handler import MSG_EVENT, TIMEOUT_EVENT
from standin.mailroom.locks import Locker, cron_lock_key
from standin.mailroom.models import DEFAULT_TPS
from standin.mailroom.runtime import Runtime

log = logging.getLogger("mailroom.crons")

CronFunc = Callable[[Runtime], Awaitable[dict[str, Any]]]


class IntervalSet:
    """Membership remembered for a day or two: one Redis set per UTC day, today's and yesterday's checked."""

    def __init__(self, redis: Redis, name: str) -> None:
        self._redis = redis
        self._name = name

    def _key(self, day: datetime) -> str:
        return f"{self._name}:{day.strftime('%Y-%m-%d')}"

    async def contains(self, member: str) -> bool:
        today = datetime.now(UTC)
        for day in (today, today - timedelta(days=1)):
            if await self._redis.sismember(self._key(day), member):
                return True
        return False

    async def add(self, member: str) -> None:
        key = self._key(datetime.now(UTC))
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.sadd(key, member)
            pipe.expire(key, 2 * 24 * 3600)
            await pipe.execute()


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def retry_errored_messages(rt: Runtime) -> dict[str, Any]:
    async with rt.db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            """
            SELECT m.id, m.uuid::text AS uuid, m.org_id, m.channel_id, c.uuid::text AS channel_uuid, c.tps,
                   m.contact_id, m.contact_urn_id, u.identity AS urn, m.text, m.high_priority, m.error_count,
                   m.created_on, f.uuid::text AS flow_uuid, f.name AS flow_name
              FROM msgs_msg m
              JOIN channels_channel c ON c.id = m.channel_id
              JOIN contacts_contacturn u ON u.id = m.contact_urn_id
              LEFT JOIN flows_flow f ON f.id = m.flow_id
             WHERE m.direction = 'O' AND m.status IN ('I', 'E') AND m.next_attempt <= now() AND c.is_active
             ORDER BY m.next_attempt ASC, m.created_on ASC
             LIMIT 5000
            """
        )
        rows = await cur.fetchall()
        if not rows:
            return {}
        await cur.execute(
            "UPDATE msgs_msg SET status = 'Q', next_attempt = NULL, queued_on = now(), modified_on = now() "
            "WHERE id = ANY(%s) RETURNING id, queued_on",
            ([r["id"] for r in rows],),
        )
        queued_on = {r["id"]: r["queued_on"] for r in await cur.fetchall()}
    msgs = [
        OutgoingMsg(
            id=r["id"],
            uuid=r["uuid"],
            org_id=r["org_id"],
            channel_id=r["channel_id"],
            channel_uuid=r["channel_uuid"],
            tps=r["tps"] if r["tps"] is not None else DEFAULT_TPS,
            contact_id=r["contact_id"],
            contact_urn_id=r["contact_urn_id"],
            urn=r["urn"],
            text=r["text"],
            high_priority=bool(r["high_priority"]),
            error_count=r["error_count"],
            created_on=_iso(r["created_on"]),
            queued_on=_iso(queued_on.get(r["id"], r["created_on"])),
            flow_uuid=r["flow_uuid"],
            flow_name=r["flow_name"],
        )
        for r in rows
    ]
    await rt.send_to_courier(msgs)
    return {"retried": len(msgs)}


async def retry_pending_messages(rt: Runtime) -> dict[str, Any]:
    if not (rt.config.retry_pending_messages and rt.switches["retry_pending"]):
        return {}
    if rt.switches["retry_pending_only_when_queue_empty"]:
        waiting = await rt.handler_queue.size()
        if waiting > 0:
            log.info("not retrying any messages, have %d tasks in handler queue", waiting)
            return {"skipped_queue_size": waiting}
    marker = IntervalSet(rt.redis, "retried_msgs")
    async with rt.db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            """
            SELECT m.org_id, m.contact_id, m.id AS msg_id, m.uuid::text AS msg_uuid, m.external_id, m.text,
                   m.channel_id, c.uuid::text AS channel_uuid, c.channel_type, u.identity AS urn,
                   m.contact_urn_id AS urn_id
              FROM msgs_msg m
              JOIN channels_channel c ON c.id = m.channel_id
              JOIN contacts_contacturn u ON u.id = m.contact_urn_id
             WHERE m.direction = 'I' AND m.status = 'P'
               AND m.created_on < now() - make_interval(secs => %s)
            """,
            (rt.config.retry_pending_age,),
        )
        rows = await cur.fetchall()
    retried = 0
    hour = datetime.now(UTC).hour
    for row in rows:
        key = f"{row['msg_id']}_{hour}"
        if await marker.contains(key):
            continue
        event = {
            "contact_id": row["contact_id"],
            "org_id": row["org_id"],
            "channel_id": row["channel_id"],
            "msg_id": row["msg_id"],
            "msg_uuid": row["msg_uuid"],
            "msg_external_id": row["external_id"],
            "urn": row["urn"],
            "urn_id": row["urn_id"],
            "text": row["text"],
            "attachments": [],
            "new_contact": False,
        }
        await rt.queue_contact_event(row["org_id"], row["contact_id"], MSG_EVENT, event)
        await marker.add(key)
        retried += 1
    return {"retried": retried}


async def queue_session_timeouts(rt: Runtime) -> dict[str, Any]:
    marker = IntervalSet(rt.redis, "session_timeouts")
    async with rt.db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT id, org_id, contact_id, timeout_on FROM flows_flowsession "
            "WHERE status = 'W' AND timeout_on < now() ORDER BY timeout_on ASC LIMIT 25000"
        )
        rows = await cur.fetchall()
    queued = dupes = 0
    for row in rows:
        timeout_on = _iso(row["timeout_on"])
        key = f"{row['id']}:{timeout_on}"
        if await marker.contains(key):
            dupes += 1
            continue
        await rt.queue_contact_event(
            row["org_id"], row["contact_id"], TIMEOUT_EVENT, {"session_id": row["id"], "time": timeout_on}
        )
        await marker.add(key)
        queued += 1
    return {"queued": queued, "dupes": dupes}


@dataclass(frozen=True)
class Cron:
    name: str
    interval: float
    func: CronFunc


def mailroom_crons(rt: Runtime) -> list[Cron]:
    return [
        Cron("retry_errored_messages", rt.config.retry_errored_interval, retry_errored_messages),
        Cron("retry_msgs", rt.config.retry_pending_interval, retry_pending_messages),
        Cron("sessions_timeouts", rt.config.timeouts_interval, queue_session_timeouts),
    ]


async def run_cron_forever(rt: Runtime, cron: Cron, stopping: asyncio.Event) -> None:
    """Fire at start, then every interval; skip a fire while another instance holds the lock (as real)."""
    locker = Locker(rt.redis, cron_lock_key(cron.name), rt.config.cron_lock_expiry)
    next_fire = time.monotonic()
    while not stopping.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=max(0.0, next_fire - time.monotonic()))
        if stopping.is_set():
            return
        next_fire = time.monotonic() + cron.interval
        try:
            token = await locker.grab(0)
        except Exception as exc:  # Redis down: try again next fire
            log.error("cron %s: error grabbing lock: %s", cron.name, exc)
            continue
        if token is None:
            log.debug("cron %s: lock already present, sleeping", cron.name)
            continue
        started = time.monotonic()
        try:
            results = await cron.func(rt)
            log.info("cron %s completed in %.3fs: %s", cron.name, time.monotonic() - started, results)
        except Exception as exc:  # logged as real; the next fire tries again
            log.error("error while running cron %s: %s", cron.name, exc)
        finally:
            with contextlib.suppress(Exception):
                await locker.release(token)
