"""API tokens (RapidPro's `api_apitoken`): `Authorization: Token <key>`."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone


def generate_key() -> str:
    return secrets.token_hex(20)


class APIToken(models.Model):
    key = models.CharField(max_length=40, primary_key=True, default=generate_key)
    org = models.ForeignKey("orgs.Org", on_delete=models.PROTECT, related_name="api_tokens")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_tokens")
    is_active = models.BooleanField(default=True)
    created = models.DateTimeField(default=timezone.now)
