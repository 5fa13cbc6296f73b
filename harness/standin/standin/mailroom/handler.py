"""The handler queue's task: take a contact's lock, then handle its queued events one by one.

A msg_event resumes the contact's waiting session, or starts the flow of a matching keyword trigger,
or is just marked handled. A timeout_event resumes a session whose wait timed out. An event that fails
goes back to the front of the contact's list up to three times, then is dropped (the message stays P
for the retry_msgs cron), as real v9 does.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from standin.mailroom import engine_adapter
from standin.mailroom.assets import OrgAssets
from standin.mailroom.locks import Locker
from standin.mailroom.models import Contact, find_waiting_session, load_contact
from standin.mailroom.runtime import HANDLE_CONTACT_EVENT, Runtime
from standin.mailroom.sprints import SprintTarget, mark_msg_handled, write_sprint

log = logging.getLogger("mailroom.handler")

MSG_EVENT = "msg_event"
TIMEOUT_EVENT = "timeout_event"
MAX_EVENT_ERRORS = 3


class EventError(ValueError):
    """A contact event that cannot be read."""


async def handle_contact_event(rt: Runtime, org_id: int, task: dict[str, Any], oa: OrgAssets | None) -> None:
    """`oa`: the org's assets loaded before the lock (v9.2), or None to load them per event (older order)."""
    contact_id = int(task["contact_id"])
    locker: Locker | None = None
    token: str | None = None
    if rt.switches["contact_lock"]:
        locker = rt.contact_locker(org_id, contact_id)
        token = await locker.grab(rt.config.contact_lock_wait)
        if token is None:
            await rt.handler_queue.push(org_id, HANDLE_CONTACT_EVENT, {"contact_id": contact_id})
            log.info(
                "failed to get lock for contact, requeued and skipping (org_id=%s contact_id=%s)", org_id, contact_id
            )
            return
    try:
        await _drain_contact_events(rt, org_id, contact_id, oa)
    finally:
        if locker is not None and token is not None:
            await locker.release(token)


async def _drain_contact_events(rt: Runtime, org_id: int, contact_id: int, oa: OrgAssets | None) -> None:
    key = f"c:{org_id}:{contact_id}"
    while True:
        raw = await rt.redis.lpop(key)
        if raw is None:
            return
        try:
            payload = json.loads(raw)
            event_type = str(payload["type"])
            event = dict(payload["task"])
        except (ValueError, KeyError, TypeError):
            log.error("dropping unreadable contact event on %s: %r", key, str(raw)[:200])
            continue
        try:
            await perform_event(rt, org_id, contact_id, event_type, event, oa)
        except Exception as exc:  # any failure requeues the event, as real
            errors = int(payload.get("error_count", 0)) + 1
            if errors < MAX_EVENT_ERRORS:
                try:
                    await rt.queue_contact_event(org_id, contact_id, event_type, event, front=True, error_count=errors)
                except Exception as requeue_exc:
                    log.error("error requeuing errored contact event: %s", requeue_exc)
                log.error(
                    "error handling contact event (org_id=%s contact_id=%s type=%s error_count=%d): %s",
                    org_id,
                    contact_id,
                    event_type,
                    errors,
                    exc,
                )
            else:
                log.error(
                    "error handling contact event, permanent failure (org_id=%s contact_id=%s type=%s): %s",
                    org_id,
                    contact_id,
                    event_type,
                    exc,
                )
            return


async def perform_event(
    rt: Runtime, org_id: int, contact_id: int, event_type: str, event: dict[str, Any], oa: OrgAssets | None
) -> None:
    # real mailroom reads the contact from the read-only database unless the contact is new
    pool = rt.db if event.get("new_contact") or event_type != MSG_EVENT else rt.readonly_db
    async with pool.connection() as conn:
        contact = await load_contact(conn, org_id, contact_id)
    if contact is None:
        return  # deleted contact: whatever the event would do is moot
    if event_type == MSG_EVENT:
        await _msg_event(rt, contact, event, oa)
    elif event_type == TIMEOUT_EVENT:
        await _timeout_event(rt, contact, event, oa)
    else:
        raise EventError(f"unknown contact event type {event_type!r}")


async def _msg_event(rt: Runtime, contact: Contact, event: dict[str, Any], oa: OrgAssets | None) -> None:
    msg_id = int(event["msg_id"])
    text = str(event.get("text") or "")
    now = datetime.now(UTC)
    async with rt.db.connection() as conn:
        assets = oa or await rt.assets.get(conn, contact.org_id)
        channel = assets.channel(event.get("channel_id"))
        if contact.status == "B" or channel is None:
            async with conn.transaction():
                await mark_msg_handled(conn, msg_id, None)
            return
        urn = next((u for u in contact.urns if u.id == event.get("urn_id")), None)
        urn = urn or (contact.urns[0] if contact.urns else None)
        trigger, _keyword = assets.match_trigger(text)
        session = await find_waiting_session(conn, contact.id)
        session_flow = assets.flow(session.current_flow_id) if session else None
        if session is not None and session_flow is None:
            # the flow the session waits in is gone: fail the session, as real
            async with conn.transaction(), conn.cursor() as cur:
                await cur.execute(
                    "UPDATE flows_flowsession SET status = 'F', ended_on = now() WHERE id = %s", (session.id,)
                )
            session = None

        start_flow = None
        if trigger is not None:
            flow = assets.flow(trigger.flow_id)
            keyword_wins = trigger.trigger_type == "K" and (session_flow is None or not session_flow.ignore_triggers)
            catchall_wins = trigger.trigger_type == "C" and session is None
            if flow is not None and (keyword_wins or catchall_wins):
                start_flow = flow

        target = SprintTarget(
            contact=contact,
            assets=assets,
            channel=channel,
            urn=urn,
            high_priority=True,
            incoming_msg_id=msg_id,
            session=None if start_flow else session,
            interrupt=session if start_flow else None,
        )
        if start_flow is not None and assets.engine is not None:
            sprint = engine_adapter.start(assets.engine, start_flow.uuid, contact, now, trigger_text=text)
        elif session is not None and assets.engine is not None:
            sprint = engine_adapter.resume(assets.engine, session.output, contact, text, now)
        else:
            async with conn.transaction(), conn.cursor() as cur:
                await mark_msg_handled(conn, msg_id, None)
                await cur.execute("UPDATE contacts_contact SET modified_on = now() WHERE id = %s", (contact.id,))
            return
        async with conn.transaction():
            outgoing = await write_sprint(conn, target, sprint, rt.switches, now)
    await rt.queue_after_commit(outgoing)


async def _timeout_event(rt: Runtime, contact: Contact, event: dict[str, Any], oa: OrgAssets | None) -> None:
    session_id = int(event["session_id"])
    expected = datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00"))
    now = datetime.now(UTC)
    async with rt.db.connection() as conn:
        session = await find_waiting_session(conn, contact.id)
        if session is None or session.id != session_id:
            return  # interrupted or ended since
        if session.timeout_on is None or session.timeout_on != expected:
            log.info("ignoring timeout for session %s: has been updated", session_id)
            return
        assets = oa or await rt.assets.get(conn, contact.org_id)
        if assets.engine is None:
            return
        urn = contact.urns[0] if contact.urns else None
        channel = assets.channel(urn.channel_id) if urn and urn.channel_id else assets.default_channel()
        sprint = engine_adapter.timeout(assets.engine, session.output, contact, now)
        target = SprintTarget(
            contact=contact, assets=assets, channel=channel, urn=urn, high_priority=False, session=session
        )
        async with conn.transaction():
            outgoing = await write_sprint(conn, target, sprint, rt.switches, now)
    await rt.queue_after_commit(outgoing)
