"""Flow crons (RapidPro temba/flows/tasks.py): interrupting sessions that have waited too long."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

from django.utils import timezone

from temba.crons import cron_task
from temba.flows.models import FlowSession
from temba.mailroom.queue import HIGH_PRIORITY, queue_batch_task

SESSION_AGE_LIMIT = timedelta(days=90)
INTERRUPT_BATCH = 100
TASK_INTERRUPT_SESSIONS = "interrupt_sessions"


@cron_task()
def interrupt_flow_sessions() -> dict[str, Any]:
    """Ask mailroom to interrupt sessions still waiting 90 days after they started."""
    before = timezone.now() - SESSION_AGE_LIMIT
    by_org: dict[int, list[int]] = defaultdict(list)
    waiting = FlowSession.objects.filter(created_on__lte=before, status=FlowSession.STATUS_WAITING)
    for session_id, org_id in waiting.order_by("id").values_list("id", "org_id"):
        by_org[org_id].append(session_id)
    interrupted = 0
    for org_id, session_ids in by_org.items():
        for start in range(0, len(session_ids), INTERRUPT_BATCH):
            batch = session_ids[start : start + INTERRUPT_BATCH]
            queue_batch_task(org_id, TASK_INTERRUPT_SESSIONS, {"session_ids": batch}, HIGH_PRIORITY)
            interrupted += len(batch)
    return {"interrupted": interrupted}
