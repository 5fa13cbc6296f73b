"""Settings of the stand-in RapidPro web, read from the environment as the real deployment does."""

from __future__ import annotations

import os
import re
from datetime import timedelta

from celery.schedules import crontab

from temba.dburl import parse_database_url
from temba.switches import load as load_switches


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    if not raw.strip():
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{name}: expected an integer, got {raw!r}") from None


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    if not raw.strip():
        return default
    try:
        return float(raw)
    except ValueError:
        raise SystemExit(f"{name}: expected a number, got {raw!r}") from None


SWITCHES = load_switches()

SECRET_KEY = os.environ.get("SECRET_KEY", "standin-not-secret")
DEBUG = False
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "*").split(",") if h.strip()]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.postgres",
    "temba.orgs",
    "temba.channels",
    "temba.contacts",
    "temba.msgs",
    "temba.flows",
    "temba.triggers",
    "temba.api",
]

MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
]

ROOT_URLCONF = "temba.urls"
WSGI_APPLICATION = "temba.wsgi.application"
TEMPLATES: list[dict[str, object]] = []

DATABASE_URL = os.environ.get("DATABASE_URL", "postgres://temba:temba@localhost:5432/temba")
DATABASES = {
    "default": {
        **parse_database_url(DATABASE_URL),
        # Short-lived persistent connections with a health check on reuse, so a Postgres failover
        # behind the load balancer costs at most the requests already in flight on dead sockets.
        "CONN_MAX_AGE": _env_int("CONN_MAX_AGE", 60),
        "CONN_HEALTH_CHECKS": True,
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

USE_TZ = True
TIME_ZONE = "UTC"

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/15")
# Mailroom's base URL: the client appends /mr/<endpoint>, as RapidPro's does. A URL that already ends in
# /mr would make every call miss (a 404 from mailroom, so a 500 from the API): refuse it at start.
MAILROOM_URL = os.environ.get("MAILROOM_URL", "http://localhost:8090").rstrip("/")
if MAILROOM_URL.endswith("/mr"):
    raise SystemExit(
        f"MAILROOM_URL: expected mailroom's base URL (the client appends /mr/...), got {os.environ['MAILROOM_URL']!r}"
    )
MAILROOM_AUTH_TOKEN = os.environ.get("MAILROOM_AUTH_TOKEN", "")
ELASTICSEARCH_URL = os.environ.get("ELASTICSEARCH_URL", "http://localhost:9200")
# Only the connect is bounded; a command on a connected socket waits as long as RapidPro's client does.
REDIS_CONNECT_TIMEOUT = _env_float("REDIS_CONNECT_TIMEOUT", 5.0)

# API v2: page size and the per-org throttle. Every scope defaults to RapidPro v9.2.5's 2500/hour
# (settings_common.py DEFAULT_THROTTLE_RATES); an org's `api_rates` overrides it per scope, as real. The
# stand-in's default before issue 9 was 100000/hour: API_THROTTLE_RATE=100000/hour brings it back.
API_PAGE_SIZE = _env_int("API_PAGE_SIZE", 250)
API_THROTTLE_RATE = os.environ.get("API_THROTTLE_RATE", "2500/hour")
API_RATE_PATTERN = r"[1-9][0-9]*/(s|sec|second|m|min|minute|h|hour|d|day)"
if not re.fullmatch(API_RATE_PATTERN, API_THROTTLE_RATE):
    raise SystemExit(f"API_THROTTLE_RATE: expected <requests>/<second|minute|hour|day>, got {API_THROTTLE_RATE!r}")
# RapidPro's scopes, each counted separately per org (their rates all default to API_THROTTLE_RATE).
API_THROTTLE_SCOPES = ("v2", "v2.contacts", "v2.messages", "v2.runs")

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ("rest_framework.renderers.JSONRenderer",),
    "DEFAULT_PARSER_CLASSES": ("rest_framework.parsers.JSONParser",),
    "DEFAULT_THROTTLE_RATES": {scope: API_THROTTLE_RATE for scope in API_THROTTLE_SCOPES},
    "DEFAULT_PAGINATION_CLASS": "temba.api.support.CreatedOnCursorPagination",
    "PAGE_SIZE": API_PAGE_SIZE,
    "EXCEPTION_HANDLER": "temba.api.support.temba_exception_handler",
}

# Celery: broker on the shared Redis (DB 15), one default queue, no result backend (as RapidPro).
CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_timeout": 5}  # as RapidPro: a dead broker socket fails, not hangs
CELERY_BEAT_SCHEDULE_FILENAME = os.environ.get("CELERY_BEAT_SCHEDULE_FILENAME", "/tmp/celerybeat-schedule")


def _every(env_name: str, default: timedelta | crontab) -> timedelta | crontab:
    """RapidPro's schedule, or every N seconds when the environment says so (tests cannot wait a day)."""
    if not os.environ.get(env_name, "").strip():
        return default
    seconds = _env_float(env_name, 0.0)
    if seconds <= 0:
        raise SystemExit(f"{env_name}: expected a positive number of seconds, got {os.environ[env_name]!r}")
    return timedelta(seconds=seconds)


CELERY_BEAT_SCHEDULE = {
    "fail-old-messages": {
        "task": "fail_old_messages",
        "schedule": _every("FAIL_OLD_MESSAGES_INTERVAL", crontab(hour=0, minute=0)),
    },
    "interrupt-flow-sessions": {
        "task": "interrupt_flow_sessions",
        "schedule": _every("INTERRUPT_FLOW_SESSIONS_INTERVAL", crontab(hour=23, minute=30)),
    },
    "squash-msg-counts": {
        "task": "squash_msg_counts",
        "schedule": _every("SQUASH_COUNTS_INTERVAL", timedelta(seconds=60)),
    },
    "check-elasticsearch-lag": {
        "task": "check_elasticsearch_lag",
        "schedule": _every("CHECK_ELASTICSEARCH_LAG_INTERVAL", timedelta(seconds=300)),
    },
}
# How old an unsent outgoing message must be before fail_old_messages fails it (RapidPro: 7 days).
FAIL_OLD_MESSAGES_AGE_DAYS = _env_float("FAIL_OLD_MESSAGES_AGE_DAYS", 7.0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
