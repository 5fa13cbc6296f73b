"""Mailroom's batch queue as RapidPro's Django writes it (temba/mailroom/queue.py in RapidPro v9).

A task is `ZADD batch:<org_id> <score> <json>` plus `ZINCRBY batch:active 0 <org_id>` in one pipeline.
RapidPro scores Django's tasks in epoch *milliseconds* plus the priority offset (mailroom's own Go code
uses seconds); the stand-in keeps that quirk.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

from django.utils import timezone

from temba.redisconn import get_redis

HIGH_PRIORITY = -10_000_000
DEFAULT_PRIORITY = 0

BATCH_QUEUE = "batch"
TASK_START_FLOW = "start_flow"


def format_datetime(value: datetime) -> str:
    """RapidPro's JSON datetime: UTC, microseconds, `Z` suffix."""
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def build_task(org_id: int, task_type: str, task: dict[str, Any]) -> dict[str, Any]:
    return {"type": task_type, "org_id": org_id, "task": task, "queued_on": format_datetime(timezone.now())}


def queue_batch_task(org_id: int, task_type: str, task: dict[str, Any], priority: int) -> None:
    score = round(time.time() * 1000) + priority
    payload = json.dumps(build_task(org_id, task_type, task))
    pipe = get_redis().pipeline(transaction=False)
    pipe.zadd(f"{BATCH_QUEUE}:{org_id}", {payload: score})
    pipe.zincrby(f"{BATCH_QUEUE}:active", 0, str(org_id))
    pipe.execute()


def start_flow_task(
    *,
    start_id: int,
    start_type: str,
    org_id: int,
    created_by_id: int | None,
    flow_id: int,
    flow_type: str,
    contact_ids: list[int],
    urns: list[str],
    restart_participants: bool,
    params: dict[str, Any] | None,
) -> dict[str, Any]:
    """The `start_flow` task body: RapidPro v9's fields plus `flow_type` and `restart_participants`,
    which docs/architecture.md names for the mailroom stand-in."""
    return {
        "start_id": start_id,
        "start_type": start_type,
        "org_id": org_id,
        "created_by_id": created_by_id,
        "flow_id": flow_id,
        "flow_type": flow_type,
        "contact_ids": contact_ids,
        "group_ids": [],
        "urns": urns,
        "query": None,
        "exclusions": {"started_previously": not restart_participants, "in_a_flow": False},
        "restart_participants": restart_participants,
        "params": params,
    }
