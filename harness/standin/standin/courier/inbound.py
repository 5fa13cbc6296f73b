"""Writing an inbound message: de-dup, contact, autocommit insert, mailroom hand-over, spool on failure."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from .channels import Channel, ChannelCache
from .contacts import contact_for_urn
from .db import BACKEND_TIMEOUT_S, Database
from .dedup import SeenMessages, text_hash
from .mailroom_tasks import queue_msg_event
from .spool import write_to_spool
from .timefmt import parse_rfc3339, rfc3339, utcnow
from .urns import URN

log = logging.getLogger("courier.inbound")

SPOOL_SUBDIR = "msgs"

_SQL_INSERT_MSG = """
INSERT INTO msgs_msg (uuid, org_id, channel_id, contact_id, contact_urn_id, direction, status, msg_type,
                      visibility, text, external_id, high_priority, error_count, next_attempt, flow_id,
                      created_on, sent_on, queued_on, modified_on, metadata)
VALUES (%s, %s, %s, %s, %s, 'I', 'P', 'T', 'V', %s, %s, FALSE, 0, %s, NULL, %s, %s, NULL, %s, NULL)
RETURNING id
"""

_SQL_UUID_EXISTS = "SELECT 1 FROM msgs_msg WHERE uuid = %s AND direction = 'I' LIMIT 1"


@dataclass
class IncomingMsg:
    channel: Channel
    urn: URN
    text: str
    received_on: datetime | None
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_on: datetime = field(default_factory=utcnow)
    attachments: list[str] = field(default_factory=list)
    external_id: str = ""
    id: int = 0
    already_written: bool = False

    def spool_document(self) -> dict[str, Any]:
        """The JSON courier spools: its Msg struct's JSON fields (the received date is not among them)."""
        return {
            "org_id": self.channel.org_id,
            "id": self.id,
            "uuid": self.uuid,
            "high_priority": False,
            "text": self.text,
            "attachments": self.attachments,
            "quick_replies": None,
            "locale": None,
            "templating": None,
            "metadata": None,
            "contact_id": 0,
            "contact_urn_id": 0,
            "created_on": rfc3339(self.created_on),
            "channel_uuid": self.channel.uuid,
            "urn": self.urn.identity,
            "urn_auth": "",
            "response_to_external_id": "",
            "is_resend": False,
        }


class InboundWriter:
    def __init__(
        self,
        db: Database,
        redis: Redis,
        channels: ChannelCache,
        seen: SeenMessages,
        spool_dir: str,
        use_spool: bool,
        spool_dedup: bool,
        seen_mark_delay_s: float = 0.0,
    ) -> None:
        self._db = db
        self._redis = redis
        self._channels = channels
        self._seen = seen
        self._spool_dir = spool_dir
        self._use_spool = use_spool
        self._spool_dedup = spool_dedup
        self._seen_mark_delay_s = seen_mark_delay_s

    async def check_seen(self, msg: IncomingMsg) -> None:
        """Adopt the uuid of an identical message received just before (then nothing is written)."""
        fingerprint = SeenMessages.fingerprint(msg.channel.uuid, msg.urn.identity)
        try:
            previous = await self._seen.previous_uuid(fingerprint, text_hash(msg.text, msg.attachments))
        except Exception as exc:  # a failed lookup only means no de-dup, as in courier
            log.warning("seen-msgs lookup failed: %s", exc)
            return
        if previous:
            msg.uuid = previous
            msg.already_written = True

    async def write(self, msg: IncomingMsg) -> None:
        """Commit the message (or spool it); raises only when neither worked."""
        if msg.already_written:
            return
        failure: Exception | None = None
        try:
            await self.write_to_db(msg)
        except Exception as exc:
            log.error("error writing msg %s to db: %s", msg.uuid, exc)
            failure = exc
        if failure is not None:
            if not self._use_spool:
                await self._record_seen(msg)
                raise failure
            try:
                path = write_to_spool(self._spool_dir, SPOOL_SUBDIR, msg.spool_document())
                log.info("spooled msg %s to %s", msg.uuid, path)
            except OSError as exc:
                await self._record_seen(msg)
                raise RuntimeError(f"error writing msg to spool: {exc}") from exc
        if self._seen_mark_delay_s:
            await asyncio.sleep(self._seen_mark_delay_s)
        # As courier's writeMsg: the mark comes last, so a crash after the task push leaves none.
        await self._record_seen(msg)

    async def _record_seen(self, msg: IncomingMsg) -> None:
        fingerprint = SeenMessages.fingerprint(msg.channel.uuid, msg.urn.identity)
        try:
            await self._seen.record(fingerprint, msg.uuid, text_hash(msg.text, msg.attachments))
        except Exception as exc:
            log.warning("recording seen msg failed: %s", exc)

    async def write_to_db(self, msg: IncomingMsg) -> None:
        async with self._db.connection(BACKEND_TIMEOUT_S) as conn:
            contact = await contact_for_urn(conn, msg.channel, msg.urn)
            now = utcnow()
            cursor = await conn.execute(
                _SQL_INSERT_MSG,
                (
                    msg.uuid,
                    msg.channel.org_id,
                    msg.channel.id,
                    contact.id,
                    contact.urn_id,
                    msg.text,
                    msg.external_id or None,
                    now,
                    msg.created_on,
                    msg.received_on,
                    now,
                ),
            )
            row = await cursor.fetchone()
            assert row is not None
            msg.id = int(row["id"])
        task = {
            "contact_id": contact.id,
            "org_id": msg.channel.org_id,
            "channel_id": msg.channel.id,
            "msg_id": msg.id,
            "msg_uuid": msg.uuid,
            "msg_external_id": msg.external_id,
            "urn": msg.urn.identity,
            "urn_id": contact.urn_id,
            "text": msg.text,
            "attachments": msg.attachments,
            "new_contact": contact.is_new,
            "created_on": rfc3339(msg.created_on),
        }
        try:
            await queue_msg_event(self._redis, msg.channel.org_id, contact.id, task)
        except Exception as exc:  # the row stays P; mailroom's retry cron may pick it up
            log.error("error queueing msg handling for msg %s: %s", msg.id, exc)

    async def flush_spooled(self, contents: bytes) -> None:
        """Replay one spooled message; raises (keeping the file) while the DB is still unreachable."""
        document = json.loads(contents)
        channel = await self._channels.get(str(document["channel_uuid"]))
        urn_identity = str(document["urn"])
        scheme, _, path = urn_identity.partition(":")
        attachments = document.get("attachments") or []
        msg = IncomingMsg(
            channel=channel,
            urn=URN(scheme, path),
            text=str(document.get("text", "")),
            received_on=None,
            uuid=str(document["uuid"]),
            created_on=parse_rfc3339(str(document["created_on"])),
            attachments=list(attachments) if isinstance(attachments, list) else [],
        )
        if self._spool_dedup and await self._already_inserted(msg.uuid):
            log.info("spooled msg %s already in the db, skipping", msg.uuid)
            return
        await self.write_to_db(msg)

    async def _already_inserted(self, msg_uuid: str) -> bool:
        async with self._db.connection(BACKEND_TIMEOUT_S) as conn:
            cursor = await conn.execute(_SQL_UUID_EXISTS, (msg_uuid,))
            return await cursor.fetchone() is not None
