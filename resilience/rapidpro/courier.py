"""Courier's External (EX) channel: inject an inbound SMS (MO) and report what courier said."""

from __future__ import annotations

from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class Received:
    """Courier's answer. `accepted` is the only case in which RapidPro owes us the message."""

    status: int
    msg_uuid: str | None
    body: str

    @property
    def accepted(self) -> bool:
        return self.status == 200 and self.msg_uuid is not None


def parse_receive(response: httpx.Response) -> Received:
    msg_uuid = None
    if response.status_code == 200:
        try:
            data = response.json().get("data") or []
            msg_uuid = next((d.get("msg_uuid") for d in data if d.get("type") == "msg"), None)
        except ValueError:
            msg_uuid = None
    return Received(response.status_code, msg_uuid, response.text[:500])


def receive_blocking(base_url: str, channel_uuid: str, sender: str, text: str, timeout: float = 10.0) -> Received:
    """One MO from synchronous code (probes), on its own short-lived connection."""
    response = httpx.post(
        f"{base_url.rstrip('/')}/c/ex/{channel_uuid}/receive", data={"from": sender, "text": text}, timeout=timeout
    )
    return parse_receive(response)


class CourierClient:
    """Speaks to courier through the load balancer (`/c/ex/<channel uuid>/receive`)."""

    def __init__(self, base_url: str, channel_uuid: str, timeout: float = 10.0) -> None:
        self.channel_uuid = channel_uuid
        self._client = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout)

    async def receive(self, sender: str, text: str) -> Received:
        """POST the MO form-encoded, as an aggregator would. Timeouts and resets propagate (outcome unknown)."""
        response = await self._client.post(
            f"/c/ex/{self.channel_uuid}/receive", data={"from": sender, "text": text}
        )
        return parse_receive(response)


    async def status(self, kind: str, msg_id: str) -> int:
        """Post a status callback (`sent`, `delivered`, `failed`) for an outgoing message id."""
        response = await self._client.post(f"/c/ex/{self.channel_uuid}/{kind}", params={"id": msg_id})
        return response.status_code

    async def aclose(self) -> None:
        await self._client.aclose()
