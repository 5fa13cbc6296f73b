"""Keyword and catch-all triggers (RapidPro's `triggers_trigger`), read by mailroom on inbound messages."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models


class Trigger(models.Model):
    TYPE_KEYWORD = "K"
    TYPE_CATCH_ALL = "C"

    MATCH_FIRST_WORD = "F"
    MATCH_ONLY_WORD = "O"

    org = models.ForeignKey("orgs.Org", on_delete=models.PROTECT, related_name="triggers")
    trigger_type = models.CharField(max_length=1)
    keywords = ArrayField(models.CharField(max_length=16), null=True)
    match_type = models.CharField(max_length=1, null=True)
    flow = models.ForeignKey("flows.Flow", on_delete=models.PROTECT, null=True, related_name="triggers")
    is_active = models.BooleanField(default=True)
