"""An org's flows, keyword triggers and channels, cached per process.

As real mailroom v9.2.2 (core/models/assets.go): an org's assets are loaded once, kept 5 s from their
load (a hit does not extend them) and reloaded after that, one load per org at a time; within those 5 s
no task needs the database for them. The older switch keeps the stand-in's former check instead: a cheap
fingerprint query (counts and newest modification) on every use, reloading when it changed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from standin.flows import Engine, Flow, FlowError, load_flow
from standin.flows.text import collate_equals, tokenize
from standin.mailroom.dbpool import DbPool
from standin.mailroom.models import DEFAULT_TPS, Channel

log = logging.getLogger("mailroom.assets")

KEYWORD_TRIGGER = "K"
CATCHALL_TRIGGER = "C"
MATCH_FIRST_WORD = "F"
MATCH_ONLY_WORD = "O"


@dataclass(frozen=True)
class FlowAsset:
    id: int
    uuid: str
    name: str
    expire_after_minutes: int | None
    ignore_triggers: bool


@dataclass(frozen=True)
class Trigger:
    id: int
    trigger_type: str
    keywords: tuple[str, ...]
    match_type: str
    flow_id: int


@dataclass
class OrgAssets:
    org_id: int
    fingerprint: tuple[Any, ...]
    engine: Engine | None
    flows_by_id: dict[int, FlowAsset]
    flows_by_uuid: dict[str, FlowAsset]
    triggers: list[Trigger]
    channels: dict[int, Channel]

    def flow(self, flow_id: int | None) -> FlowAsset | None:
        return None if flow_id is None else self.flows_by_id.get(flow_id)

    def channel(self, channel_id: int | None) -> Channel | None:
        return None if channel_id is None else self.channels.get(channel_id)

    def default_channel(self) -> Channel | None:
        active = [c for c in self.channels.values() if c.is_active]
        return min(active, key=lambda c: c.id) if active else None

    def match_trigger(self, text: str) -> tuple[Trigger | None, str]:
        """The keyword trigger matching the first (or only) word, else a catch-all; and the keyword."""
        words = tokenize(text)
        keyword = words[0] if words else ""
        only = len(words) == 1
        if keyword:
            for trigger in self.triggers:
                if trigger.trigger_type != KEYWORD_TRIGGER:
                    continue
                for candidate in trigger.keywords:
                    if collate_equals(candidate, keyword) and (
                        trigger.match_type == MATCH_FIRST_WORD or (trigger.match_type == MATCH_ONLY_WORD and only)
                    ):
                        return trigger, candidate
        for trigger in self.triggers:
            if trigger.trigger_type == CATCHALL_TRIGGER:
                return trigger, ""
        return None, ""


ORG_CACHE_TTL = 5.0


class AssetCache:
    def __init__(self, ttl: float | None = ORG_CACHE_TTL) -> None:
        """`ttl` None: the fingerprint check on every use instead of the 5 s cache."""
        self._ttl = ttl
        self._by_org: dict[int, OrgAssets] = {}
        self._loaded_at: dict[int, float] = {}
        self._loading: dict[int, asyncio.Future[OrgAssets]] = {}

    async def get(self, conn: AsyncConnection[Any], org_id: int) -> OrgAssets:
        """The org's assets, read with `conn` if they must be (re)loaded."""
        if self._ttl is None:
            fingerprint = await _fingerprint(conn, org_id)
            cached = self._by_org.get(org_id)
            if cached is not None and cached.fingerprint == fingerprint:
                return cached
            assets = await _load(conn, org_id, fingerprint)
            self._by_org[org_id] = assets
            return assets
        return self._fresh(org_id) or await self._load_once(org_id, lambda: _load(conn, org_id, ()))

    async def for_task(self, db: DbPool, org_id: int) -> OrgAssets:
        """As `get`, taking a connection from `db` only when a load is due (tasks.Perform's assets)."""
        if self._ttl is None:
            async with db.connection() as conn:
                return await self.get(conn, org_id)

        async def load() -> OrgAssets:
            async with db.connection() as conn:
                return await _load(conn, org_id, ())

        return self._fresh(org_id) or await self._load_once(org_id, load)

    def _fresh(self, org_id: int) -> OrgAssets | None:
        loaded_at = self._loaded_at.get(org_id)
        if loaded_at is None or self._ttl is None or time.monotonic() - loaded_at >= self._ttl:
            return None
        return self._by_org[org_id]

    async def _load_once(self, org_id: int, load: Callable[[], Awaitable[OrgAssets]]) -> OrgAssets:
        """Whoever finds the org's assets expired while another load runs waits for that load and shares its
        result or its error (assets.go: loadOrgAssetsOnce)."""
        pending = self._loading.get(org_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[OrgAssets] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve_exception)
        self._loading[org_id] = future
        try:
            assets = await load()
        except BaseException as exc:
            future.set_exception(exc if isinstance(exc, Exception) else RuntimeError("asset load cancelled"))
            raise
        else:
            self._by_org[org_id] = assets
            self._loaded_at[org_id] = time.monotonic()
            future.set_result(assets)
            return assets
        finally:
            del self._loading[org_id]


def _retrieve_exception(future: asyncio.Future[OrgAssets]) -> None:
    # a load nobody else waited for must not be reported as an unretrieved exception
    if not future.cancelled():
        future.exception()


async def _fingerprint(conn: AsyncConnection[Any], org_id: int) -> tuple[Any, ...]:
    async with conn.cursor() as cur:
        await cur.execute(
            """
            SELECT (SELECT count(*) FROM flows_flow WHERE org_id = %(org)s AND is_active),
                   (SELECT max(modified_on) FROM flows_flow WHERE org_id = %(org)s),
                   (SELECT coalesce(sum(id), 0) FROM flows_flow WHERE org_id = %(org)s AND is_active),
                   (SELECT coalesce(array_agg(ROW(id, is_active, keywords, match_type, flow_id)::text
                                              ORDER BY id), '{}')
                      FROM triggers_trigger WHERE org_id = %(org)s),
                   (SELECT coalesce(array_agg(ROW(id, uuid, tps, is_active)::text ORDER BY id), '{}')
                      FROM channels_channel WHERE org_id = %(org)s)
            """,
            {"org": org_id},
        )
        row = await cur.fetchone()
    assert row is not None
    return tuple(str(v) for v in row)


async def _load(conn: AsyncConnection[Any], org_id: int, fingerprint: tuple[Any, ...]) -> OrgAssets:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT id, uuid::text AS uuid, name, definition FROM flows_flow "
            "WHERE org_id = %s AND is_active ORDER BY id",
            (org_id,),
        )
        flow_rows = await cur.fetchall()
        await cur.execute(
            "SELECT id, trigger_type, keywords, match_type, flow_id FROM triggers_trigger "
            "WHERE org_id = %s AND is_active AND flow_id IS NOT NULL ORDER BY id",
            (org_id,),
        )
        trigger_rows = await cur.fetchall()
        await cur.execute(
            "SELECT id, uuid::text AS uuid, tps, is_active FROM channels_channel WHERE org_id = %s",
            (org_id,),
        )
        channel_rows = await cur.fetchall()

    flows_by_id: dict[int, FlowAsset] = {}
    loaded: dict[str, Flow] = {}
    for row in flow_rows:
        definition = row["definition"] or {}
        try:
            flow = load_flow(definition, source=f"flows_flow {row['id']}")
            loaded[flow.uuid] = flow
        except FlowError as exc:
            # a broken definition must not stop the org's other flows (real mailroom fails that flow)
            log.error("flow %s (%s) cannot be loaded: %s", row["id"], row["name"], exc)
            continue
        expire = definition.get("expire_after_minutes")
        flows_by_id[row["id"]] = FlowAsset(
            id=row["id"],
            uuid=row["uuid"],
            name=row["name"],
            expire_after_minutes=int(expire) if isinstance(expire, int | float) else None,
            ignore_triggers=bool(definition.get("ignore_triggers", False)),
        )
    engine: Engine | None = None
    try:
        engine = Engine(loaded) if loaded else None
    except FlowError as exc:
        log.error("org %s: flows cannot run together: %s", org_id, exc)
    triggers = [
        Trigger(
            id=r["id"],
            trigger_type=r["trigger_type"],
            keywords=tuple(r["keywords"] or ()),
            match_type=r["match_type"] or MATCH_FIRST_WORD,
            flow_id=r["flow_id"],
        )
        for r in trigger_rows
    ]
    channels = {
        r["id"]: Channel(
            id=r["id"],
            uuid=r["uuid"],
            tps=r["tps"] if r["tps"] is not None else DEFAULT_TPS,
            is_active=r["is_active"],
        )
        for r in channel_rows
    }
    return OrgAssets(
        org_id=org_id,
        fingerprint=fingerprint,
        engine=engine,
        flows_by_id=flows_by_id,
        flows_by_uuid={f.uuid: f for f in flows_by_id.values()},
        triggers=triggers,
        channels=channels,
    )
