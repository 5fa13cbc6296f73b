"""Flows, sessions, runs and starts (RapidPro's `flows_flow`, `flows_flowsession`, `flows_flowrun`,
`flows_flowstart`). The engine state lives in mailroom; these tables are what it persists."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class Flow(models.Model):
    TYPE_MESSAGE = "M"

    uuid = models.UUIDField(unique=True, default=uuid.uuid4)
    org = models.ForeignKey("orgs.Org", on_delete=models.PROTECT, related_name="flows")
    name = models.CharField(max_length=64)
    flow_type = models.CharField(max_length=1, default=TYPE_MESSAGE)
    spec_version = models.CharField(max_length=8)
    # The flow's object from its export (nodes, localization, _ui, ...), as mailroom loads it.
    definition = models.JSONField()
    is_active = models.BooleanField(default=True)
    created_on = models.DateTimeField(default=timezone.now)
    modified_on = models.DateTimeField(default=timezone.now)


class FlowSession(models.Model):
    STATUS_WAITING = "W"
    STATUS_COMPLETED = "C"
    STATUS_EXPIRED = "X"
    STATUS_INTERRUPTED = "I"
    STATUS_FAILED = "F"

    id = models.BigAutoField(primary_key=True)
    uuid = models.UUIDField(unique=True, default=uuid.uuid4)
    org = models.ForeignKey("orgs.Org", on_delete=models.PROTECT, related_name="+")
    contact = models.ForeignKey("contacts.Contact", on_delete=models.PROTECT, related_name="sessions")
    status = models.CharField(max_length=1)
    session_type = models.CharField(max_length=1, default=Flow.TYPE_MESSAGE)
    output = models.JSONField(null=True)
    current_flow = models.ForeignKey(Flow, on_delete=models.PROTECT, null=True, related_name="+")
    created_on = models.DateTimeField(default=timezone.now)
    ended_on = models.DateTimeField(null=True)
    wait_started_on = models.DateTimeField(null=True)
    timeout_on = models.DateTimeField(null=True)
    wait_expires_on = models.DateTimeField(null=True)

    class Meta:
        indexes = [models.Index(fields=["contact", "status"], name="flows_session_contact_status")]


class FlowRun(models.Model):
    STATUS_ACTIVE = "A"
    STATUS_WAITING = "W"
    STATUS_COMPLETED = "C"
    STATUS_EXPIRED = "X"
    STATUS_INTERRUPTED = "I"
    STATUS_FAILED = "F"

    id = models.BigAutoField(primary_key=True)
    uuid = models.UUIDField(unique=True, default=uuid.uuid4)
    org = models.ForeignKey("orgs.Org", on_delete=models.PROTECT, related_name="+")
    flow = models.ForeignKey(Flow, on_delete=models.PROTECT, related_name="runs")
    contact = models.ForeignKey("contacts.Contact", on_delete=models.PROTECT, related_name="runs")
    session = models.ForeignKey(FlowSession, on_delete=models.PROTECT, null=True, related_name="runs")
    status = models.CharField(max_length=1)
    path = models.JSONField(default=list)
    results = models.JSONField(default=dict)
    responded = models.BooleanField(default=False)
    created_on = models.DateTimeField(default=timezone.now)
    modified_on = models.DateTimeField(default=timezone.now)
    exited_on = models.DateTimeField(null=True)

    class Meta:
        indexes = [models.Index(fields=["org", "modified_on"], name="flows_flowrun_org_modified")]


class FlowStart(models.Model):
    TYPE_MANUAL = "M"
    TYPE_API = "A"

    STATUS_PENDING = "P"
    STATUS_STARTING = "S"
    STATUS_COMPLETE = "C"
    STATUS_FAILED = "F"

    id = models.BigAutoField(primary_key=True)
    uuid = models.UUIDField(unique=True, default=uuid.uuid4)
    org = models.ForeignKey("orgs.Org", on_delete=models.PROTECT, related_name="+")
    flow = models.ForeignKey(Flow, on_delete=models.PROTECT, related_name="starts")
    start_type = models.CharField(max_length=1)
    status = models.CharField(max_length=1, default=STATUS_PENDING)
    urns = models.JSONField(null=True)
    contact_uuids = models.JSONField(null=True)
    restart_participants = models.BooleanField(default=True)
    params = models.JSONField(null=True)
    contact_count = models.IntegerField(null=True)
    created_on = models.DateTimeField(default=timezone.now)
    modified_on = models.DateTimeField(default=timezone.now)
