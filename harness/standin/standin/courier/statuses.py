"""Message status updates and the batch writer that commits them (in memory until the batch is flushed)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field

from .db import Database
from .spool import write_to_spool
from .timefmt import rfc3339, utcnow

log = logging.getLogger("courier.statuses")

SPOOL_SUBDIR = "statuses"
MAX_BATCH = 1000

# E walks the message to F on its third error and schedules a retry otherwise; sent_on is kept from
# the first time the message was wired
_SQL_UPDATE_STATUS = """
UPDATE msgs_msg SET
  status = CASE WHEN %(status)s::text = 'E'
                THEN CASE WHEN error_count >= 2 OR status = 'F' THEN 'F' ELSE 'E' END
                ELSE %(status)s::text END,
  error_count = CASE WHEN %(status)s::text = 'E' THEN error_count + 1 ELSE error_count END,
  next_attempt = CASE WHEN %(status)s::text = 'E'
                      THEN NOW() + (5 * (error_count + 1) * interval '1 minute')
                      ELSE next_attempt END,
  sent_on = CASE WHEN %(status)s::text IN ('W', 'S', 'D') THEN COALESCE(sent_on, NOW()) ELSE NULL END,
  external_id = CASE WHEN %(external_id)s::text != '' THEN %(external_id)s::text ELSE external_id END,
  modified_on = NOW()
WHERE id = %(msg_id)s AND channel_id = %(channel_id)s AND direction = 'O'
"""


@dataclass(frozen=True)
class StatusUpdate:
    channel_uuid: str
    channel_id: int
    msg_id: int
    status: str
    external_id: str = ""
    modified_on: str = field(default_factory=lambda: rfc3339(utcnow()))


async def write_statuses_to_db(db: Database, updates: list[StatusUpdate]) -> None:
    params = [
        {"status": u.status, "external_id": u.external_id, "msg_id": u.msg_id, "channel_id": u.channel_id}
        for u in updates
    ]
    async with db.connection() as conn, conn.transaction(), conn.cursor() as cursor:
        await cursor.executemany(_SQL_UPDATE_STATUS, params)


class StatusWriter:
    """Collects updates and commits them at most `max_age_s` after the oldest one was queued."""

    def __init__(self, db: Database, spool_dir: str, max_age_s: float) -> None:
        self._db = db
        self._spool_dir = spool_dir
        self._max_age_s = max_age_s
        self._batch: list[StatusUpdate] = []
        self._first_queued: float | None = None
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="status-writer")

    def queue(self, update: StatusUpdate) -> None:
        if not self._batch:
            self._first_queued = time.monotonic()
        self._batch.append(update)
        self._wakeup.set()

    async def stop(self) -> None:
        """Write whatever is still queued, then end."""
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while True:
            if self._stopping:
                while self._batch:
                    await self._flush()
                return
            if not self._batch:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            assert self._first_queued is not None
            remaining = self._first_queued + self._max_age_s - time.monotonic()
            if remaining > 0 and len(self._batch) < MAX_BATCH:
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), timeout=remaining)
                continue
            await self._flush()

    async def _flush(self) -> None:
        batch, self._batch = self._batch[:MAX_BATCH], self._batch[MAX_BATCH:]
        self._first_queued = time.monotonic() if self._batch else None
        try:
            await write_statuses_to_db(self._db, batch)
            return
        except Exception as exc:
            log.warning("batch of %d statuses failed (%s), retrying one at a time", len(batch), exc)
        for update in batch:
            try:
                await write_statuses_to_db(self._db, [update])
            except Exception as exc:
                log.error("error writing status of msg %s: %s", update.msg_id, exc)
                try:
                    write_to_spool(self._spool_dir, SPOOL_SUBDIR, asdict(update))
                except OSError as spool_exc:
                    log.error("error spooling status of msg %s: %s", update.msg_id, spool_exc)

    async def flush_spooled(self, contents: bytes) -> None:
        document = json.loads(contents)
        update = StatusUpdate(
            channel_uuid=str(document["channel_uuid"]),
            channel_id=int(document["channel_id"]),
            msg_id=int(document["msg_id"]),
            status=str(document["status"]),
            external_id=str(document.get("external_id", "")),
        )
        await write_statuses_to_db(self._db, [update])
