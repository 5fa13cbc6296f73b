from __future__ import annotations

from django.apps import AppConfig


class FlowsConfig(AppConfig):
    name = "temba.flows"
    label = "flows"
    default_auto_field = "django.db.models.AutoField"
