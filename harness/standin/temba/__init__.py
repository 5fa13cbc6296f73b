"""Stand-in for RapidPro's Django project: the same package name, app labels and table names."""

from __future__ import annotations

from temba.celery import app as celery_app

__all__ = ["celery_app"]
