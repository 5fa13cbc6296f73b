"""Courier stand-in, inbound path: receive, de-dup, errors, spool and its replay, the planted drop bug."""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
from test_courier_support import (
    CourierFactory,
    SeededChannel,
    TcpRelay,
    aggregator_fixture,  # noqa: F401 - fixture
    couriers_fixture,  # noqa: F401 - fixture
    create_channel,
    db_fixture,  # noqa: F401 - fixture
    redis_client_fixture,  # noqa: F401 - fixture
    relay_url,
    wait_for,
)

DB = psycopg.Connection[dict[str, Any]]


def _phone() -> str:
    return "+2507" + str(uuid.uuid4().int)[:8]


def receive(base: str, channel: SeededChannel, sender: str, text: str, **extra: str) -> httpx.Response:
    return httpx.post(f"{base}/c/ex/{channel.uuid}/receive", data={"from": sender, "text": text, **extra}, timeout=30)


def inbound_rows(db: DB, channel: SeededChannel) -> list[dict[str, Any]]:
    return db.execute(
        "SELECT * FROM msgs_msg WHERE channel_id = %s AND direction = 'I' ORDER BY id", (channel.id,)
    ).fetchall()


def _count_from(db: DB, channel: SeededChannel, phone: str) -> int:
    row = db.execute(
        "SELECT count(*) AS n FROM msgs_msg m JOIN contacts_contacturn u ON u.id = m.contact_urn_id"
        " WHERE m.channel_id = %s AND u.identity = %s",
        (channel.id, f"tel:{phone}"),
    ).fetchone()
    assert row is not None
    return int(row["n"])


def spooled(spool_dir: Path) -> list[Path]:
    directory = spool_dir / "msgs"
    return sorted(directory.glob("*.json")) if directory.exists() else []


def test_receive_commits_pending_row_and_hands_it_to_mailroom(
    couriers: CourierFactory, db: DB, redis_client: redis.Redis
) -> None:
    channel = create_channel(db, redis_client, "http://127.0.0.1:9/send")
    _, base = couriers.start()
    phone = _phone()

    response = receive(base, channel, phone, "hello one")

    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Message Accepted"
    [data] = body["data"]
    assert data["type"] == "msg" and data["channel_uuid"] == channel.uuid
    assert data["text"] == "hello one" and data["urn"] == f"tel:{phone}"
    assert data["received_on"].endswith("Z")
    [row] = inbound_rows(db, channel)
    assert str(row["uuid"]) == data["msg_uuid"]
    assert (row["direction"], row["status"], row["msg_type"], row["visibility"]) == ("I", "P", "T", "V")
    assert row["org_id"] == channel.org_id and row["text"] == "hello one"
    urn = db.execute("SELECT * FROM contacts_contacturn WHERE id = %s", (row["contact_urn_id"],)).fetchone()
    assert urn is not None and urn["identity"] == f"tel:{phone}" and urn["contact_id"] == row["contact_id"]

    [event_json] = redis_client.lrange(f"c:{channel.org_id}:{row['contact_id']}", 0, -1)
    event = json.loads(event_json)
    assert event["type"] == "msg_event" and event["org_id"] == channel.org_id
    task = event["task"]
    assert task["msg_id"] == row["id"] and task["msg_uuid"] == data["msg_uuid"]
    assert task["contact_id"] == row["contact_id"] and task["urn_id"] == row["contact_urn_id"]
    assert task["channel_id"] == channel.id and task["urn"] == f"tel:{phone}"
    assert task["text"] == "hello one" and task["attachments"] == [] and task["new_contact"] is True
    [(handle_json, score)] = redis_client.zrange(f"handler:{channel.org_id}", 0, -1, withscores=True)
    handle = json.loads(handle_json)
    assert handle["type"] == "handle_contact_event" and handle["task"] == {"contact_id": row["contact_id"]}
    assert score < time.time() - 9_000_000  # high priority: scored ~10^7 s in the past
    assert redis_client.zscore("handler:active", str(channel.org_id)) is not None

    second = receive(base, channel, phone, "hello two")
    assert second.status_code == 200
    rows = inbound_rows(db, channel)
    assert len(rows) == 2 and rows[1]["contact_id"] == row["contact_id"]
    events = redis_client.lrange(f"c:{channel.org_id}:{row['contact_id']}", 0, -1)
    assert json.loads(events[1])["task"]["new_contact"] is False


def test_repeat_within_window_returns_first_uuid_and_writes_nothing(
    couriers: CourierFactory, db: DB, redis_client: redis.Redis
) -> None:
    channel = create_channel(db, redis_client, "http://127.0.0.1:9/send")
    _, base = couriers.start()
    phone = _phone()

    first = receive(base, channel, phone, "same words").json()["data"][0]["msg_uuid"]
    repeat = receive(base, channel, phone, "same words")
    other_text = receive(base, channel, phone, "other words").json()["data"][0]["msg_uuid"]

    assert repeat.status_code == 200 and repeat.json()["data"][0]["msg_uuid"] == first
    assert other_text != first
    assert [str(r["uuid"]) for r in inbound_rows(db, channel)] == [first, other_text]


def test_a_crash_after_the_task_push_and_before_the_seen_mark_stores_and_queues_the_retry_again(
    couriers: CourierFactory, db: DB, redis_client: redis.Redis
) -> None:
    """Courier v9.2.1 marks seen-msgs last (writeMsg: insert, MULTI, then the mark). A courier killed in
    between leaves no mark, so the load balancer's retry on the other courier is stored and queued again:
    the MO is handled twice (weak_spots.courier_killed_between_push_and_seen_mark)."""
    channel = create_channel(db, redis_client, "http://127.0.0.1:9/send")
    first, slow_base = couriers.start({"seen_mark_delay_ms": 10_000})
    _, base = couriers.start()
    phone = _phone()
    pending = ThreadPoolExecutor(1).submit(receive, slow_base, channel, phone, "cut after the push")

    def queued_events() -> list[bytes]:
        rows = [r for r in inbound_rows(db, channel) if r["text"] == "cut after the push"]
        return redis_client.lrange(f"c:{channel.org_id}:{rows[0]['contact_id']}", 0, -1) if rows else []

    wait_for(lambda: len(queued_events()) == 1, 10, "the first courier's insert and task push")
    first.kill()  # inside the window between the push and the seen-msgs mark
    with pytest.raises(httpx.HTTPError):
        pending.result(timeout=10)

    retried = receive(base, channel, phone, "cut after the push")

    assert retried.status_code == 200
    copies = [r for r in inbound_rows(db, channel) if r["text"] == "cut after the push"]
    assert len(copies) == 2 and str(copies[1]["uuid"]) == retried.json()["data"][0]["msg_uuid"]
    assert len(queued_events()) == 2  # both rows go to mailroom: the step is answered twice


def test_seen_msgs_interval_switch_sets_the_dedup_window(
    couriers: CourierFactory, db: DB, redis_client: redis.Redis
) -> None:
    channel = create_channel(db, redis_client, "http://127.0.0.1:9/send")
    _, short_base = couriers.start({"seen_msgs_interval_s": 1})
    _, long_base = couriers.start({"seen_msgs_interval_s": 5})

    short_phone, long_phone = _phone(), _phone()
    receive(short_base, channel, short_phone, "again")
    receive(long_base, channel, long_phone, "again")
    time.sleep(2.1)  # past two 1 s intervals, within one 5 s interval
    receive(short_base, channel, short_phone, "again")
    receive(long_base, channel, long_phone, "again")

    counts = {phone: _count_from(db, channel, phone) for phone in (short_phone, long_phone)}
    assert counts == {short_phone: 2, long_phone: 1}


def test_handler_errors_are_400_with_courier_error_body(
    couriers: CourierFactory, db: DB, redis_client: redis.Redis
) -> None:
    channel = create_channel(db, redis_client, "http://127.0.0.1:9/send")
    _, base = couriers.start()

    unknown = httpx.post(f"{base}/c/ex/{uuid.uuid4()}/receive", data={"from": _phone(), "text": "x"})
    no_sender = httpx.post(f"{base}/c/ex/{channel.uuid}/receive", data={"text": "x"})
    bad_number = receive(base, channel, "12", "x")
    bad_date = receive(base, channel, _phone(), "x", date="yesterday")

    assert unknown.status_code == 400
    assert unknown.json() == {"message": "Error", "data": [{"type": "error", "error": "channel not found"}]}
    assert no_sender.status_code == 400
    assert no_sender.json()["data"][0]["error"] == "must have one of 'sender' or 'from' set"
    assert bad_number.status_code == 400 and bad_number.json()["data"][0]["error"] == "not a possible number"
    assert bad_date.status_code == 400
    assert bad_date.json()["data"][0]["error"] == "invalid date format, must be RFC 3339"
    assert inbound_rows(db, channel) == []


def test_get_with_query_string_and_sender_field_is_accepted(
    couriers: CourierFactory, db: DB, redis_client: redis.Redis
) -> None:
    channel = create_channel(db, redis_client, "http://127.0.0.1:9/send")
    _, base = couriers.start()
    phone = _phone()

    response = httpx.get(
        f"{base}/c/ex/{channel.uuid}/receive",
        params={"sender": phone, "text": "by get", "date": "2024-05-01T10:00:00Z"},
    )

    assert response.status_code == 200, response.text
    [row] = inbound_rows(db, channel)
    assert row["text"] == "by get" and row["sent_on"].isoformat().startswith("2024-05-01T10:00:00")


def test_cold_channel_cache_with_db_down_answers_400(
    couriers: CourierFactory, db: DB, pg_url: str, redis_client: redis.Redis
) -> None:
    channel = create_channel(db, redis_client, "http://127.0.0.1:9/send")
    relay = TcpRelay(*_host_port(pg_url))
    try:
        _, base = couriers.start(db_url=relay_url(pg_url, relay))
        relay.down()

        response = receive(base, channel, _phone(), "while the db is down")

        assert response.status_code == 400
        assert response.json()["message"] == "Error"
        assert list((couriers.spool_dir / "msgs").glob("*.json")) == []
    finally:
        relay.close()


def test_db_down_spools_then_flusher_replays_and_deletes(
    couriers: CourierFactory, db: DB, pg_url: str, redis_client: redis.Redis
) -> None:
    channel = create_channel(db, redis_client, "http://127.0.0.1:9/send")
    relay = TcpRelay(*_host_port(pg_url))
    try:
        _, base = couriers.start({"spool_flush_s": 1.0}, db_url=relay_url(pg_url, relay))
        phone = _phone()
        assert receive(base, channel, phone, "warms the channel cache").status_code == 200
        relay.down()

        response = receive(base, channel, phone, "written while the db is down")

        assert response.status_code == 200
        msg_uuid = response.json()["data"][0]["msg_uuid"]
        [spool_file] = spooled(couriers.spool_dir)
        document = json.loads(spool_file.read_text())
        assert document["uuid"] == msg_uuid and document["channel_uuid"] == channel.uuid
        assert document["urn"] == f"tel:{phone}" and document["text"] == "written while the db is down"
        assert len(inbound_rows(db, channel)) == 1

        time.sleep(1.5)  # a flush pass with the DB still down keeps the file
        assert spooled(couriers.spool_dir) == [spool_file]
        relay.up()

        wait_for(lambda: spooled(couriers.spool_dir) == [], 10, "the spool file to be flushed and deleted")
        rows = inbound_rows(db, channel)
        assert [str(r["uuid"]) for r in rows][1:] == [msg_uuid]
        assert rows[1]["status"] == "P" and rows[1]["sent_on"] is None  # v9 spools no received date
        events = redis_client.lrange(f"c:{channel.org_id}:{rows[1]['contact_id']}", 0, -1)
        assert json.loads(events[-1])["task"]["msg_uuid"] == msg_uuid
    finally:
        relay.close()


def test_spool_switch_off_answers_400_on_db_failure(
    couriers: CourierFactory, db: DB, pg_url: str, redis_client: redis.Redis
) -> None:
    channel = create_channel(db, redis_client, "http://127.0.0.1:9/send")
    relay = TcpRelay(*_host_port(pg_url))
    try:
        _, base = couriers.start({"spool": False}, db_url=relay_url(pg_url, relay))
        assert receive(base, channel, _phone(), "warm").status_code == 200
        relay.down()

        response = receive(base, channel, _phone(), "lost, not spooled")

        assert response.status_code == 400
        assert spooled(couriers.spool_dir) == []
    finally:
        relay.close()


def test_black_holed_db_blocks_the_write_past_the_backend_timeout_until_the_connection_closes(
    couriers: CourierFactory, db: DB, pg_url: str, redis_client: redis.Redis
) -> None:
    channel = create_channel(db, redis_client, "http://127.0.0.1:9/send")
    relay = TcpRelay(*_host_port(pg_url))
    try:
        _, base = couriers.start({"spool_flush_s": 1.0}, db_url=relay_url(pg_url, relay))
        assert receive(base, channel, _phone(), "warms the channel cache").status_code == 200
        relay.hold()

        # courier's 20 s backend timeout sends a cancel that the black hole swallows and, as lib/pq, keeps
        # waiting; the stand-in answered 200 (spooled) after 30 s when psycopg 3.3 gave up instead
        with pytest.raises(httpx.TimeoutException):
            httpx.post(
                f"{base}/c/ex/{channel.uuid}/receive", data={"from": _phone(), "text": "into the hole"}, timeout=32
            )
        assert spooled(couriers.spool_dir) == []
        relay.heal()

        def written() -> bool:
            return any(r["text"] == "into the hole" for r in inbound_rows(db, channel))

        # the closed connection fails the expired write: spooled, then flushed
        wait_for(written, 15, "the blocked message to be spooled and flushed")
        assert [r["text"] for r in inbound_rows(db, channel)].count("into the hole") == 1
    finally:
        relay.close()


def _crash_between_insert_and_delete(
    couriers: CourierFactory, db: DB, pg_url: str, client: redis.Redis, switches: dict[str, Any]
) -> tuple[SeededChannel, str]:
    """Spool a message, let the flusher insert it, SIGKILL courier before the file is deleted, restart."""
    channel = create_channel(db, client, "http://127.0.0.1:9/send")
    relay = TcpRelay(*_host_port(pg_url))
    try:
        settings = {"spool_flush_s": 1.0, "spool_delete_delay_ms": 5000, **switches}
        first, base = couriers.start(settings, db_url=relay_url(pg_url, relay))
        assert receive(base, channel, _phone(), "warm").status_code == 200
        relay.down()
        msg_uuid = receive(base, channel, _phone(), "spooled then replayed").json()["data"][0]["msg_uuid"]
        assert len(spooled(couriers.spool_dir)) == 1
        relay.up()
        wait_for(lambda: any(str(r["uuid"]) == msg_uuid for r in inbound_rows(db, channel)), 10, "the flusher's insert")
        first.kill()  # inside the window between the insert and the file's deletion
        assert len(spooled(couriers.spool_dir)) == 1

        couriers.start({**settings, "spool_delete_delay_ms": 0}, db_url=relay_url(pg_url, relay))
        wait_for(lambda: spooled(couriers.spool_dir) == [], 10, "the restarted courier to flush the file")
        return channel, msg_uuid
    finally:
        relay.close()


def test_crash_between_flush_insert_and_delete_replays_a_duplicate(
    couriers: CourierFactory, db: DB, pg_url: str, redis_client: redis.Redis
) -> None:
    channel, msg_uuid = _crash_between_insert_and_delete(couriers, db, pg_url, redis_client, {})

    copies = [r for r in inbound_rows(db, channel) if str(r["uuid"]) == msg_uuid]
    assert len(copies) == 2  # real v9: no fsync, no unique uuid, no replay bookkeeping


def test_spool_dedup_switch_prevents_the_replayed_duplicate(
    couriers: CourierFactory, db: DB, pg_url: str, redis_client: redis.Redis
) -> None:
    channel, msg_uuid = _crash_between_insert_and_delete(couriers, db, pg_url, redis_client, {"spool_dedup": True})

    copies = [r for r in inbound_rows(db, channel) if str(r["uuid"]) == msg_uuid]
    assert len(copies) == 1


def test_drop_after_ack_acknowledges_but_writes_nothing(
    couriers: CourierFactory, db: DB, redis_client: redis.Redis
) -> None:
    channel = create_channel(db, redis_client, "http://127.0.0.1:9/send")
    _, dropping = couriers.start({"drop_after_ack": 1.0})

    response = receive(dropping, channel, _phone(), "acknowledged and dropped")

    assert response.status_code == 200 and response.json()["message"] == "Message Accepted"
    assert inbound_rows(db, channel) == []
    assert spooled(couriers.spool_dir) == []
    assert redis_client.zcard(f"handler:{channel.org_id}") == 0

    _, honest = couriers.start({"drop_after_ack": 0.0})
    assert receive(honest, channel, _phone(), "kept").status_code == 200
    assert len(inbound_rows(db, channel)) == 1


def _host_port(pg_url: str) -> tuple[str, int]:
    info = psycopg.conninfo.conninfo_to_dict(pg_url)
    return str(info.get("host") or "127.0.0.1"), int(info.get("port") or 5432)
