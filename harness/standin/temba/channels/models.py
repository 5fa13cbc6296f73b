"""Channels (RapidPro's `channels_channel`); the stand-in only has External (EX) channels."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class Channel(models.Model):
    TYPE_EXTERNAL = "EX"

    uuid = models.UUIDField(unique=True, default=uuid.uuid4)
    org = models.ForeignKey("orgs.Org", on_delete=models.PROTECT, related_name="channels")
    channel_type = models.CharField(max_length=3, default=TYPE_EXTERNAL)
    name = models.CharField(max_length=64, null=True)
    address = models.CharField(max_length=255, null=True)
    config = models.JSONField(default=dict)
    tps = models.IntegerField(null=True)
    is_active = models.BooleanField(default=True)
    created_on = models.DateTimeField(default=timezone.now)
