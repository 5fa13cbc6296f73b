"""Periodic Celery tasks that never overlap, as RapidPro's temba/utils/crons.py.

Each run takes the Redis lock `celery-task-lock:<name>`; while the lock is held (another worker is running
the same cron, or a test holds it) the run is skipped and returns {"skipped": true}. Every run records its
start, duration and result in the `cron_stats:*` hashes, as RapidPro does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from celery import shared_task
from django.utils import timezone

from temba.redisconn import get_redis

DEFAULT_TASK_LOCK_TIMEOUT = 900
STATS_EXPIRES = 60 * 60 * 48
STATS_KEYS = (
    "cron_stats:last_start",
    "cron_stats:last_time",
    "cron_stats:last_result",
    "cron_stats:call_count",
    "cron_stats:total_time",
)


def lock_key(name: str) -> str:
    return f"celery-task-lock:{name}"


def cron_task(
    *, name: str | None = None, lock_timeout: int = DEFAULT_TASK_LOCK_TIMEOUT
) -> Callable[..., Any]:
    def decorate(func: Callable[..., Any]) -> Any:
        task_name = name or func.__name__

        @wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            r = get_redis()
            key = lock_key(task_name)
            if r.get(key):
                return {"skipped": True}
            started, start_clock = timezone.now(), time.monotonic()
            result = None
            try:
                with r.lock(key, timeout=lock_timeout):
                    result = func(*args, **kwargs)
            finally:
                record_execution(task_name, started.isoformat(), time.monotonic() - start_clock, result)
            return result

        return shared_task(name=task_name)(run)

    return decorate


def record_execution(name: str, started: str, seconds: float, result: Any) -> None:
    pipe = get_redis().pipeline()
    pipe.hset("cron_stats:last_start", name, started)
    pipe.hset("cron_stats:last_time", name, str(seconds))
    pipe.hset("cron_stats:last_result", name, json.dumps(result))
    pipe.hincrby("cron_stats:call_count", name, 1)
    pipe.hincrbyfloat("cron_stats:total_time", name, seconds)
    for key in STATS_KEYS:
        pipe.expire(key, STATS_EXPIRES)
    pipe.execute()
