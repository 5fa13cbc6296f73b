"""Message crons (RapidPro temba/msgs/tasks.py): failing stale outgoing messages, squashing folder counts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from temba.crons import cron_task
from temba.msgs.models import Msg, SystemLabelCount

SQUASH_BATCH = 5000

SQUASH_SQL = """
WITH deleted AS (
    DELETE FROM msgs_systemlabelcount WHERE org_id = %s AND label_type = %s RETURNING count
)
INSERT INTO msgs_systemlabelcount (org_id, label_type, count, is_squashed)
VALUES (%s, %s, GREATEST(0, (SELECT SUM(count) FROM deleted)), TRUE)
"""


@cron_task()
def fail_old_messages() -> dict[str, Any]:
    """Outgoing messages still initializing, queued or errored a week after creation will never be sent
    sensibly: mark them failed. This is the only thing that ends a message lost between queue and send."""
    too_old = timezone.now() - timedelta(days=settings.FAIL_OLD_MESSAGES_AGE_DAYS)
    failed = Msg.objects.filter(
        created_on__lte=too_old,
        direction=Msg.DIRECTION_OUT,
        status__in=(Msg.STATUS_INITIALIZING, Msg.STATUS_QUEUED, Msg.STATUS_ERRORED),
    ).update(status=Msg.STATUS_FAILED, modified_on=timezone.now())
    return {"failed": failed}


@cron_task(lock_timeout=7200)
def squash_msg_counts() -> dict[str, Any]:
    """Sum the trigger's +1/-1 rows into one row per org and folder."""
    pending = (
        SystemLabelCount.objects.filter(is_squashed=False)
        .order_by("org_id", "label_type")
        .distinct("org_id", "label_type")
        .values_list("org_id", "label_type")[:SQUASH_BATCH]
    )
    squashed = 0
    for org_id, label_type in pending:
        with connection.cursor() as cursor:
            cursor.execute(SQUASH_SQL, (org_id, label_type, org_id, label_type))
        squashed += 1
    return {"squashed": squashed}
