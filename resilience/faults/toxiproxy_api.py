"""A small client of the Toxiproxy HTTP API on a proxy node (reached through its published port)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from resilience.faults.base import FaultError

if TYPE_CHECKING:
    from resilience.backends.base import Backend

API_PORT = 8474
TOXIC_PREFIX = "rs_"


def toxic_name(fault_id: str) -> str:
    return f"{TOXIC_PREFIX}{fault_id}"


class ToxiproxyApi:
    def __init__(self, run: Backend, node: str, timeout: float = 5.0) -> None:
        self.node = node
        self.base = run.url(node, API_PORT)
        self.timeout = timeout

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        try:
            return httpx.request(method, f"{self.base}{path}", json=body, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise FaultError(f"{self.node}: Toxiproxy API {method} {path} failed: {exc}") from None

    def proxies(self) -> dict[str, dict[str, Any]]:
        response = self._request("GET", "/proxies")
        if response.status_code != 200:
            raise FaultError(f"{self.node}: GET /proxies answered {response.status_code}: {response.text.strip()}")
        proxies: dict[str, dict[str, Any]] = response.json()
        return proxies

    def toxics(self, proxy: str) -> list[dict[str, Any]]:
        response = self._request("GET", f"/proxies/{proxy}/toxics")
        if response.status_code == 404:
            raise FaultError(f"{self.node}: no proxy {proxy!r}; proxies: {', '.join(self.proxies())}")
        toxics: list[dict[str, Any]] = response.json()
        return toxics

    def add_toxic(self, proxy: str, toxic: dict[str, Any]) -> dict[str, Any]:
        response = self._request("POST", f"/proxies/{proxy}/toxics", toxic)
        if response.status_code == 404:
            raise FaultError(f"{self.node}: no proxy {proxy!r}; proxies: {', '.join(self.proxies())}")
        if response.status_code != 200:
            raise FaultError(
                f"{self.node}: Toxiproxy refused toxic {toxic.get('name')} on {proxy} "
                f"({response.status_code}): {response.text.strip()}"
            )
        created: dict[str, Any] = response.json()
        return created

    def remove_toxic(self, proxy: str, name: str) -> bool:
        """Delete a toxic; False when it was not there (already removed)."""
        response = self._request("DELETE", f"/proxies/{proxy}/toxics/{name}")
        if response.status_code == 404:
            return False
        if response.status_code not in (200, 204):
            raise FaultError(f"{self.node}: DELETE toxic {name} on {proxy} answered {response.status_code}")
        return True
