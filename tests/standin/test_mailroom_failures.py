"""Mailroom stand-in: its v9 weak spots and switches — locks, pushes, retries, signals."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from test_mailroom_support import (
    FAVORITES,
    STANDIN_SRC,
    Inbound,
    TcpProxy,
    courier_batches,
    db_fixture,  # noqa: F401 - fixture
    migrated_pg_fixture,  # noqa: F401 - fixture
    msg_status,
    outgoing,
    push_msg_event,
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


@pytest.mark.parametrize("contact_lock", [True, False])
def test_lock_contention_requeues_the_task_unless_switched_off(
    tmp_path: Path,
    migrated_pg: str,
    redis_url: str,
    db: psycopg.Connection[Any],
    rds: redis.Redis,
    favorites: Any,
    contact_lock: bool,
) -> None:
    mailroom = start_mailroom(
        tmp_path,
        migrated_pg,
        redis_url,
        switches={"contact_lock": contact_lock},
        extra_env={"MAILROOM_STANDIN_CONTACT_LOCK_WAIT": "0.5"},
    )
    try:
        first = receive(db, None, favorites, "tel:+250788000010", "warm-up")  # creates the contact
        lock_key = f"lock:c:{favorites.org_id}:{first.contact_id}"
        rds.set(lock_key, "held-by-the-test", px=60_000)
        msg = receive(db, rds, favorites, "tel:+250788000010", "favorites")
        if contact_lock:
            wait_for(lambda: "failed to get lock for contact, requeued" in mailroom.log(), what="requeue log")
            assert msg_status(db, msg.msg_id) == "P"
            assert rds.llen(f"c:{favorites.org_id}:{first.contact_id}") == 1, "the event waits in the contact list"
            rds.delete(lock_key)
            wait_for(lambda: msg_status(db, msg.msg_id) == "H", what="handled once the lock is free")
        else:
            wait_for(lambda: msg_status(db, msg.msg_id) == "H", what="handled despite the lock")
            assert rds.get(lock_key) == "held-by-the-test"
        assert [r[1] for r in outgoing(db)] == ["What is your favorite color?"]
    finally:
        mailroom.terminate()


@pytest.mark.parametrize("push_failure_status", ["I", "Q"])
def test_failed_push_after_commit_marks_messages_for_retry(
    tmp_path: Path,
    migrated_pg: str,
    redis_url: str,
    db: psycopg.Connection[Any],
    rds: redis.Redis,
    favorites: Any,
    push_failure_status: str,
) -> None:
    # courier's high priority queue key holds a string: the push script's ZADD fails (WRONGTYPE)
    queue_key = f"msgs:{favorites.channel_uuid}|{favorites.tps}/1"
    rds.set(queue_key, "not a zset")
    mailroom = start_mailroom(tmp_path, migrated_pg, redis_url, switches={"push_failure_status": push_failure_status})
    try:
        msg = receive(db, rds, favorites, "tel:+250788000011", "favorites")
        wait_for(lambda: msg_status(db, msg.msg_id) == "H", what="handled")
        if push_failure_status == "I":
            wait_for(lambda: outgoing(db)[0][2] == "I", what="reply marked I")
            next_attempt = outgoing(db)[0][4]
            delay = (next_attempt - datetime.now(UTC)).total_seconds()
            assert 590 < delay <= 600, delay
        else:
            wait_for(lambda: "left Q" in mailroom.log(), what="push failure logged")
            assert outgoing(db)[0][2] == "Q"
        assert "error queuing messages to courier" in mailroom.log()
    finally:
        mailroom.terminate()


def test_retry_errored_cron_requeues_due_messages(
    tmp_path: Path, migrated_pg: str, redis_url: str, db: psycopg.Connection[Any], rds: redis.Redis, favorites: Any
) -> None:
    inbound = receive(db, None, favorites, "tel:+250788000012", "hi")
    due = datetime.now(UTC) - timedelta(seconds=5)
    later = datetime.now(UTC) + timedelta(minutes=10)
    ids = {}
    for text, status, next_attempt in [("due I", "I", due), ("due E", "E", due), ("not due", "I", later)]:
        ids[text] = db.execute(
            "INSERT INTO msgs_msg (org_id, channel_id, contact_id, contact_urn_id, direction, status, text, "
            "high_priority, error_count, next_attempt) VALUES (%s, %s, %s, %s, 'O', %s, %s, true, %s, %s) "
            "RETURNING id",
            (
                favorites.org_id,
                favorites.channel_id,
                inbound.contact_id,
                inbound.urn_id,
                status,
                text,
                1 if status == "E" else 0,
                next_attempt,
            ),
        ).fetchone()[0]  # type: ignore[index]
    mailroom = start_mailroom(
        tmp_path, migrated_pg, redis_url, extra_env={"MAILROOM_STANDIN_RETRY_ERRORED_INTERVAL": "0.5"}
    )
    try:
        wait_for(lambda: sorted(queued_texts(rds, favorites, HIGH)) == ["due E", "due I"], what="due msgs queued")
        assert msg_status(db, ids["due I"]) == "Q" and msg_status(db, ids["due E"]) == "Q"
        assert msg_status(db, ids["not due"]) == "I"
        pushed = {m["text"]: m for batch in courier_batches(rds, favorites, HIGH) for m in batch}
        assert pushed["due E"]["error_count"] == 1
        assert rds.exists("lock:retry_errored_messages_lock") == 0, "the cron lock is released after each fire"
    finally:
        mailroom.terminate()


@pytest.mark.parametrize("probability", [0.0, 1.0])
def test_duplicate_reply_switch_creates_a_second_row_and_queues_it(
    tmp_path: Path,
    migrated_pg: str,
    redis_url: str,
    db: psycopg.Connection[Any],
    rds: redis.Redis,
    favorites: Any,
    probability: float,
) -> None:
    mailroom = start_mailroom(tmp_path, migrated_pg, redis_url, switches={"duplicate_reply": probability})
    try:
        msg = receive(db, rds, favorites, "tel:+250788000013", "favorites")
        wait_for(lambda: msg_status(db, msg.msg_id) == "H", what="handled")
        rows = outgoing(db, msg.contact_id)
        copies = 2 if probability == 1.0 else 1
        assert [r[1] for r in rows] == ["What is your favorite color?"] * copies
        assert all(r[2] == "Q" for r in rows)
        pushed = wait_for(lambda: [m for b in courier_batches(rds, favorites, HIGH) for m in b], what="pushed")
        assert sorted(m["id"] for m in pushed) == sorted(r[0] for r in rows), "every copy has its own id"
        uuids = {r[0] for r in db.execute("SELECT uuid FROM msgs_msg WHERE direction = 'O'").fetchall()}
        assert len(uuids) == copies
    finally:
        mailroom.terminate()


def test_lost_pending_message_is_recovered_by_retry_msgs(
    tmp_path: Path, migrated_pg: str, redis_url: str, db: psycopg.Connection[Any], rds: redis.Redis, favorites: Any
) -> None:
    old = datetime.now(UTC) - timedelta(minutes=6)
    lost = receive(db, None, favorites, "tel:+250788000014", "favorites", created_on=old)  # no Redis event
    mailroom = start_mailroom(
        tmp_path, migrated_pg, redis_url, extra_env={"MAILROOM_STANDIN_RETRY_PENDING_INTERVAL": "0.5"}
    )
    try:
        wait_for(lambda: msg_status(db, lost.msg_id) == "H", what="lost message handled by retry_msgs")
        assert [r[1] for r in outgoing(db)] == ["What is your favorite color?"]
        hour_key = f"{lost.msg_id}_{datetime.now(UTC).hour}"
        assert any(rds.sismember(k, hour_key) for k in rds.keys("retried_msgs:*"))
    finally:
        mailroom.terminate()


def test_unknown_switch_or_bad_setting_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    env = {"PYTHONPATH": str(STANDIN_SRC), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "standin.mailroom"],
        env={**env, "STANDIN_SWITCHES": json.dumps({"duplicate_replies": 0.5})},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "unknown switch mailroom.duplicate_replies" in done.stderr
    assert "duplicate_reply" in done.stderr  # names the known ones
    assert "Traceback" not in done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "standin.mailroom"],
        env={**env, "MAILROOM_HANDLER_WORKERS": "many"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "MAILROOM_HANDLER_WORKERS: expected an integer, got 'many'" in done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "standin.mailroom"],
        env={**env, "STANDIN_SWITCHES": json.dumps({"push_failure_status": "X"})},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2 and "push_failure_status expects one of I, Q" in done.stderr


def test_health_reports_component_and_version(
    tmp_path: Path, migrated_pg: str, redis_url: str, db: psycopg.Connection[Any], rds: redis.Redis
) -> None:
    mailroom = start_mailroom(tmp_path, migrated_pg, redis_url)
    try:
        assert mailroom.health() == {"url": "/mr/", "component": "mailroom", "version": "9.2.2-standin"}
    finally:
        mailroom.terminate()


def test_health_switch_reports_dependencies(
    tmp_path: Path, migrated_pg: str, redis_url: str, db: psycopg.Connection[Any], rds: redis.Redis
) -> None:
    mailroom = start_mailroom(tmp_path, migrated_pg, redis_url, switches={"health_pings_deps": True})
    try:
        body = mailroom.health()
        assert body["component"] == "mailroom"
        assert body["version"] == "9.2.2-standin"
        assert body["db"] == "ok" and body["redis"] == "ok"
        assert body["elastic"] == "no client"  # nothing listens on MAILROOM_ELASTIC in these tests
    finally:
        mailroom.terminate()


def test_health_still_answers_with_database_down(tmp_path: Path, redis_url: str, rds: redis.Redis) -> None:
    mailroom = start_mailroom(tmp_path, "postgres://temba:temba@127.0.0.1:1/temba", redis_url)
    try:
        assert "db not reachable" in mailroom.log()
        body = mailroom.health()
        assert body["component"] == "mailroom" and "db" not in body
    finally:
        mailroom.terminate()


def _hold_lock_and_send(db: psycopg.Connection[Any], rds: redis.Redis, seed: Any) -> Any:
    first = receive(db, None, seed, "tel:+250788000015", "warm-up")
    rds.set(f"lock:c:{seed.org_id}:{first.contact_id}", "held-by-the-test", px=60_000)
    return receive(db, rds, seed, "tel:+250788000015", "favorites")


def test_sigterm_finishes_the_task_in_hand(
    tmp_path: Path, migrated_pg: str, redis_url: str, db: psycopg.Connection[Any], rds: redis.Redis, favorites: Any
) -> None:
    mailroom = start_mailroom(tmp_path, migrated_pg, redis_url, extra_env={"MAILROOM_STANDIN_CONTACT_LOCK_WAIT": "30"})
    try:
        msg = _hold_lock_and_send(db, rds, favorites)
        wait_for(lambda: rds.zcard(f"handler:{favorites.org_id}") == 0, what="task popped")
        mailroom.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert mailroom.proc.poll() is None, "still finishing its task"
        rds.delete(f"lock:c:{favorites.org_id}:{msg.contact_id}")
        assert mailroom.proc.wait(20) == 0
        assert msg_status(db, msg.msg_id) == "H"
        assert [r[1] for r in outgoing(db)] == ["What is your favorite color?"]
    finally:
        mailroom.kill()


def test_sigkill_loses_the_popped_task(
    tmp_path: Path, migrated_pg: str, redis_url: str, db: psycopg.Connection[Any], rds: redis.Redis, favorites: Any
) -> None:
    mailroom = start_mailroom(tmp_path, migrated_pg, redis_url, extra_env={"MAILROOM_STANDIN_CONTACT_LOCK_WAIT": "30"})
    msg = _hold_lock_and_send(db, rds, favorites)
    wait_for(lambda: rds.zcard(f"handler:{favorites.org_id}") == 0, what="task popped")
    mailroom.kill()
    rds.delete(f"lock:c:{favorites.org_id}:{msg.contact_id}")
    replacement = start_mailroom(tmp_path, migrated_pg, redis_url, name="mailroom-2")
    try:
        time.sleep(1.5)
        assert msg_status(db, msg.msg_id) == "P", "nobody handles it: the task died with the worker"
        assert rds.llen(f"c:{favorites.org_id}:{msg.contact_id}") == 1, "the event is stranded"
        assert rds.zcard(f"handler:{favorites.org_id}") == 0
        assert outgoing(db) == []
    finally:
        replacement.terminate()


def test_failing_event_is_retried_three_times_then_dropped(
    tmp_path: Path, migrated_pg: str, redis_url: str, db: psycopg.Connection[Any], rds: redis.Redis, favorites: Any
) -> None:
    mailroom = start_mailroom(tmp_path, migrated_pg, redis_url)
    try:
        good = receive(db, None, favorites, "tel:+250788000016", "favorites")
        broken = {
            "type": "msg_event",
            "org_id": favorites.org_id,
            "queued_on": "2024-01-01T00:00:00Z",
            "task": {
                "contact_id": good.contact_id,
                "msg_id": "not-a-number",
                "channel_id": favorites.channel_id,
                "urn_id": good.urn_id,
                "text": "favorites",
            },
        }
        rds.rpush(f"c:{favorites.org_id}:{good.contact_id}", json.dumps(broken))
        task = {"type": "handle_contact_event", "org_id": favorites.org_id, "task": {"contact_id": good.contact_id}}
        rds.zadd(f"handler:{favorites.org_id}", {json.dumps(task): time.time()})
        rds.zincrby("handler:active", 0, str(favorites.org_id))
        wait_for(lambda: "permanent failure" in mailroom.log(), what="third failure dropped the event")
        log = mailroom.log()
        assert "error_count=1" in log and "error_count=2" in log
        assert rds.llen(f"c:{favorites.org_id}:{good.contact_id}") == 0
        # the contact is not stuck: its next event is handled
        push_msg_event(
            rds,
            favorites,
            Inbound(good.msg_id, good.msg_uuid, good.contact_id, good.urn_id),
            "tel:+250788000016",
            "favorites",
        )
        wait_for(lambda: msg_status(db, good.msg_id) == "H", what="next event handled")
    finally:
        mailroom.terminate()


@pytest.mark.parametrize("db_pool_backoff", [False, True])
def test_dropped_database_connections_are_replaced_without_loss(
    tmp_path: Path,
    migrated_pg: str,
    redis_url: str,
    db: psycopg.Connection[Any],
    rds: redis.Redis,
    favorites: Any,
    db_pool_backoff: bool,
) -> None:
    """A failover behind the stable address drops every pooled connection: each pool (database/sql's way, or
    psycopg_pool's behind the switch) drops them at checkout and serves from new ones."""
    pg_info = psycopg.conninfo.conninfo_to_dict(migrated_pg)
    proxy = TcpProxy(str(pg_info.get("host", "127.0.0.1")), int(pg_info.get("port", 5432)))
    proxied = psycopg.conninfo.make_conninfo(migrated_pg, host="127.0.0.1", port=str(proxy.port))
    mailroom = start_mailroom(tmp_path, proxied, redis_url, switches={"db_pool_backoff": db_pool_backoff})
    try:
        first = receive(db, rds, favorites, "tel:+250788000017", "favorites")
        # H is the sprint's commit; the push follows in a transaction of its own, which a cut would fail (and the
        # event would be handled again, as real: fidelity row 4). The batch is in Redis before that transaction
        # commits; the contact's lock goes only after it (CI cut in between), so wait for both.
        wait_for(lambda: courier_batches(rds, favorites, HIGH), what="handled and pushed before the cut")
        lock = f"lock:c:{favorites.org_id}:{first.contact_id}"
        wait_for(lambda: not rds.exists(lock), what="the first event's post-commit transaction to end")
        assert proxy.cut_all() >= 1
        second = receive(db, rds, favorites, "tel:+250788000017", "red")
        wait_for(lambda: msg_status(db, second.msg_id) == "H", timeout=30, what="handled after the cut")
        texts = [r[1] for r in outgoing(db)]
        assert texts == ["What is your favorite color?", "Good choice, I like Red too! What is your favorite beer?"]
        assert "error running task" not in mailroom.log()
    finally:
        mailroom.terminate()
        proxy.close()


def test_dropped_redis_connections_may_lose_a_popped_task_then_recover(
    tmp_path: Path, migrated_pg: str, redis_url: str, db: psycopg.Connection[Any], rds: redis.Redis, favorites: Any
) -> None:
    """As real (redigo pool without a test on borrow): each dead pooled connection fails one command, so a
    task popped on a live connection can die on its next command; then new connections serve."""
    host, rest = redis_url.split("//", 1)[1].split(":", 1)
    port, redis_db = rest.split("/", 1)
    proxy = TcpProxy(host, int(port))
    mailroom = start_mailroom(tmp_path, migrated_pg, f"redis://127.0.0.1:{proxy.port}/{redis_db}")
    try:
        first = receive(db, rds, favorites, "tel:+250788000018", "favorites")
        wait_for(lambda: msg_status(db, first.msg_id) == "H", what="handled before the cut")
        assert proxy.cut_all() >= 1
        sent = []
        for n in range(8):
            msg = receive(db, rds, favorites, f"tel:+25078800009{n}", "favorites")
            sent.append(msg)
            try:
                wait_for(lambda m=msg: msg_status(db, m.msg_id) == "H", timeout=3, what="handled after the cut")
                break
            except AssertionError:
                continue
        else:
            raise AssertionError(f"mailroom never recovered after the Redis cut:\n{mailroom.log()}")
        lost = [m for m in sent if msg_status(db, m.msg_id) == "P"]
        for msg in lost:  # a lost task leaves the message P and its event stranded for retry_msgs
            assert rds.llen(f"c:{favorites.org_id}:{msg.contact_id}") == 1
        assert len(lost) == len(sent) - 1
    finally:
        mailroom.terminate()
        proxy.close()
