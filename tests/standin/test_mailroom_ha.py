"""Mailroom stand-in, two instances on one Redis and one database (the n+1 mailroom of an HA install)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from test_mailroom_support import (
    FAVORITES,
    db_fixture,  # noqa: F401 - fixture
    migrated_pg_fixture,  # noqa: F401 - fixture
    msg_status,
    outgoing,
    queued_texts,
    rds_fixture,  # noqa: F401 - fixture
    receive,
    seed_org,
    start_mailroom,
    wait_for,
)

HIGH = 1


@pytest.fixture()
def favorites(db: psycopg.Connection[Any]) -> Any:
    if not FAVORITES.exists():
        pytest.skip(f"{FAVORITES} is not present beside the checkout")
    return seed_org(db, [FAVORITES], {"Favorites": ["favorites"]})


def _completed_tasks(log: str) -> int:
    return len(re.findall(r"handler: task handle_contact_event complete", log))


def test_two_instances_share_the_handler_queue_and_reply_once(
    tmp_path: Path, migrated_pg: str, redis_url: str, db: psycopg.Connection[Any], rds: redis.Redis, favorites: Any
) -> None:
    one_worker = {"MAILROOM_HANDLER_WORKERS": "1"}  # so neither instance can drain the queue alone at once
    first = start_mailroom(tmp_path, migrated_pg, redis_url, extra_env=one_worker, name="mailroom-1")
    second = start_mailroom(tmp_path, migrated_pg, redis_url, extra_env=one_worker, name="mailroom-2")
    try:
        msgs = [receive(db, rds, favorites, f"tel:+2507880001{n:02d}", "favorites") for n in range(40)]
        wait_for(lambda: all(msg_status(db, m.msg_id) == "H" for m in msgs), timeout=30, what="all handled")
        replies = outgoing(db)
        assert len(replies) == 40
        assert sorted(db.execute("SELECT contact_id FROM msgs_msg WHERE direction = 'O'").fetchall()) == sorted(
            (m.contact_id,) for m in msgs
        ), "one reply per contact"
        wait_for(lambda: len(queued_texts(rds, favorites, HIGH)) == 40, what="40 replies queued")
        # A task logs "complete" just after its reply is queued: wait for the last lines, then count.
        wait_for(
            lambda: _completed_tasks(first.log()) + _completed_tasks(second.log()) >= 40, what="40 tasks logged"
        )
        done_1, done_2 = _completed_tasks(first.log()), _completed_tasks(second.log())
        assert done_1 + done_2 == 40
        assert done_1 > 0 and done_2 > 0, (done_1, done_2)
    finally:
        first.terminate()
        second.terminate()


def test_cron_skips_while_another_instance_holds_its_lock(
    tmp_path: Path, migrated_pg: str, redis_url: str, db: psycopg.Connection[Any], rds: redis.Redis, favorites: Any
) -> None:
    inbound = receive(db, None, favorites, "tel:+250788000199", "hi")
    due = datetime.now(UTC) - timedelta(seconds=1)
    for n in range(5):
        db.execute(
            "INSERT INTO msgs_msg (org_id, channel_id, contact_id, contact_urn_id, direction, status, text, "
            "high_priority, error_count, next_attempt) VALUES (%s, %s, %s, %s, 'O', 'I', %s, true, 0, %s)",
            (favorites.org_id, favorites.channel_id, inbound.contact_id, inbound.urn_id, f"retry {n}", due),
        )
    rds.set("lock:retry_errored_messages_lock", "another-instance", px=60_000)
    env = {"MAILROOM_STANDIN_RETRY_ERRORED_INTERVAL": "0.2"}
    mailroom = start_mailroom(tmp_path, migrated_pg, redis_url, extra_env=env)
    try:
        time.sleep(1.5)  # several fires
        assert queued_texts(rds, favorites, HIGH) == []
        assert {r[2] for r in outgoing(db)} == {"I"}
        rds.delete("lock:retry_errored_messages_lock")
        wait_for(lambda: len(queued_texts(rds, favorites, HIGH)) == 5, what="queued once the lock is free")
        time.sleep(0.6)  # more fires: nothing is due any more, nothing is pushed twice
        assert sorted(queued_texts(rds, favorites, HIGH)) == [f"retry {n}" for n in range(5)]
    finally:
        mailroom.terminate()
