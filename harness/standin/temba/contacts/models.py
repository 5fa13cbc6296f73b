"""Contacts and their URNs (RapidPro's `contacts_contact`, `contacts_contacturn`)."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class Contact(models.Model):
    STATUS_ACTIVE = "A"

    uuid = models.UUIDField(unique=True, default=uuid.uuid4)
    org = models.ForeignKey("orgs.Org", on_delete=models.PROTECT, related_name="contacts")
    name = models.CharField(max_length=128, null=True)
    language = models.CharField(max_length=3, null=True)
    fields = models.JSONField(null=True)
    status = models.CharField(max_length=1, default=STATUS_ACTIVE)
    is_active = models.BooleanField(default=True)
    current_flow = models.ForeignKey("flows.Flow", on_delete=models.PROTECT, null=True, related_name="+")
    created_on = models.DateTimeField(default=timezone.now)
    modified_on = models.DateTimeField(default=timezone.now)


class ContactURN(models.Model):
    PRIORITY_DEFAULT = 1000

    org = models.ForeignKey("orgs.Org", on_delete=models.PROTECT, related_name="urns")
    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, null=True, related_name="urns")
    identity = models.CharField(max_length=255)
    scheme = models.CharField(max_length=128)
    path = models.CharField(max_length=255)
    channel = models.ForeignKey("channels.Channel", on_delete=models.PROTECT, null=True, related_name="urns")
    priority = models.IntegerField(default=PRIORITY_DEFAULT)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["identity", "org"], name="contacts_contacturn_identity_org_uniq")
        ]
