from __future__ import annotations

from django.apps import AppConfig


class ChannelsConfig(AppConfig):
    name = "temba.channels"
    label = "channels"
    default_auto_field = "django.db.models.AutoField"
