"""Messages (RapidPro's `msgs_msg`) and the squashable folder counts (`msgs_systemlabelcount`)."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class Msg(models.Model):
    DIRECTION_IN = "I"
    DIRECTION_OUT = "O"

    STATUS_INITIALIZING = "I"
    STATUS_PENDING = "P"
    STATUS_HANDLED = "H"
    STATUS_QUEUED = "Q"
    STATUS_WIRED = "W"
    STATUS_SENT = "S"
    STATUS_DELIVERED = "D"
    STATUS_ERRORED = "E"
    STATUS_FAILED = "F"

    TYPE_TEXT = "T"
    VISIBILITY_VISIBLE = "V"

    id = models.BigAutoField(primary_key=True)
    # RapidPro has no unique constraint here: a replayed courier spool file makes a duplicate row.
    uuid = models.UUIDField(default=uuid.uuid4, db_index=True)
    org = models.ForeignKey("orgs.Org", on_delete=models.PROTECT, related_name="msgs")
    channel = models.ForeignKey("channels.Channel", on_delete=models.PROTECT, null=True, related_name="msgs")
    contact = models.ForeignKey("contacts.Contact", on_delete=models.PROTECT, related_name="msgs")
    contact_urn = models.ForeignKey(
        "contacts.ContactURN", on_delete=models.PROTECT, null=True, related_name="msgs"
    )
    direction = models.CharField(max_length=1)
    status = models.CharField(max_length=1)
    msg_type = models.CharField(max_length=1, default=TYPE_TEXT)
    visibility = models.CharField(max_length=1, default=VISIBILITY_VISIBLE)
    text = models.TextField()
    external_id = models.CharField(max_length=255, null=True)
    high_priority = models.BooleanField(null=True)
    error_count = models.IntegerField(default=0)
    next_attempt = models.DateTimeField(null=True)
    flow = models.ForeignKey("flows.Flow", on_delete=models.PROTECT, null=True, related_name="msgs")
    created_on = models.DateTimeField(default=timezone.now)
    sent_on = models.DateTimeField(null=True)
    queued_on = models.DateTimeField(null=True)
    modified_on = models.DateTimeField(default=timezone.now)
    metadata = models.JSONField(null=True)

    class Meta:
        indexes = [
            models.Index(fields=["org", "direction", "created_on"], name="msgs_msg_org_dir_created"),
            models.Index(fields=["status", "direction", "created_on"], name="msgs_msg_status_dir_created"),
        ]


class SystemLabelCount(models.Model):
    """Per-org folder counts: a Postgres trigger on msgs_msg appends +1/-1 rows, squash_counts sums them."""

    LABEL_INBOX = "I"
    LABEL_FLOWS = "W"
    LABEL_ARCHIVED = "A"
    LABEL_OUTBOX = "O"
    LABEL_SENT = "S"
    LABEL_FAILED = "X"

    id = models.BigAutoField(primary_key=True)
    org = models.ForeignKey("orgs.Org", on_delete=models.PROTECT, related_name="system_labels")
    label_type = models.CharField(max_length=1)
    count = models.IntegerField(default=0)
    is_squashed = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["org", "label_type"], name="msgs_systemlabelcount_org_lbl")]
