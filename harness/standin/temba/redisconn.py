"""One Redis client per process on REDIS_URL (the shared DB 15), as RapidPro's django_redis connection."""

from __future__ import annotations

import threading

import redis
from django.conf import settings

_lock = threading.Lock()
_client: redis.Redis | None = None


def get_redis() -> redis.Redis:
    """The process-wide client; its pool reconnects after a Redis failover behind the stable address."""
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                _client = redis.Redis.from_url(
                    settings.REDIS_URL,
                    socket_connect_timeout=settings.REDIS_CONNECT_TIMEOUT,
                    health_check_interval=30,
                )
    return _client


def reset_redis() -> None:
    """Forget the client (tests switching REDIS_URL)."""
    global _client
    with _lock:
        _client = None
