"""Mailroom stand-in: `POST /mr/msg/send` as mailroom v9.2.2 `web/msg/send.go` (what RapidPro's
`POST /api/v2/messages` calls): the message row, the courier queue, and the error shapes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
from standin.mailroom.msg_send import repetitions_key
from test_mailroom_support import (
    MailroomProcess,
    Seed,
    courier_batches,
    db_fixture,  # noqa: F401 - fixture
    migrated_pg_fixture,  # noqa: F401 - fixture
    rds_fixture,  # noqa: F401 - fixture
    seed_org,
    start_mailroom,
)

RESPONSE_KEYS = {"id", "channel", "contact", "urn", "text", "attachments", "status", "created_on", "modified_on"}


@pytest.fixture(scope="module")
def mailroom(migrated_pg: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailroomProcess]:
    proc = start_mailroom(tmp_path_factory.mktemp("msg-send"), migrated_pg, redis_url)
    yield proc
    proc.terminate()


def make_contact(
    conn: psycopg.Connection[Any], seed: Seed, phone: str | None, status: str = "A", name: str | None = "Ann"
) -> tuple[int, str, int | None]:
    contact_id, contact_uuid = conn.execute(
        "INSERT INTO contacts_contact (uuid, org_id, name, fields, status, is_active, created_on, modified_on) "
        "VALUES (%s, %s, %s, '{}', %s, true, now(), now()) RETURNING id, uuid::text",
        (str(uuid.uuid4()), seed.org_id, name, status),
    ).fetchone()  # type: ignore[misc]
    urn_id = None
    if phone is not None:
        urn_id = conn.execute(
            "INSERT INTO contacts_contacturn (org_id, contact_id, identity, scheme, path, priority, channel_id) "
            "VALUES (%s, %s, %s, 'tel', %s, 1000, %s) RETURNING id",
            (seed.org_id, contact_id, f"tel:{phone}", phone, seed.channel_id),
        ).fetchone()[0]  # type: ignore[index]
    return contact_id, contact_uuid, urn_id


def send(mailroom: MailroomProcess, body: Any, **headers: str) -> httpx.Response:
    return httpx.post(f"http://127.0.0.1:{mailroom.port}/mr/msg/send", json=body, headers=headers, timeout=30)


def outgoing_rows(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT id, status, high_priority, channel_id, contact_urn_id, metadata->>'failed_reason', text "
        "FROM msgs_msg WHERE direction = 'O' ORDER BY id"
    ).fetchall()


def test_send_inserts_a_queued_high_priority_message_and_queues_it_to_courier(
    mailroom: MailroomProcess, db: psycopg.Connection[Any], rds: redis.Redis
) -> None:
    seed = seed_org(db)
    contact_id, contact_uuid, urn_id = make_contact(db, seed, "+250788111222")

    response = send(mailroom, {"org_id": seed.org_id, "user_id": 1, "contact_id": contact_id, "text": "hello"})

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == RESPONSE_KEYS
    assert {k: body[k] for k in ("channel", "contact", "urn", "text", "attachments", "status")} == {
        "channel": {"uuid": seed.channel_uuid, "name": "External"},
        "contact": {"uuid": contact_uuid, "name": "Ann"},
        "urn": f"tel:+250788111222?id={urn_id}",
        "text": "hello",
        "attachments": [],
        "status": "Q",
    }
    assert abs(datetime.fromisoformat(body["created_on"]) - datetime.now(UTC)) < timedelta(minutes=1)
    # a user's chat message is high priority in v9.2.2 (newOutgoingTextMsg): courier's /1 queue
    assert outgoing_rows(db) == [(body["id"], "Q", True, seed.channel_id, urn_id, None, "hello")]
    [[queued]] = courier_batches(rds, seed, 1)
    assert (queued["id"], queued["text"], queued["urn"], queued["high_priority"], queued["origin"]) == (
        body["id"],
        "hello",
        "tel:+250788111222",
        True,
        "chat",
    )
    assert courier_batches(rds, seed, 0) == []


@pytest.mark.parametrize(
    ("method", "body", "status", "error"),
    [
        ("GET", None, 405, "illegal method: GET"),
        ("POST", {"user_id": 1, "contact_id": 1, "text": "hi"}, 400, "request failed validation: field 'org_id'"),
        ("POST", {"org_id": "{org}", "contact_id": 1, "text": "hi"}, 400, "request failed validation: field 'user_id'"),
        (
            "POST",
            {"org_id": 999999, "user_id": 1, "contact_id": 1, "text": "hi"},
            500,
            "unable to load org assets: error loading environment for org 999999: no org with id: 999999",
        ),
        (
            "POST",
            {"org_id": "{org}", "user_id": 1, "contact_id": 999999, "text": "hi"},
            500,
            "error loading contact: sql: no rows in result set",
        ),
    ],
)
def test_send_errors_have_mailroom_shapes_and_write_nothing(
    mailroom: MailroomProcess,
    db: psycopg.Connection[Any],
    rds: redis.Redis,
    method: str,
    body: dict[str, Any] | None,
    status: int,
    error: str,
) -> None:
    seed = seed_org(db)
    if body is not None:
        body = {k: (seed.org_id if v == "{org}" else v) for k, v in body.items()}
    response = httpx.request(method, f"http://127.0.0.1:{mailroom.port}/mr/msg/send", json=body, timeout=30)
    assert response.status_code == status
    assert set(response.json()) == {"error"} and response.json()["error"].startswith(error)
    assert outgoing_rows(db) == []
    assert rds.keys("msgs:*") == []


def test_unreachable_contacts_get_a_failed_message_that_is_not_queued(
    mailroom: MailroomProcess, db: psycopg.Connection[Any], rds: redis.Redis
) -> None:
    seed = seed_org(db)
    no_urn, no_urn_uuid, _ = make_contact(db, seed, None, name=None)
    blocked, _, blocked_urn = make_contact(db, seed, "+250788111333", status="B")

    lost = send(mailroom, {"org_id": seed.org_id, "user_id": 1, "contact_id": no_urn, "text": "where?"})
    stopped = send(mailroom, {"org_id": seed.org_id, "user_id": 1, "contact_id": blocked, "text": "blocked"})

    assert lost.status_code == stopped.status_code == 200
    lost_body, stopped_body = lost.json(), stopped.json()
    assert (lost_body["status"], lost_body["channel"], lost_body["urn"], lost_body["contact"]) == (
        "F",
        None,
        "",
        {"uuid": no_urn_uuid, "name": ""},
    )
    # a blocked contact still resolves its URN and channel; the message fails on the contact's status
    assert stopped_body["status"] == "F" and stopped_body["urn"] == f"tel:+250788111333?id={blocked_urn}"
    assert outgoing_rows(db) == [
        (lost_body["id"], "F", True, None, None, "D", "where?"),
        (stopped_body["id"], "F", True, seed.channel_id, blocked_urn, "C", "blocked"),
    ]
    assert rds.keys("msgs:*") == []


def test_twentieth_identical_text_within_five_minutes_fails_as_looping(
    mailroom: MailroomProcess, db: psycopg.Connection[Any], rds: redis.Redis
) -> None:
    seed = seed_org(db)
    contact_id, _, _ = make_contact(db, seed, "+250788111444")
    if 140 < time.time() % 300 < 155:
        time.sleep(20)  # the counter's window is now rounded to 5 minutes: keep the sends inside one

    statuses = [
        send(mailroom, {"org_id": seed.org_id, "user_id": 1, "contact_id": contact_id, "text": t}).json()["status"]
        for t in ["Same"] * 10 + ["SAME"] * 10
    ]

    assert statuses == ["Q"] * 19 + ["F"]
    assert [r[5] for r in outgoing_rows(db)] == [None] * 19 + ["L"]
    assert sum(len(batch) for batch in courier_batches(rds, seed, 1)) == 19


def test_redis_is_read_before_the_insert_and_a_failed_push_leaves_the_message_initializing(
    mailroom: MailroomProcess, db: psycopg.Connection[Any], rds: redis.Redis
) -> None:
    seed = seed_org(db)
    contact_id, _, _ = make_contact(db, seed, "+250788111555")
    body = {"org_id": seed.org_id, "user_id": 1, "contact_id": contact_id, "text": "hi"}
    # a key of the wrong type makes the repetition counter's HINCRBY fail, as Redis down would
    now = datetime.now(UTC)
    for moment in (now, now + timedelta(seconds=30)):
        rds.set(repetitions_key(moment), "not a hash")

    refused = send(mailroom, body)

    assert refused.status_code == 500
    assert refused.json()["error"].startswith("error creating outgoing message: error looking up msg repetitions:")
    assert outgoing_rows(db) == []

    rds.flushdb()
    rds.set(f"msgs:{seed.channel_uuid}|{seed.tps}/1", "not a zset")  # the push to courier fails
    accepted = send(mailroom, body)

    assert accepted.status_code == 200 and accepted.json()["status"] == "Q"  # the answer does not wait
    row = db.execute("SELECT status, next_attempt > now() FROM msgs_msg WHERE id = %s", (accepted.json()["id"],))
    assert row.fetchone() == ("I", True)


def test_auth_token_is_required_when_configured(
    migrated_pg: str, redis_url: str, db: psycopg.Connection[Any], rds: redis.Redis, tmp_path: Path
) -> None:
    seed = seed_org(db)
    contact_id, _, _ = make_contact(db, seed, "+250788111666")
    body = {"org_id": seed.org_id, "user_id": 1, "contact_id": contact_id, "text": "hi"}
    proc = start_mailroom(tmp_path, migrated_pg, redis_url, extra_env={"MAILROOM_AUTH_TOKEN": "sesame"})
    try:
        missing = send(proc, body)
        wrong = send(proc, body, Authorization="Token nope")
        right = send(proc, body, Authorization="Token sesame")
    finally:
        proc.terminate()

    for refused in (missing, wrong):
        assert refused.status_code == 401
        assert refused.json() == {"error": "invalid or missing authorization header"}
    assert right.status_code == 200 and right.json()["status"] == "Q"
    assert len(outgoing_rows(db)) == 1
