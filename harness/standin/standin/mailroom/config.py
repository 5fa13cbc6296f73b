"""Mailroom settings: the real v9 environment names and defaults, plus test-only timing overrides.

The `MAILROOM_STANDIN_*` names do not exist in real mailroom; they shorten cron intervals and waits so
that component tests finish in seconds. Left unset, every timing is the real one.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass

from standin.mailroom.envreader import EnvReader

# STANDIN_VERSION lets an upgrade drill give a derived image its own version to report.
VERSION = os.environ.get("STANDIN_VERSION") or "9.2.2-standin"


@dataclass(frozen=True)
class MailroomConfig:
    db: str
    readonly_db: str
    redis: str
    elastic: str
    address: str
    port: int
    handler_workers: int
    batch_workers: int
    auth_token: str
    retry_pending_messages: bool
    db_pool_size: int
    instance_id: str
    # timings (seconds); real values by default
    retry_errored_interval: float = 60.0
    retry_pending_interval: float = 300.0
    retry_pending_age: float = 300.0
    timeouts_interval: float = 60.0
    requeue_delay: float = 600.0
    contact_lock_wait: float = 10.0
    contact_lock_expiry: float = 300.0
    idle_pop_sleep: float = 0.25
    cron_lock_expiry: float = 330.0  # cron timeout (5 min) + 30 s, as real


def load_config(environ: Mapping[str, str] | None = None) -> MailroomConfig:
    env = EnvReader(environ)
    source = os.environ if environ is None else environ
    return MailroomConfig(
        db=env.text("MAILROOM_DB", "postgres://temba:temba@localhost/temba?sslmode=disable"),
        readonly_db=env.text("MAILROOM_READONLY_DB", ""),
        redis=env.text("MAILROOM_REDIS", "redis://localhost:6379/15"),
        elastic=env.text("MAILROOM_ELASTIC", "http://localhost:9200"),
        address=env.text("MAILROOM_ADDRESS", "localhost"),
        port=env.integer("MAILROOM_PORT", 8090, minimum=0),
        handler_workers=env.integer("MAILROOM_HANDLER_WORKERS", 32, minimum=1),
        batch_workers=env.integer("MAILROOM_BATCH_WORKERS", 4, minimum=1),
        auth_token=env.text("MAILROOM_AUTH_TOKEN", ""),
        retry_pending_messages=env.flag("MAILROOM_RETRY_PENDING_MESSAGES", True),
        db_pool_size=env.integer("MAILROOM_DB_POOL_SIZE", 36, minimum=2),
        instance_id=env.text("MAILROOM_INSTANCE_ID", source.get("HOSTNAME", socket.gethostname())),
        retry_errored_interval=env.seconds("MAILROOM_STANDIN_RETRY_ERRORED_INTERVAL", 60.0),
        retry_pending_interval=env.seconds("MAILROOM_STANDIN_RETRY_PENDING_INTERVAL", 300.0),
        retry_pending_age=env.seconds("MAILROOM_STANDIN_RETRY_PENDING_AGE", 300.0),
        timeouts_interval=env.seconds("MAILROOM_STANDIN_TIMEOUTS_INTERVAL", 60.0),
        requeue_delay=env.seconds("MAILROOM_STANDIN_REQUEUE_DELAY", 600.0),
        contact_lock_wait=env.seconds("MAILROOM_STANDIN_CONTACT_LOCK_WAIT", 10.0),
        contact_lock_expiry=env.seconds("MAILROOM_STANDIN_CONTACT_LOCK_EXPIRY", 300.0),
        idle_pop_sleep=env.seconds("MAILROOM_STANDIN_IDLE_POP_SLEEP", 0.25),
    )
