"""The contacts indexer: Postgres → the search node, resuming from the newest modified_on in the index.

As rp-indexer v9: a physical index `<alias>_<YYYY_MM_DD>` behind the alias, created (and aliased after
its first fill) when none exists; each pass asks the index for its newest `modified_on_mu`, reads the
contacts modified since then (less 5 s), and bulk-writes them with external versions (modified_on in
nanoseconds) routed by org, deleting inactive contacts. A pass repeats until nothing new comes back.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import psycopg

log = logging.getLogger("indexer")

OVERLAP = timedelta(seconds=5)
FETCH_LIMIT = 100_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_SELECT_MODIFIED = """
SELECT org_id, id, modified_on, is_active, row_to_json(t)::text FROM (
    SELECT id, org_id, uuid, name, language, status, is_active, created_on, modified_on,
           (EXTRACT(EPOCH FROM modified_on) * 1000000)::bigint AS modified_on_mu,
           (SELECT coalesce(json_agg(json_build_object('scheme', u.scheme, 'path', u.path)
                                     ORDER BY u.priority DESC, u.id), '[]'::json)
              FROM contacts_contacturn u WHERE u.contact_id = contacts_contact.id) AS urns,
           (SELECT coalesce(jsonb_agg(jsonb_build_object('field', f.key, 'text', f.value #>> '{}')), '[]'::jsonb)
              FROM jsonb_each(coalesce(contacts_contact.fields, '{}'::jsonb)) f) AS fields,
           current_flow_id AS flow_id,
           (SELECT coalesce(json_agg(DISTINCT r.flow_id), '[]'::json)
              FROM flows_flowrun r WHERE r.contact_id = contacts_contact.id) AS flow_history_ids
      FROM contacts_contact
     WHERE modified_on >= %s
  ORDER BY modified_on ASC
     LIMIT %s
) t
"""

INDEX_DEFINITION: dict[str, Any] = {
    "mappings": {
        "properties": {
            "id": {"type": "long"},
            "org_id": {"type": "integer"},
            "uuid": {"type": "keyword"},
            "name": {"type": "keyword"},
            "language": {"type": "keyword"},
            "status": {"type": "keyword"},
            "is_active": {"type": "boolean"},
            "created_on": {"type": "date"},
            "modified_on": {"type": "date"},
            "modified_on_mu": {"type": "long"},
            "flow_id": {"type": "integer"},
            "flow_history_ids": {"type": "integer"},
            "group_ids": {"type": "integer"},
        }
    }
}


class SearchError(RuntimeError):
    """The search node refused a request."""


@dataclass
class PassStats:
    fetched: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    conflicted: int = 0


def _nanos(moment: datetime) -> int:
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


class ContactIndexer:
    def __init__(self, db_url: str, elastic_url: str, alias: str, shards: int, replicas: int, batch_size: int) -> None:
        self.db_url = db_url
        self.elastic_url = elastic_url.rstrip("/")
        self.alias = alias
        self.shards = shards
        self.replicas = replicas
        self.batch_size = batch_size
        self.last_pass: datetime | None = None
        self.last_error: str | None = None
        self.total_indexed = 0

    async def _request(
        self, http: aiohttp.ClientSession, method: str, path: str, body: Any = None, ndjson: str | None = None
    ) -> tuple[int, Any]:
        headers = {"Content-Type": "application/x-ndjson" if ndjson is not None else "application/json"}
        data = ndjson if ndjson is not None else (json.dumps(body) if body is not None else None)
        async with http.request(method, f"{self.elastic_url}/{path}", data=data, headers=headers) as resp:
            text = await resp.text()
            try:
                return resp.status, json.loads(text) if text else None
            except ValueError:
                return resp.status, text

    async def find_indexes(self, http: aiohttp.ClientSession) -> list[str]:
        status, body = await self._request(http, "GET", self.alias)
        if status != 200 or not isinstance(body, dict):
            return []
        return sorted(body, reverse=True)  # newest day first

    async def create_index(self, http: aiohttp.ClientSession) -> str:
        base = f"{self.alias}_{datetime.now(UTC).strftime('%Y_%m_%d')}"
        name, suffix = base, 0
        while (await self._request(http, "GET", name))[0] != 404:
            suffix += 1
            name = f"{base}_{suffix}"
        definition = {
            **INDEX_DEFINITION,
            "settings": {"index": {"number_of_shards": self.shards, "number_of_replicas": self.replicas}},
        }
        status, body = await self._request(http, "PUT", name, definition)
        if status >= 300:
            raise SearchError(f"creating index {name} answered {status}: {str(body)[:200]}")
        log.info("created new physical index %s", name)
        return name

    async def update_alias(self, http: aiohttp.ClientSession, index: str) -> None:
        actions: list[dict[str, Any]] = [
            {"remove": {"index": old, "alias": self.alias}} for old in await self.find_indexes(http) if old != index
        ]
        actions.append({"add": {"index": index, "alias": self.alias}})
        status, body = await self._request(http, "POST", "_aliases", {"actions": actions})
        if status >= 300:
            raise SearchError(f"updating alias {self.alias} answered {status}: {str(body)[:200]}")
        log.info("alias %s now points at %s", self.alias, index)

    async def last_modified(self, http: aiohttp.ClientSession, index: str) -> datetime:
        query = {
            "sort": [{"modified_on_mu": "desc"}],
            "_source": {"includes": ["modified_on", "id"]},
            "size": 1,
            "track_total_hits": False,
        }
        status, body = await self._request(http, "POST", f"{index}/_search", query)
        if status != 200:
            raise SearchError(f"finding last modified in {index} answered {status}: {str(body)[:200]}")
        hits = body["hits"]["hits"]
        if not hits:
            return EPOCH
        return datetime.fromisoformat(str(hits[0]["_source"]["modified_on"]).replace("Z", "+00:00"))

    async def index_once(self) -> PassStats:
        """One poll: make sure the index exists, then index everything modified since its newest doc."""
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            indexes = await self.find_indexes(http)
            remap = not indexes
            index = indexes[0] if indexes else await self.create_index(http)
            since = await self.last_modified(http, index) - OVERLAP
            stats = await self._index_modified(http, index, max(since, EPOCH))
            if remap:
                await self.update_alias(http, index)
        self.last_pass = datetime.now(UTC)
        self.total_indexed += stats.created + stats.updated
        return stats

    async def _index_modified(self, http: aiohttp.ClientSession, index: str, since: datetime) -> PassStats:
        stats = PassStats()
        async with await psycopg.AsyncConnection.connect(self.db_url, autocommit=True, connect_timeout=10) as conn:
            while True:
                queried_from = since
                batch_created = 0
                lines: list[str] = []
                count = 0
                async with conn.cursor() as cur:
                    await cur.execute(_SELECT_MODIFIED, (since, FETCH_LIMIT))
                    async for org_id, contact_id, modified_on, is_active, doc in cur:
                        count += 1
                        since = modified_on
                        meta = {
                            "_id": contact_id,
                            "version": _nanos(modified_on),
                            "version_type": "external",
                            "routing": org_id,
                        }
                        if is_active:
                            lines.append(json.dumps({"index": meta}))
                            lines.append(doc)
                        else:
                            lines.append(json.dumps({"delete": meta}))
                        if count % self.batch_size == 0:
                            batch_created += await self._bulk(http, index, lines, stats)
                            lines = []
                if lines:
                    batch_created += await self._bulk(http, index, lines, stats)
                stats.fetched += count
                if since == queried_from and batch_created == 0:
                    return stats

    async def _bulk(self, http: aiohttp.ClientSession, index: str, lines: list[str], stats: PassStats) -> int:
        status, body = await self._request(http, "PUT", f"{index}/_bulk", ndjson="\n".join(lines) + "\n")
        if status != 200 or not isinstance(body, dict):
            raise SearchError(f"bulk indexing into {index} answered {status}: {str(body)[:200]}")
        created = 0
        for item in body.get("items", []):
            action, result = next(iter(item.items()))
            code = int(result.get("status", 0))
            if code == 409:
                stats.conflicted += 1
            elif action == "delete" and code == 200:
                stats.deleted += 1
            elif code == 201:
                created += 1
                stats.created += 1
            elif code == 200:
                stats.updated += 1
            elif action != "delete":
                log.error("error indexing document %s: %s", result.get("_id"), result.get("error"))
        return created
