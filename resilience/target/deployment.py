"""What a target's deployment says about the target's channel, org and flows: read-only lookups, nothing written.

The channel's type and send URL are read from the database (RapidPro's API v2 `channels` endpoint shows
neither); flows come from the API, so that they are the token's org's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import redis
from psycopg import sql
from psycopg.rows import dict_row

from resilience.rapidpro.api import ApiError
from resilience.topology.errors import did_you_mean

CONNECT_TIMEOUT = 5  # seconds

# The tables the snapshot, quiescence and target check read (resilience/rapidpro/db.py and this module).
SNAPSHOT_TABLES = (
    "msgs_msg",
    "contacts_contact",
    "contacts_contacturn",
    "channels_channel",
    "orgs_org",
    "flows_flow",
    "flows_flowrun",
    "flows_flowsession",
)

CHANNEL_SQL = """
SELECT c.uuid::text AS uuid, c.channel_type, c.config::text AS config, c.is_active,
       o.id AS org_id, o.uuid::text AS org_uuid
  FROM channels_channel c
  JOIN orgs_org o ON o.id = c.org_id
 WHERE c.uuid = %(uuid)s::uuid
"""

FLOW_ORGS_SQL = "SELECT DISTINCT org_id FROM flows_flow WHERE uuid = ANY(%(uuids)s::uuid[])"


@dataclass(frozen=True)
class ChannelRow:
    uuid: str
    channel_type: str
    send_url: str | None  # None: the config has no send_url
    is_active: bool
    org_id: int
    org_uuid: str


class DeploymentReader:
    """Read-only questions to the target's database (and Redis): each call opens its own short connection."""

    def __init__(self, dsn: str, redis_url: str | None = None) -> None:
        self.dsn = dsn
        self.redis_url = redis_url

    def _connect(self) -> psycopg.Connection[dict[str, Any]]:
        return psycopg.connect(self.dsn, connect_timeout=CONNECT_TIMEOUT, autocommit=True, row_factory=dict_row)

    def channel(self, channel_uuid: str) -> ChannelRow | None:
        """The channel's row (with its org), or None when no channel has that uuid."""
        with self._connect() as conn:
            row = conn.execute(CHANNEL_SQL, {"uuid": channel_uuid}).fetchone()
        if row is None:
            return None
        send_url = _config(row["config"]).get("send_url")
        return ChannelRow(
            uuid=row["uuid"],
            channel_type=str(row["channel_type"]),
            send_url=str(send_url) if send_url is not None else None,
            is_active=bool(row["is_active"]),
            org_id=int(row["org_id"]),
            org_uuid=str(row["org_uuid"]),
        )

    def unreadable_tables(self) -> dict[str, str]:
        """Each snapshot table the role cannot read, with why (a missing grant or table); {} when all read."""
        problems: dict[str, str] = {}
        with self._connect() as conn:
            for table in SNAPSHOT_TABLES:
                try:
                    conn.execute(sql.SQL("SELECT 1 FROM {} LIMIT 0").format(sql.Identifier(table)))
                except psycopg.errors.InsufficientPrivilege:
                    problems[table] = "no SELECT privilege"
                except psycopg.errors.UndefinedTable:
                    problems[table] = "no such table"
        return problems

    def writable_tables(self) -> list[str]:
        """Snapshot tables the role could write: a read-only role has none."""
        query = "SELECT has_table_privilege(%(table)s, 'INSERT,UPDATE,DELETE') AS writable"
        with self._connect() as conn:
            rows = {table: conn.execute(query, {"table": table}).fetchone() for table in SNAPSHOT_TABLES}
        return [table for table, row in rows.items() if row and row["writable"]]

    def flow_orgs(self, flow_uuids: list[str]) -> set[int]:
        """The orgs the flows with these uuids belong to."""
        with self._connect() as conn:
            rows = conn.execute(FLOW_ORGS_SQL, {"uuids": flow_uuids}).fetchall()
        return {int(r["org_id"]) for r in rows}

    def ping_redis(self) -> None:
        """Raises when the target's Redis does not answer PING (or it names none)."""
        if self.redis_url is None:
            raise ValueError("the target names no redis URL")
        client = redis.Redis.from_url(self.redis_url, socket_timeout=CONNECT_TIMEOUT)
        try:
            client.ping()
        finally:
            client.close()


def _config(raw: object) -> dict[str, Any]:
    """A channel's config: jsonb in RapidPro v7 and later; a text column of JSON before (still read)."""
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(str(raw or "{}"))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class FlowResolution:
    flows: dict[str, str]  # name -> uuid, for every flow found
    problems: dict[str, str]  # name -> what is wrong and how to fix it


def org_flows(http: httpx.Client, lb_url: str, api_token: str) -> list[dict[str, Any]]:
    """Every flow of the token's org (API v2 `flows`, following its cursor); ApiError for any answer but 200."""
    url: str | None = f"{lb_url.rstrip('/')}/api/v2/flows.json"
    headers = {"Authorization": f"Token {api_token}", "Accept": "application/json"}
    flows: list[dict[str, Any]] = []
    while url:
        response = http.get(url, headers=headers)
        if response.status_code != 200:
            raise ApiError("GET", "/api/v2/flows.json", response.status_code, response.text)
        page = response.json()
        flows.extend(page.get("results", []))
        url = page.get("next")
    return flows


def resolve_flows(wanted: dict[str, str], available: list[dict[str, Any]]) -> FlowResolution:
    """The target's flows against the org's: a uuid must be one of its flows; a name alone must name exactly one."""
    by_uuid = {str(f.get("uuid", "")).lower(): f for f in available}
    names = [str(f.get("name", "")) for f in available]
    found: dict[str, str] = {}
    problems: dict[str, str] = {}
    for name, uuid in wanted.items():
        if uuid:
            if uuid in by_uuid:
                found[name] = uuid
            else:
                problems[name] = (
                    f"no flow {uuid} in the token's org; import fixtures/flows into it, or correct the uuid"
                    + did_you_mean(name, names).replace("did you mean", "a flow is named")
                )
            continue
        matching = [str(f["uuid"]) for f in available if str(f.get("name", "")) == name]
        if len(matching) == 1:
            found[name] = matching[0]
        elif not matching:
            problems[name] = "no flow of that name in the token's org; import fixtures/flows into it" + did_you_mean(
                name, names
            )
        else:
            problems[name] = f"{len(matching)} flows have that name ({', '.join(matching)}); write the uuid to use"
    return FlowResolution(found, problems)
