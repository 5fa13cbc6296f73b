"""Courier's settings from the environment, under the real v9 variable names."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass

# courier v9's default: private ranges, link-local and loopback are refused for outgoing requests
DEFAULT_DISALLOWED_NETWORKS = "127.0.0.1,::1,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,169.254.0.0/16,fe80::/10"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(ValueError):
    """An environment variable with a value courier cannot use."""


@dataclass(frozen=True)
class CourierConfig:
    db: str
    redis: str
    spool_dir: str
    address: str
    port: int
    max_workers: int
    domain: str
    disallowed_networks: tuple[Network, ...]


def parse_networks(text: str, variable: str = "COURIER_DISALLOWED_NETWORKS") -> tuple[Network, ...]:
    """Parse a comma separated list of IP addresses and CIDR networks (an address is a /32 or /128)."""
    networks: list[Network] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            kind = "an IP network" if "/" in item else "an IP address"
            raise ConfigError(f"{variable}: couldn't parse {item!r} as {kind}") from None
    return tuple(networks)


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "")
    if not raw.strip():
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name}: expected an integer, got {raw!r}") from None


def load_config(env: Mapping[str, str] | None = None) -> CourierConfig:
    values = os.environ if env is None else env
    db = values.get("COURIER_DB", "postgres://temba:temba@localhost/temba?sslmode=disable")
    redis = values.get("COURIER_REDIS", "redis://localhost:6379/15")
    if not db.startswith("postgres"):
        raise ConfigError(f"COURIER_DB: expected a postgres:// URL, got {db!r}")
    if not redis.startswith("redis"):
        raise ConfigError(f"COURIER_REDIS: expected a redis:// URL, got {redis!r}")
    max_workers = _int(values, "COURIER_MAX_WORKERS", 32)
    if max_workers < 0:
        raise ConfigError(f"COURIER_MAX_WORKERS: expected 0 or more, got {max_workers}")
    return CourierConfig(
        db=db,
        redis=redis,
        spool_dir=values.get("COURIER_SPOOL_DIR", "/var/spool/courier"),
        address=values.get("COURIER_ADDRESS", "") or "0.0.0.0",
        port=_int(values, "COURIER_PORT", 8080),
        max_workers=max_workers,
        domain=values.get("COURIER_DOMAIN", "localhost"),
        disallowed_networks=parse_networks(values.get("COURIER_DISALLOWED_NETWORKS", DEFAULT_DISALLOWED_NETWORKS)),
    )
