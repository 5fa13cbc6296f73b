from __future__ import annotations

from django.apps import AppConfig


class MsgsConfig(AppConfig):
    name = "temba.msgs"
    label = "msgs"
    default_auto_field = "django.db.models.AutoField"
