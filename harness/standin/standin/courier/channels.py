"""Channels and courier's in-memory channel cache (entries live a fixed time, no refresh on hit)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from .db import Database


class ChannelNotFound(LookupError):
    def __str__(self) -> str:
        return "channel not found"


@dataclass(frozen=True)
class Channel:
    id: int
    uuid: str
    org_id: int
    channel_type: str
    name: str
    address: str
    tps: int
    config: dict[str, Any] = field(default_factory=dict)

    def string_config(self, key: str, default: str) -> str:
        value = self.config.get(key, default)
        return value if isinstance(value, str) else default

    def int_config(self, key: str, default: int) -> int:
        value = self.config.get(key, default)
        if isinstance(value, bool):
            return default
        if isinstance(value, int | float):
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                return default
        return default


_SQL_CHANNEL_BY_UUID = """
SELECT c.id, c.uuid::text AS uuid, c.org_id, c.channel_type, c.name, c.address, c.tps, c.config
  FROM channels_channel c
  JOIN orgs_org o ON c.org_id = o.id
 WHERE c.uuid = %s AND c.is_active = TRUE AND c.org_id IS NOT NULL
"""


async def load_channel(db: Database, uuid: str) -> Channel:
    async with db.connection() as conn:
        cursor = await conn.execute(_SQL_CHANNEL_BY_UUID, (uuid,))
        row = await cursor.fetchone()
    if row is None:
        raise ChannelNotFound()
    return Channel(
        id=row["id"],
        uuid=row["uuid"],
        org_id=row["org_id"],
        channel_type=row["channel_type"],
        name=row["name"] or "",
        address=row["address"] or "",
        tps=row["tps"] or 0,
        config=dict(row["config"] or {}),
    )


class ChannelCache:
    """Channels by uuid for `ttl_s` seconds after they were fetched; one fetch at a time per uuid."""

    def __init__(self, db: Database, ttl_s: float) -> None:
        self._db = db
        self._ttl_s = ttl_s
        self._entries: dict[str, tuple[float, Channel]] = {}
        self._fetches: dict[str, asyncio.Future[Channel]] = {}

    async def get(self, uuid: str) -> Channel:
        entry = self._entries.get(uuid)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        pending = self._fetches.get(uuid)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Channel] = asyncio.get_running_loop().create_future()
        self._fetches[uuid] = future
        try:
            channel = await load_channel(self._db, uuid)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here so an unawaited failure is not reported as lost
            raise
        finally:
            self._fetches.pop(uuid, None)
        self._entries[uuid] = (time.monotonic() + self._ttl_s, channel)
        future.set_result(channel)
        return channel
