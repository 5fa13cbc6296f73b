"""Writing one contact's sprint in ONE transaction: session, runs, outgoing messages, inbound H, contact.

What is written here is what the checkers later read, so the statuses are RapidPro's: sessions W C X I
F, runs A W C X I F, new outgoing messages Q (or F when the contact has no way to be reached).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from standin.common.switches import Switches
from standin.mailroom.assets import OrgAssets
from standin.mailroom.courier_queue import OutgoingMsg
from standin.mailroom.engine_adapter import SprintResult
from standin.mailroom.models import Channel, Contact, ContactURN, Session

# RapidPro's default expiry of a messaging flow's wait: 7 days
DEFAULT_EXPIRE_MINUTES = 10080


@dataclass(frozen=True)
class SprintTarget:
    """Who the sprint is for and how its messages travel."""

    contact: Contact
    assets: OrgAssets
    channel: Channel | None
    urn: ContactURN | None
    high_priority: bool
    incoming_msg_id: int | None = None
    session: Session | None = None  # the session resumed; None for a new one
    interrupt: Session | None = None  # a waiting session a new start ends


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def interrupt_session(conn: AsyncConnection[Any], session_id: int) -> None:
    async with conn.cursor() as cur:
        await cur.execute(
            "UPDATE flows_flowsession SET status = 'I', ended_on = now(), wait_started_on = NULL, "
            "timeout_on = NULL, wait_expires_on = NULL, current_flow_id = NULL "
            "WHERE id = %s AND status = 'W'",
            (session_id,),
        )
        await cur.execute(
            "UPDATE flows_flowrun SET status = 'I', exited_on = now(), modified_on = now() "
            "WHERE session_id = %s AND status IN ('A', 'W')",
            (session_id,),
        )


async def mark_msg_handled(conn: AsyncConnection[Any], msg_id: int, flow_id: int | None) -> None:
    async with conn.cursor() as cur:
        await cur.execute(
            "UPDATE msgs_msg SET status = 'H', flow_id = %s, modified_on = now() WHERE id = %s",
            (flow_id, msg_id),
        )


async def write_sprint(
    conn: AsyncConnection[Any],
    target: SprintTarget,
    sprint: SprintResult,
    switches: Switches,
    now: datetime,
) -> list[OutgoingMsg]:
    """Write the sprint; the caller owns the transaction. Returns the messages to push after commit."""
    assets = target.assets
    contact = target.contact
    if target.interrupt is not None:
        await interrupt_session(conn, target.interrupt.id)

    waiting_run = next((r for r in reversed(sprint.runs) if r.status == "W"), None)
    waiting_flow = assets.flows_by_uuid.get(waiting_run.flow_uuid) if waiting_run else None
    current_flow_id = waiting_flow.id if (sprint.session_status == "W" and waiting_flow) else None
    is_waiting = sprint.session_status == "W"
    wait_started_on = now if is_waiting else None
    timeout_on = (
        now + timedelta(seconds=sprint.wait_timeout_seconds) if is_waiting and sprint.wait_timeout_seconds else None
    )
    expire_minutes = (waiting_flow.expire_after_minutes if waiting_flow else None) or DEFAULT_EXPIRE_MINUTES
    wait_expires_on = now + timedelta(minutes=expire_minutes) if is_waiting else None
    ended_on = None if is_waiting else now
    output = Jsonb(sprint.session_state)

    async with conn.cursor() as cur:
        if target.session is None:
            await cur.execute(
                "INSERT INTO flows_flowsession (uuid, org_id, contact_id, status, session_type, output, "
                "current_flow_id, created_on, ended_on, wait_started_on, timeout_on, wait_expires_on) "
                "VALUES (%s, %s, %s, %s, 'M', %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (
                    str(uuid.uuid4()),
                    contact.org_id,
                    contact.id,
                    sprint.session_status,
                    output,
                    current_flow_id,
                    now,
                    ended_on,
                    wait_started_on,
                    timeout_on,
                    wait_expires_on,
                ),
            )
            row = await cur.fetchone()
            assert row is not None
            session_id = int(row[0])
        else:
            session_id = target.session.id
            await cur.execute(
                "UPDATE flows_flowsession SET status = %s, output = %s, current_flow_id = %s, ended_on = %s, "
                "wait_started_on = %s, timeout_on = %s, wait_expires_on = %s WHERE id = %s",
                (
                    sprint.session_status,
                    output,
                    current_flow_id,
                    ended_on,
                    wait_started_on,
                    timeout_on,
                    wait_expires_on,
                    session_id,
                ),
            )

        for run in sprint.runs:
            flow = assets.flows_by_uuid.get(run.flow_uuid)
            if flow is None:
                raise ValueError(f"flow engine returned a run of unknown flow {run.flow_uuid}")
            await cur.execute(
                "UPDATE flows_flowrun SET status = %s, path = %s, results = %s, modified_on = now(), "
                "exited_on = %s, responded = responded OR %s WHERE uuid = %s",
                (run.status, Jsonb(run.path), Jsonb(run.results), run.exited_on, run.responded, run.uuid),
            )
            if cur.rowcount == 0:
                await cur.execute(
                    "INSERT INTO flows_flowrun (uuid, org_id, flow_id, contact_id, session_id, status, path, "
                    "results, responded, created_on, modified_on, exited_on) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now(), %s)",
                    (
                        run.uuid,
                        contact.org_id,
                        flow.id,
                        contact.id,
                        session_id,
                        run.status,
                        Jsonb(run.path),
                        Jsonb(run.results),
                        run.responded,
                        now,
                        run.exited_on,
                    ),
                )

        # the flow that sent the messages: the run that was last active in this sprint
        sending_flow = assets.flows_by_uuid.get(sprint.runs[-1].flow_uuid) if sprint.runs else None
        outgoing = await _insert_outgoing(
            cur, target, sprint.messages, sending_flow.id if sending_flow else None, switches
        )

        if target.incoming_msg_id is not None:
            handled_flow = sending_flow.id if sending_flow else None
            await mark_msg_handled(conn, target.incoming_msg_id, handled_flow)

        await cur.execute(
            "UPDATE contacts_contact SET name = %s, language = %s, fields = %s, current_flow_id = %s, "
            "modified_on = now() WHERE id = %s",
            (
                sprint.contact_name,
                sprint.contact_language,
                Jsonb(sprint.contact_fields),
                current_flow_id,
                contact.id,
            ),
        )

    session_status = sprint.session_status
    flow_asset = assets.flows_by_uuid.get(sprint.runs[-1].flow_uuid) if sprint.runs else None
    msgs = [
        OutgoingMsg(
            **{**m, "session_id": session_id, "session_status": session_status},
            flow_uuid=flow_asset.uuid if flow_asset else None,
            flow_name=flow_asset.name if flow_asset else None,
        )
        for m in outgoing
    ]
    if msgs and timeout_on is not None and wait_started_on is not None:
        # Exactly the value written to wait_started_on: courier matches it to restart the timeout.
        msgs[-1] = replace(msgs[-1], session_wait_started_on=_iso(wait_started_on),
                           session_timeout=sprint.wait_timeout_seconds)  # fmt: skip
    return msgs


async def _insert_outgoing(
    cur: Any,
    target: SprintTarget,
    texts: list[str],
    flow_id: int | None,
    switches: Switches,
) -> list[dict[str, Any]]:
    contact = target.contact
    reachable = target.channel is not None and target.urn is not None and target.channel.is_active
    status = "Q" if reachable else "F"
    rows: list[dict[str, Any]] = []
    for text in texts:
        copies = 2 if reachable and switches.chance("duplicate_reply") else 1
        for _ in range(copies):
            msg_uuid = str(uuid.uuid4())
            await cur.execute(
                "INSERT INTO msgs_msg (uuid, org_id, channel_id, contact_id, contact_urn_id, direction, status, "
                "msg_type, visibility, text, high_priority, error_count, flow_id, created_on, queued_on, "
                "modified_on, metadata) VALUES (%s, %s, %s, %s, %s, 'O', %s, 'T', 'V', %s, %s, 0, %s, "
                "clock_timestamp(), clock_timestamp(), clock_timestamp(), %s) RETURNING id, created_on, queued_on",
                (
                    msg_uuid,
                    contact.org_id,
                    target.channel.id if target.channel else None,
                    contact.id,
                    target.urn.id if target.urn else None,
                    status,
                    text,
                    target.high_priority,
                    flow_id,
                    Jsonb({}) if reachable else Jsonb({"failed_reason": "D"}),
                ),
            )
            row = await cur.fetchone()
            if not reachable:
                continue
            assert row is not None and target.channel is not None and target.urn is not None
            rows.append(
                {
                    "id": int(row[0]),
                    "uuid": msg_uuid,
                    "org_id": contact.org_id,
                    "channel_id": target.channel.id,
                    "channel_uuid": target.channel.uuid,
                    "tps": target.channel.tps,
                    "contact_id": contact.id,
                    "contact_urn_id": target.urn.id,
                    "urn": target.urn.identity,
                    "text": text,
                    "high_priority": target.high_priority,
                    "error_count": 0,
                    "created_on": _iso(row[1]),
                    "queued_on": _iso(row[2]),
                }
            )
    return rows
