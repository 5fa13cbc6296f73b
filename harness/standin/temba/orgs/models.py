"""Workspaces (RapidPro's `orgs_org`)."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class Org(models.Model):
    uuid = models.UUIDField(unique=True, default=uuid.uuid4)
    name = models.CharField(max_length=128)
    is_active = models.BooleanField(default=True)
    created_on = models.DateTimeField(default=timezone.now)
    # per-scope API rates overriding DEFAULT_THROTTLE_RATES, e.g. {"v2": "10000/hour"} (RapidPro's field)
    api_rates = models.JSONField(default=dict)

    def __str__(self) -> str:
        return self.name
