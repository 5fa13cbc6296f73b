"""`POST /mr/msg/send`: one chat message from a user to a contact (mailroom v9.2.2 `web/msg/send.go`).

RapidPro's `POST /api/v2/messages` calls this. The message is created for the contact's first URN and its
channel, inserted (status Q, high priority, as real creates a user's chat message), then queued to
courier after the insert; a failed push leaves it I for the retry cron, and the answer is still 200 with
status Q, as real. Errors keep real's shapes: 401 for a bad token, 400 `request failed validation: …` for
a bad body, 500 `{"error": …}` for anything that fails on the way (unknown org or contact, database or
Redis down). Attachments, tickets and the Android sync are not modelled.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from standin.mailroom.courier_queue import OutgoingMsg
from standin.mailroom.models import Channel, Contact, ContactURN, load_contact
from standin.mailroom.runtime import Runtime

log = logging.getLogger("mailroom.web")

PATH = "/mr/msg/send"

# mailroom v9.2.2 core/models/msgs.go: a 20th identical text to one contact within a 5 minute window is
# failed as looping; the counter lives in Redis, so Redis down fails the request before any insert.
REPETITION_LIMIT = 20
REPETITION_WINDOW = timedelta(minutes=5)
REPETITION_TEXT_BYTES = 128

FAILED_CONTACT_STATUS = "C"
FAILED_NO_DESTINATION = "D"
FAILED_LOOPING = "L"

REQUIRED_FIELDS = ("org_id", "user_id", "contact_id")


class SendError(Exception):
    """A failure real mailroom answers with 500 and its message."""


@dataclass(frozen=True)
class SendRequest:
    org_id: int
    user_id: int
    contact_id: int
    text: str


def parse_request(body: bytes) -> SendRequest:
    """The body as real's validator sees it: zero or missing required ids are invalid."""
    try:
        data = json.loads(body or b"null")
    except ValueError as exc:
        raise ValueError(f"unable to read JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("unable to read JSON: expected an object")
    for name in REQUIRED_FIELDS:
        value = data.get(name)
        if isinstance(value, bool) or not isinstance(value, int | type(None)):
            raise ValueError(f"field '{name}' must be an integer")
        if not value:
            raise ValueError(f"field '{name}' is required")
    text = data.get("text") or ""
    if not isinstance(text, str):
        raise ValueError("field 'text' must be a string")
    return SendRequest(int(data["org_id"]), int(data["user_id"]), int(data["contact_id"]), text)


def repetitions_key(now: datetime) -> str:
    """Go's `Round(5 * time.Minute)` of UTC now: a half window rounds up."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    window = REPETITION_WINDOW.total_seconds()
    elapsed = (now - epoch).total_seconds()
    rounded = epoch + timedelta(seconds=window * int((elapsed + window / 2) // window))
    return f"msg_repetitions:{rounded.strftime('%Y-%m-%dT%H:%M')}"


async def count_repetition(rt: Runtime, contact_id: int, text: str) -> int:
    """How many times this contact got this text (case-insensitive, first 128 bytes) in the window."""
    key = repetitions_key(datetime.now(UTC))
    # Lua's string.lower is ASCII-only and string.sub counts bytes: bytes.lower() does the same
    field = f"{contact_id}|".encode() + text.encode()[:REPETITION_TEXT_BYTES].lower()
    async with rt.redis.pipeline(transaction=True) as pipe:
        pipe.hincrby(key, field, 1)  # type: ignore[arg-type]  # redis-py sends bytes as they are
        pipe.expire(key, int(REPETITION_WINDOW.total_seconds()))
        count, _ = await pipe.execute()
    return int(count)


def destination(contact: Contact, channels: dict[int, Channel]) -> tuple[ContactURN | None, Channel | None]:
    """The first URN in priority order with its channel, else the org's first active channel; neither
    when there is no such pair (real resolves a destination as a URN *and* a channel)."""
    if not contact.urns:
        return None, None
    urn = contact.urns[0]
    channel = channels.get(urn.channel_id) if urn.channel_id is not None else None
    if channel is None or not channel.is_active:
        active = [c for c in channels.values() if c.is_active]
        channel = min(active, key=lambda c: c.id) if active else None
    return (urn, channel) if channel is not None else (None, None)


async def _org_exists(conn: AsyncConnection[Any], org_id: int) -> bool:
    async with conn.cursor() as cur:
        await cur.execute("SELECT 1 FROM orgs_org WHERE id = %s", (org_id,))
        return await cur.fetchone() is not None


async def _channel_name(conn: AsyncConnection[Any], channel_id: int) -> str:
    async with conn.cursor() as cur:
        await cur.execute("SELECT name FROM channels_channel WHERE id = %s", (channel_id,))
        row = await cur.fetchone()
    return str(row[0] or "") if row else ""


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def send(rt: Runtime, req: SendRequest) -> dict[str, Any]:
    async with rt.db.connection() as conn:
        try:
            if not await _org_exists(conn, req.org_id):
                raise SendError(f"error loading environment for org {req.org_id}: no org with id: {req.org_id}")
            assets = await rt.assets.get(conn, req.org_id)
        except Exception as exc:
            raise SendError(f"unable to load org assets: {exc}") from exc
        try:
            contact = await load_contact(conn, req.org_id, req.contact_id)
        except Exception as exc:
            raise SendError(f"error loading contact: {exc}") from exc
        if contact is None:
            raise SendError("error loading contact: sql: no rows in result set")

        urn, channel = destination(contact, assets.channels)
        failed_reason: str | None = None
        if contact.status != "A":
            failed_reason = FAILED_CONTACT_STATUS
        elif urn is None or channel is None:
            failed_reason = FAILED_NO_DESTINATION
        else:
            try:
                if await count_repetition(rt, contact.id, req.text) >= REPETITION_LIMIT:
                    failed_reason = FAILED_LOOPING
            except Exception as exc:
                raise SendError(f"error creating outgoing message: error looking up msg repetitions: {exc}") from exc
        status = "F" if failed_reason else "Q"
        channel_name = await _channel_name(conn, channel.id) if channel is not None else ""

        msg_uuid = str(uuid.uuid4())
        try:
            async with conn.cursor() as cur:
                await cur.execute(
                    "INSERT INTO msgs_msg (uuid, org_id, channel_id, contact_id, contact_urn_id, direction, status, "
                    "msg_type, visibility, text, high_priority, error_count, created_on, queued_on, modified_on, "
                    "metadata) VALUES (%s, %s, %s, %s, %s, 'O', %s, 'T', 'V', %s, true, 0, clock_timestamp(), "
                    "clock_timestamp(), clock_timestamp(), %s) RETURNING id, created_on, queued_on, modified_on",
                    (
                        msg_uuid,
                        req.org_id,
                        channel.id if channel is not None else None,
                        contact.id,
                        urn.id if urn is not None else None,
                        status,
                        req.text,
                        Jsonb({"failed_reason": failed_reason} if failed_reason else {}),
                    ),
                )
                row = await cur.fetchone()
        except Exception as exc:
            raise SendError(f"error inserting outgoing message: {exc}") from exc
        assert row is not None
        msg_id, created_on, queued_on, modified_on = row

    if status == "Q":
        assert urn is not None and channel is not None
        await rt.send_to_courier(
            [
                OutgoingMsg(
                    id=int(msg_id),
                    uuid=msg_uuid,
                    org_id=req.org_id,
                    channel_id=channel.id,
                    channel_uuid=channel.uuid,
                    tps=channel.tps,
                    contact_id=contact.id,
                    contact_urn_id=urn.id,
                    urn=urn.identity,
                    text=req.text,
                    high_priority=True,
                    error_count=0,
                    created_on=_iso(created_on),
                    queued_on=_iso(queued_on),
                )
            ]
        )

    return {
        "id": int(msg_id),
        "channel": {"uuid": channel.uuid, "name": channel_name} if channel is not None else None,
        "contact": {"uuid": contact.uuid, "name": contact.name or ""},
        "urn": f"{urn.identity}?id={urn.id}" if urn is not None else "",
        "text": req.text,
        "attachments": [],
        "status": status,
        "created_on": _iso(created_on),
        "modified_on": _iso(modified_on),
    }


def add_msg_send_route(app: web.Application, rt: Runtime) -> None:
    async def handle(request: web.Request) -> web.Response:
        if request.method != "POST":
            return web.json_response({"error": f"illegal method: {request.method}"}, status=405)
        token = rt.config.auth_token
        if token and request.headers.get("Authorization") != f"Token {token}":
            return web.json_response({"error": "invalid or missing authorization header"}, status=401)
        try:
            req = parse_request(await request.read())
        except ValueError as exc:
            return web.json_response({"error": f"request failed validation: {exc}"}, status=400)
        try:
            return web.json_response(await send(rt, req))
        except Exception as exc:  # as real's server: every failure is a 500 with its message
            log.error("error handling request %s: %s", PATH, exc)
            return web.json_response({"error": str(exc)}, status=500)

    app.router.add_route("*", PATH, handle)
