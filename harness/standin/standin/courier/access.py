"""COURIER_DISALLOWED_NETWORKS: outgoing requests to hosts resolving into these networks are refused."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from .config import Network

RESOLVE_TIMEOUT_S = 10.0


class RequestNotPermitted(Exception):
    def __str__(self) -> str:
        return "request not permitted by access config"


class AccessConfig:
    def __init__(self, disallowed: tuple[Network, ...]) -> None:
        self._disallowed = disallowed

    def is_disallowed(self, address: str) -> bool:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        return any(ip.version == network.version and ip in network for network in self._disallowed)

    async def check(self, url: str) -> None:
        """Raise RequestNotPermitted if any address of the URL's host is disallowed (OSError if unresolvable)."""
        if not self._disallowed:
            return
        host = urlsplit(url).hostname or ""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(RESOLVE_TIMEOUT_S):
            infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        for info in infos:
            if self.is_disallowed(str(info[4][0])):
                raise RequestNotPermitted()
