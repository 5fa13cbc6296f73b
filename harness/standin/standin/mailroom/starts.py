"""Batch queue tasks: `start_flow` resolves a flow start's contacts, `start_flow_batch` starts them.

As real v9: the start goes P → S (with its contact count) when resolved, then one batch task per
100 contacts (on the handler queue when there are two contacts or fewer), and the last batch marks it
C. Query and group starts need Elasticsearch; contact and URN starts do not. Messages of a start are bulk
priority.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection, errors

from standin.mailroom import engine_adapter
from standin.mailroom.assets import OrgAssets
from standin.mailroom.models import find_waiting_session, has_run_in_flow, load_contact
from standin.mailroom.queues import DEFAULT_PRIORITY, LOW_PRIORITY
from standin.mailroom.runtime import Runtime
from standin.mailroom.sprints import SprintTarget, write_sprint

log = logging.getLogger("mailroom.starts")

START_FLOW = "start_flow"
START_FLOW_BATCH = "start_flow_batch"
BATCH_SIZE = 100


async def _set_start_status(rt: Runtime, start_id: int, status: str, contact_count: int | None = None) -> None:
    async with rt.db.connection() as conn, conn.cursor() as cur:
        if contact_count is None:
            await cur.execute(
                "UPDATE flows_flowstart SET status = %s, modified_on = now() WHERE id = %s", (status, start_id)
            )
        else:
            await cur.execute(
                "UPDATE flows_flowstart SET status = %s, contact_count = %s, modified_on = now() WHERE id = %s",
                (status, contact_count, start_id),
            )


async def start_flow(rt: Runtime, org_id: int, task: dict[str, Any], oa: OrgAssets | None) -> None:
    """`oa` is unused: it is loaded before any task anyway (v9.2), so an outage fails a start while still P."""
    start_id = int(task["start_id"])
    try:
        contact_ids = await _resolve_recipients(rt, org_id, task)
    except Exception:
        await _set_start_status(rt, start_id, "F")
        raise
    await _set_start_status(rt, start_id, "S", len(contact_ids))
    if not contact_ids:
        await _set_start_status(rt, start_id, "C")
        return
    batches = [contact_ids[i : i + BATCH_SIZE] for i in range(0, len(contact_ids), BATCH_SIZE)]
    queue = rt.handler_queue if len(contact_ids) <= 2 else rt.batch_queue
    priority = LOW_PRIORITY if len(batches) > 1 else DEFAULT_PRIORITY
    for index, batch in enumerate(batches):
        batch_task = {
            key: task[key]
            for key in (
                "start_id",
                "start_type",
                "org_id",
                "flow_id",
                "flow_type",
                "restart_participants",
                "exclusions",
                "params",
            )
            if key in task
        }
        batch_task.update(contact_ids=batch, is_last=index == len(batches) - 1, total_contacts=len(contact_ids))
        await queue.push(org_id, START_FLOW_BATCH, batch_task, priority)


async def _resolve_recipients(rt: Runtime, org_id: int, task: dict[str, Any]) -> list[int]:
    ids: list[int] = []
    async with rt.db.connection() as conn:
        requested = [int(c) for c in task.get("contact_ids") or []]
        if requested:
            async with conn.cursor() as cur:
                await cur.execute(
                    "SELECT id FROM contacts_contact WHERE org_id = %s AND is_active AND id = ANY(%s)",
                    (org_id, requested),
                )
                active = {int(r[0]) for r in await cur.fetchall()}
            ids.extend(c for c in requested if c in active)
        for identity in task.get("urns") or []:
            ids.append(await get_or_create_contact_for_urn(conn, org_id, str(identity)))
    query = str(task.get("query") or "").strip()
    group_ids = [int(g) for g in task.get("group_ids") or []]
    if group_ids:
        # group membership lives in the search index (the stand-in schema has no group tables)
        groups_query = " OR ".join(f"group_ids:{g}" for g in group_ids)
        query = f"({query}) AND ({groups_query})" if query else groups_query
    if query:
        ids.extend(await rt.search.contact_ids(org_id, query))
    return list(dict.fromkeys(ids))  # unique, first mention first


def _split_urn(identity: str) -> tuple[str, str]:
    scheme, sep, path = identity.partition(":")
    if not sep or not scheme or not path:
        raise ValueError(f"not a URN (scheme:path): {identity!r}")
    return scheme.lower(), path


async def get_or_create_contact_for_urn(conn: AsyncConnection[Any], org_id: int, identity: str) -> int:
    scheme, path = _split_urn(identity)
    identity = f"{scheme}:{path}"
    for _attempt in range(3):
        async with conn.cursor() as cur:
            await cur.execute(
                "SELECT id, contact_id FROM contacts_contacturn WHERE org_id = %s AND identity = %s",
                (org_id, identity),
            )
            row = await cur.fetchone()
        if row is not None and row[1] is not None:
            return int(row[1])
        try:
            async with conn.transaction(), conn.cursor() as cur:
                await cur.execute(
                    "INSERT INTO contacts_contact (uuid, org_id, name, fields, status, is_active, created_on, "
                    "modified_on) VALUES (%s, %s, NULL, '{}', 'A', true, now(), now()) RETURNING id",
                    (str(uuid.uuid4()), org_id),
                )
                created = await cur.fetchone()
                assert created is not None
                contact_id = int(created[0])
                if row is None:
                    await cur.execute(
                        "INSERT INTO contacts_contacturn (org_id, contact_id, identity, scheme, path, priority) "
                        "VALUES (%s, %s, %s, %s, %s, 1000)",
                        (org_id, contact_id, identity, scheme, path),
                    )
                else:  # an orphaned URN is claimed by the new contact
                    await cur.execute(
                        "UPDATE contacts_contacturn SET contact_id = %s WHERE id = %s AND contact_id IS NULL",
                        (contact_id, row[0]),
                    )
                    if cur.rowcount == 0:
                        raise errors.UniqueViolation("URN claimed concurrently")
            return contact_id
        except errors.UniqueViolation:
            continue  # courier or another mailroom created it first: read theirs
    raise RuntimeError(f"could not get or create a contact for {identity}")


async def start_flow_batch(rt: Runtime, org_id: int, task: dict[str, Any], oa: OrgAssets | None) -> None:
    start_id = int(task["start_id"])
    flow_id = int(task["flow_id"])
    exclusions = task.get("exclusions") or {}
    skip_started_previously = task.get("restart_participants") is False or bool(exclusions.get("started_previously"))
    skip_in_a_flow = bool(exclusions.get("in_a_flow"))
    try:
        for contact_id in task.get("contact_ids") or []:
            try:
                await _start_contact(rt, org_id, flow_id, int(contact_id), skip_started_previously, skip_in_a_flow, oa)
            except Exception as exc:  # one contact's failure must not stop the batch
                log.error("error starting flow %s for contact %s: %s", flow_id, contact_id, exc)
    finally:
        if task.get("is_last"):
            await _set_start_status(rt, start_id, "C")


async def _start_contact(
    rt: Runtime,
    org_id: int,
    flow_id: int,
    contact_id: int,
    skip_started_previously: bool,
    skip_in_a_flow: bool,
    oa: OrgAssets | None,
) -> None:
    locker = rt.contact_locker(org_id, contact_id)
    token = await locker.grab(rt.config.contact_lock_wait) if rt.switches["contact_lock"] else ""
    if token is None:
        log.error("skipping contact %s in start of flow %s: could not get its lock", contact_id, flow_id)
        return
    try:
        now = datetime.now(UTC)
        async with rt.db.connection() as conn:
            assets = oa or await rt.assets.get(conn, org_id)
            flow = assets.flow(flow_id)
            if flow is None or assets.engine is None:
                raise ValueError(f"flow {flow_id} is not an active flow of org {org_id}")
            contact = await load_contact(conn, org_id, contact_id)
            if contact is None or contact.status != "A":
                return
            if skip_started_previously and await has_run_in_flow(conn, contact_id, flow_id):
                return
            waiting = await find_waiting_session(conn, contact_id)
            if skip_in_a_flow and waiting is not None:
                return
            urn = contact.urns[0] if contact.urns else None
            channel = assets.channel(urn.channel_id) if urn and urn.channel_id else None
            channel = channel if channel and channel.is_active else assets.default_channel()
            sprint = engine_adapter.start(assets.engine, flow.uuid, contact, now)
            target = SprintTarget(
                contact=contact, assets=assets, channel=channel, urn=urn, high_priority=False, interrupt=waiting
            )
            async with conn.transaction():
                outgoing = await write_sprint(conn, target, sprint, rt.switches, now)
        await rt.queue_after_commit(outgoing)
    finally:
        if token:
            await locker.release(token)
