"""Contact search through Elasticsearch, with v9's flaw: a client that failed at start stays absent.

Only query starts search; contact- and URN-only starts never touch it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from elasticsearch import Elasticsearch

log = logging.getLogger("mailroom.search")

CONTACTS_INDEX = "contacts"
MAX_RESULTS = 10000


class SearchUnavailable(RuntimeError):
    """No Elasticsearch client: it was unreachable when mailroom started."""


class ContactSearch:
    def __init__(self, url: str, nil_client_at_start: bool) -> None:
        self._url = url
        self._nil_client_at_start = nil_client_at_start
        self._client: Elasticsearch | None = None

    @property
    def available(self) -> bool:
        return self._client is not None

    async def connect(self) -> None:
        client = Elasticsearch([self._url], timeout=10, max_retries=0)
        reachable = await asyncio.to_thread(client.ping)
        if reachable:
            log.info("elastic ok")
            self._client = client
        elif self._nil_client_at_start:
            log.error("elastic search not available (%s): searches fail until restart", self._url)
        else:
            log.warning("elastic search not reachable at start (%s): will retry on demand", self._url)
            self._client = client

    async def contact_ids(self, org_id: int, query: str) -> list[int]:
        if self._client is None:
            raise SearchUnavailable(f"no elastic client (unreachable at start: {self._url})")
        body: dict[str, Any] = {
            "_source": False,
            "size": MAX_RESULTS,
            "query": {
                "bool": {
                    "filter": [{"term": {"org_id": org_id}}, {"term": {"is_active": True}}],
                    "must": [{"query_string": {"query": query, "default_operator": "AND"}}],
                }
            },
        }
        result = await asyncio.to_thread(self._client.search, index=CONTACTS_INDEX, body=body)
        return [int(hit["_id"]) for hit in result["hits"]["hits"]]
