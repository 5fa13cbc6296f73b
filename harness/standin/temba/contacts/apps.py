from __future__ import annotations

from django.apps import AppConfig


class ContactsConfig(AppConfig):
    name = "temba.contacts"
    label = "contacts"
    default_auto_field = "django.db.models.AutoField"
