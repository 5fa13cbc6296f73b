"""Reads what the simulated aggregator (the phone network's side) received from courier, and configures it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from resilience.snapshot import Delivery


@dataclass(frozen=True)
class AggregatorConfig:
    status: int = 200
    error_rate: float = 0.0
    latency_ms: int = 0
    delivered_delay_ms: int = 1000


class AggregatorClient:
    def __init__(self, base_url: str, timeout: float = 5.0) -> None:
        self._client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)

    def records(self, after: int = 0) -> list[Delivery]:
        response = self._client.get("/records", params={"after": after})
        response.raise_for_status()
        payload: Any = response.json()
        rows = payload.get("records", payload) if isinstance(payload, dict) else payload
        return [
            Delivery(
                seq=int(r["seq"]),
                msg_id=str(r.get("msg_id") or r.get("id")),
                to=str(r["to"]),
                text=str(r["text"]),
                received_wall_ns=int(r["received_wall_ns"]),
            )
            for r in rows
        ]

    def last_seq(self) -> int:
        """The sequence number of the newest record (0 when none), without fetching the records."""
        response = self._client.get("/records", params={"after": 2**62})
        response.raise_for_status()
        return int(response.json().get("last_seq", 0))

    def all_records(self) -> list[Delivery]:
        out: list[Delivery] = []
        after = 0
        while True:
            batch = self.records(after)
            if not batch:
                return out
            out.extend(batch)
            after = batch[-1].seq

    def configure(self, config: AggregatorConfig) -> None:
        self.set_config(config.__dict__)

    def get_config(self) -> dict[str, Any]:
        response = self._client.get("/config")
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data.get("config", data) if isinstance(data.get("config"), dict) else data

    def set_config(self, changes: dict[str, Any]) -> None:
        """Change how the aggregator answers (only the settings named; see docs/standin/aggregator.md)."""
        self._client.post("/config", json=changes).raise_for_status()

    def clear(self) -> None:
        self._client.delete("/records").raise_for_status()

    def close(self) -> None:
        self._client.close()
