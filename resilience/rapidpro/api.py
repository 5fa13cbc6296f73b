"""RapidPro's web API v2: token auth, cursor pagination, and back-off when throttled (429)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx


class ApiError(RuntimeError):
    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path} answered {status}: {body[:300]}")
        self.status = status


class ApiClient:
    def __init__(
        self, base_url: str, token: str, timeout: float = 15.0, max_throttle_wait: float = 30.0
    ) -> None:
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Token {token}", "Accept": "application/json"},
            timeout=timeout,
        )
        self._max_throttle_wait = max_throttle_wait

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        waited = 0.0
        while True:
            response = self._client.request(method, path, **kwargs)
            if response.status_code != 429:
                return response
            # Throttled: RapidPro says how long in Retry-After; back off, but bounded.
            delay = min(float(response.headers.get("Retry-After", "1") or 1), 5.0)
            if waited + delay > self._max_throttle_wait:
                return response
            time.sleep(delay)
            waited += delay

    def get(self, endpoint: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Every result of `GET /api/v2/<endpoint>.json`, following the `next` cursor."""
        url: str | None = f"/api/v2/{endpoint}.json"
        query: dict[str, Any] | None = {k: v for k, v in params.items() if v is not None}
        while url:
            response = self._request("GET", url, params=query)
            if response.status_code != 200:
                raise ApiError("GET", url, response.status_code, response.text)
            page = response.json()
            yield from page.get("results", [])
            url, query = page.get("next"), None

    def post(self, endpoint: str, payload: dict[str, Any]) -> dict[str, Any]:
        path = f"/api/v2/{endpoint}.json"
        response = self._request("POST", path, json=payload)
        if response.status_code not in (200, 201):
            raise ApiError("POST", path, response.status_code, response.text)
        result: dict[str, Any] = response.json()
        return result

    def start_flow(self, flow_uuid: str, urns: list[str], restart_participants: bool = True) -> dict[str, Any]:
        return self.post(
            "flow_starts", {"flow": flow_uuid, "urns": urns, "restart_participants": restart_participants}
        )

    def close(self) -> None:
        self._client.close()
