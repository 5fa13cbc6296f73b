"""Contact search through Elasticsearch, with v9's flaw: a client that failed at start stays absent.

Only query starts search; contact- and URN-only starts never touch it. The REST calls are made with
aiohttp: the elasticsearch 7.13.4 client cannot be imported beside NumPy 2 (it touches `np.float_`).
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp

log = logging.getLogger("mailroom.search")

CONTACTS_INDEX = "contacts"
MAX_RESULTS = 10000
TIMEOUT = aiohttp.ClientTimeout(total=10)


class SearchUnavailable(RuntimeError):
    """No Elasticsearch client: it was unreachable when mailroom started."""


class SearchFailed(RuntimeError):
    """Elasticsearch answered a search with an error."""


async def ping(url: str) -> bool:
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as http, http.get(url.rstrip("/") + "/") as resp:
            return resp.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


class ContactSearch:
    def __init__(self, url: str, nil_client_at_start: bool) -> None:
        self._url = url.rstrip("/")
        self._nil_client_at_start = nil_client_at_start
        self._has_client = False

    @property
    def available(self) -> bool:
        return self._has_client

    async def connect(self) -> None:
        if await ping(self._url):
            log.info("elastic ok")
            self._has_client = True
        elif self._nil_client_at_start:
            log.error("elastic search not available (%s): searches fail until restart", self._url)
        else:
            log.warning("elastic search not reachable at start (%s): will retry on demand", self._url)
            self._has_client = True

    async def contact_ids(self, org_id: int, query: str) -> list[int]:
        if not self._has_client:
            raise SearchUnavailable(f"no elastic client (unreachable at start: {self._url})")
        body: dict[str, Any] = {
            "_source": False,
            "size": MAX_RESULTS,
            "query": {
                "bool": {
                    "filter": [{"term": {"org_id": org_id}}],
                    "must": [{"query_string": {"query": query, "default_operator": "AND"}}],
                }
            },
        }
        async with (
            aiohttp.ClientSession(timeout=TIMEOUT) as http,
            http.post(f"{self._url}/{CONTACTS_INDEX}/_search", json=body) as resp,
        ):
            if resp.status != 200:
                raise SearchFailed(f"search of {CONTACTS_INDEX} answered {resp.status}: {(await resp.text())[:200]}")
            result = await resp.json()
        return [int(hit["_id"]) for hit in result["hits"]["hits"]]
