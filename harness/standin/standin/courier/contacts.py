"""Contact and URN get-or-create for an inbound message, racing safely with other couriers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import DictRow

from .channels import Channel
from .timefmt import utcnow
from .urns import URN

DEFAULT_URN_PRIORITY = 1000
MAX_RACE_RETRIES = 5

_SQL_CONTACT_BY_URN = """
SELECT c.id, c.uuid::text AS uuid, u.id AS urn_id
  FROM contacts_contact c
  JOIN contacts_contacturn u ON u.contact_id = c.id
 WHERE u.identity = %s AND u.org_id = %s AND c.is_active = TRUE
"""

_SQL_URN_AFFINITY = """
UPDATE contacts_contacturn SET channel_id = %s WHERE id = %s AND channel_id IS DISTINCT FROM %s
"""

_SQL_INSERT_CONTACT = """
INSERT INTO contacts_contact (org_id, uuid, name, language, fields, status, is_active, current_flow_id,
                              created_on, modified_on)
VALUES (%s, %s, NULL, NULL, '{}'::jsonb, 'A', TRUE, NULL, %s, %s)
RETURNING id
"""

_SQL_URN_FOR_UPDATE = """
SELECT id, contact_id FROM contacts_contacturn WHERE org_id = %s AND identity = %s FOR UPDATE
"""

_SQL_INSERT_URN = """
INSERT INTO contacts_contacturn (org_id, contact_id, identity, scheme, path, channel_id, priority)
VALUES (%s, %s, %s, %s, %s, %s, %s)
RETURNING id
"""


@dataclass(frozen=True)
class ContactRef:
    id: int
    urn_id: int
    is_new: bool


async def contact_for_urn(conn: AsyncConnection[DictRow], channel: Channel, urn: URN) -> ContactRef:
    """The contact owning `urn` in the channel's org, created with the URN if there is none."""
    for _ in range(MAX_RACE_RETRIES):
        cursor = await conn.execute(_SQL_CONTACT_BY_URN, (urn.identity, channel.org_id))
        row = await cursor.fetchone()
        if row is not None:
            await conn.execute(_SQL_URN_AFFINITY, (channel.id, row["urn_id"], channel.id))
            return ContactRef(id=row["id"], urn_id=row["urn_id"], is_new=False)
        created = await _create_contact(conn, channel, urn)
        if created is not None:
            return created
    raise RuntimeError(f"could not get or create a contact for {urn.identity} (lost {MAX_RACE_RETRIES} races)")


async def _create_contact(conn: AsyncConnection[DictRow], channel: Channel, urn: URN) -> ContactRef | None:
    """Insert a contact and take the URN; None when another writer got the URN first (start over)."""
    now = utcnow()
    try:
        async with conn.transaction():
            cursor = await conn.execute(_SQL_INSERT_CONTACT, (channel.org_id, str(uuid.uuid4()), now, now))
            contact_row = await cursor.fetchone()
            assert contact_row is not None
            contact_id = int(contact_row["id"])
            cursor = await conn.execute(_SQL_URN_FOR_UPDATE, (channel.org_id, urn.identity))
            urn_row = await cursor.fetchone()
            if urn_row is None:
                cursor = await conn.execute(
                    _SQL_INSERT_URN,
                    (channel.org_id, contact_id, urn.identity, urn.scheme, urn.path, channel.id, DEFAULT_URN_PRIORITY),
                )
                inserted = await cursor.fetchone()
                assert inserted is not None
                urn_id = int(inserted["id"])
            elif urn_row["contact_id"] is None:
                # an orphaned URN is taken over by the new contact
                await conn.execute(
                    "UPDATE contacts_contacturn SET contact_id = %s, channel_id = %s WHERE id = %s",
                    (contact_id, channel.id, urn_row["id"]),
                )
                urn_id = int(urn_row["id"])
            else:
                raise _URNTaken()
    except (_URNTaken, psycopg.errors.UniqueViolation):
        return None
    return ContactRef(id=contact_id, urn_id=urn_id, is_new=True)


class _URNTaken(Exception):
    """Another writer attached the URN to a contact between our lookup and our insert."""
