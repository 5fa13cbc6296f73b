"""The Celery app `temba` on the shared Redis, as RapidPro's `celery -A temba worker|beat`."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "temba.settings")

app = Celery("temba")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
