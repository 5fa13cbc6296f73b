"""Creating a flow start and handing it to mailroom (RapidPro's FlowStart.create + async_start)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from temba.contacts.models import Contact
from temba.flows.models import Flow, FlowStart
from temba.mailroom.queue import HIGH_PRIORITY, TASK_START_FLOW, queue_batch_task, start_flow_task


def create_flow_start(
    flow: Flow,
    *,
    user_id: int | None,
    start_type: str,
    contacts: list[Contact],
    urns: list[str],
    restart_participants: bool,
    params: dict[str, Any] | None,
) -> FlowStart:
    """Insert the start (status P) and, once that commits, push `start_flow` to `batch:<org>`.

    As in RapidPro, a failed push after the commit leaves the start pending and fails the request.
    """
    with transaction.atomic():
        start = FlowStart.objects.create(
            org_id=flow.org_id,
            flow=flow,
            start_type=start_type,
            status=FlowStart.STATUS_PENDING,
            urns=urns,
            contact_uuids=[str(c.uuid) for c in contacts],
            restart_participants=restart_participants,
            params=params,
        )
        task = start_flow_task(
            start_id=start.id,
            start_type=start_type,
            org_id=flow.org_id,
            created_by_id=user_id,
            flow_id=flow.id,
            flow_type=flow.flow_type,
            contact_ids=[c.id for c in contacts],
            urns=urns,
            restart_participants=restart_participants,
            params=params,
        )
        transaction.on_commit(lambda: queue_batch_task(flow.org_id, TASK_START_FLOW, task, HIGH_PRIORITY))
    return start
