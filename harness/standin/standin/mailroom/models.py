"""Rows mailroom reads from RapidPro's schema, and the queries that load them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

# RapidPro v9's channel tps when the column is NULL
DEFAULT_TPS = 10


@dataclass(frozen=True)
class ContactURN:
    id: int
    identity: str
    scheme: str
    path: str
    channel_id: int | None
    priority: int


@dataclass
class Contact:
    id: int
    uuid: str
    org_id: int
    name: str | None
    language: str | None
    fields: dict[str, Any]
    status: str
    current_flow_id: int | None
    urns: list[ContactURN] = field(default_factory=list)


@dataclass(frozen=True)
class Channel:
    id: int
    uuid: str
    tps: int
    is_active: bool


@dataclass(frozen=True)
class Session:
    id: int
    uuid: str
    status: str
    output: dict[str, Any]
    current_flow_id: int | None
    timeout_on: datetime | None


async def load_contact(conn: AsyncConnection[Any], org_id: int, contact_id: int) -> Contact | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT id, uuid::text AS uuid, org_id, name, language, fields, status, current_flow_id "
            "FROM contacts_contact WHERE id = %s AND org_id = %s AND is_active",
            (contact_id, org_id),
        )
        row = await cur.fetchone()
        if row is None:
            return None
        await cur.execute(
            "SELECT id, identity, scheme, path, channel_id, priority FROM contacts_contacturn "
            "WHERE contact_id = %s ORDER BY priority DESC, id ASC",
            (contact_id,),
        )
        urns = [ContactURN(**u) for u in await cur.fetchall()]
    return Contact(
        id=row["id"],
        uuid=row["uuid"],
        org_id=row["org_id"],
        name=row["name"],
        language=row["language"],
        fields=dict(row["fields"] or {}),
        status=row["status"],
        current_flow_id=row["current_flow_id"],
        urns=urns,
    )


async def find_waiting_session(conn: AsyncConnection[Any], contact_id: int) -> Session | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT id, uuid::text AS uuid, status, output, current_flow_id, timeout_on "
            "FROM flows_flowsession WHERE contact_id = %s AND status = 'W' AND session_type = 'M' "
            "ORDER BY created_on DESC, id DESC LIMIT 1",
            (contact_id,),
        )
        row = await cur.fetchone()
    if row is None:
        return None
    return Session(
        id=row["id"],
        uuid=row["uuid"],
        status=row["status"],
        output=dict(row["output"] or {}),
        current_flow_id=row["current_flow_id"],
        timeout_on=row["timeout_on"],
    )


async def has_run_in_flow(conn: AsyncConnection[Any], contact_id: int, flow_id: int) -> bool:
    async with conn.cursor() as cur:
        await cur.execute(
            "SELECT 1 FROM flows_flowrun WHERE contact_id = %s AND flow_id = %s LIMIT 1", (contact_id, flow_id)
        )
        return await cur.fetchone() is not None
