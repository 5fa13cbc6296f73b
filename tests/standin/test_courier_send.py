"""Courier stand-in, outbound path: queue pops, sends to the aggregator, statuses, guard, errors, callbacks."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import redis
from test_courier_support import (
    CourierFactory,
    ServiceProcess,
    aggregator_fixture,  # noqa: F401 - fixture
    aggregator_records,
    configure_aggregator,
    couriers_fixture,  # noqa: F401 - fixture
    create_channel,
    create_outgoing,
    db_fixture,  # noqa: F401 - fixture
    msg_row,
    queue_outgoing,
    redis_client_fixture,  # noqa: F401 - fixture
    wait_for,
)

DB = psycopg.Connection[dict[str, Any]]
Aggregator = tuple[ServiceProcess, str]


def sent_set() -> str:
    return "msgs_sent_" + datetime.now(UTC).strftime("%Y_%m_%d")


def status_of(db: DB, msg_id: int) -> str:
    return str(msg_row(db, msg_id)["status"])


def records_for(base: str, msg_id: int) -> list[dict[str, Any]]:
    return [r for r in aggregator_records(base) if r["msg_id"] == msg_id]


def test_send_reaches_aggregator_and_marks_wired_and_sent_guard(
    couriers: CourierFactory, db: DB, redis_client: redis.Redis, aggregator: Aggregator
) -> None:
    _, agg = aggregator
    channel = create_channel(db, redis_client, f"{agg}/send")
    couriers.start()
    msg = create_outgoing(db, channel, "Thanks & welcome <friend>")

    queue_outgoing(redis_client, channel, [msg])

    [record] = wait_for(lambda: records_for(agg, msg["id"]), 10, "the aggregator to receive the MT")
    assert record["to"] == msg["urn"].removeprefix("tel:")
    assert record["from"] == channel.address and record["channel"] == channel.uuid
    assert record["text"] == "Thanks & welcome <friend>" and record["method"] == "POST"
    wait_for(lambda: status_of(db, msg["id"]) == "W", 5, "status W")
    row = msg_row(db, msg["id"])
    assert row["sent_on"] is not None and row["error_count"] == 0
    assert redis_client.sismember(sent_set(), str(msg["id"]))


def test_sent_guard_skips_an_id_already_sent_and_switch_disables_it(
    couriers: CourierFactory, db: DB, redis_client: redis.Redis, aggregator: Aggregator
) -> None:
    _, agg = aggregator
    channel = create_channel(db, redis_client, f"{agg}/send")
    guarded = create_outgoing(db, channel, "already sent yesterday")
    unguarded = create_outgoing(db, channel, "already sent, guard off")
    yesterday = "msgs_sent_" + (datetime.now(UTC) - timedelta(days=1)).strftime("%Y_%m_%d")
    redis_client.sadd(yesterday, str(guarded["id"]))
    redis_client.sadd(sent_set(), str(unguarded["id"]))

    first, _ = couriers.start()
    queue_outgoing(redis_client, channel, [guarded])
    wait_for(lambda: status_of(db, guarded["id"]) == "W", 10, "the guarded msg to be marked W")
    assert records_for(agg, guarded["id"]) == []
    first.terminate()

    couriers.start({"sent_guard": False})
    queue_outgoing(redis_client, channel, [unguarded])
    wait_for(lambda: records_for(agg, unguarded["id"]), 10, "the unguarded msg to be sent again")
    wait_for(lambda: status_of(db, unguarded["id"]) == "W", 5, "status W")


def test_errors_walk_e_e_f_with_backoff_and_clear_the_sent_flag(
    couriers: CourierFactory, db: DB, redis_client: redis.Redis, aggregator: Aggregator
) -> None:
    _, agg = aggregator
    configure_aggregator(agg, status=500)
    channel = create_channel(db, redis_client, f"{agg}/send")
    couriers.start()
    msg = create_outgoing(db, channel, "will fail three times")
    redis_client.sadd(sent_set(), "0")  # keep the set present so SREM is observable below

    expected = [("E", 1, 5), ("E", 2, 10), ("F", 3, None)]
    for status, error_count, backoff_min in expected:
        queue_outgoing(redis_client, channel, [msg])
        wait_for(lambda n=error_count: msg_row(db, msg["id"])["error_count"] == n, 10, f"error_count {error_count}")
        row = msg_row(db, msg["id"])
        assert row["status"] == status
        assert row["sent_on"] is None
        if backoff_min is not None:
            due_in = (row["next_attempt"] - datetime.now(UTC)).total_seconds()
            assert backoff_min * 60 - 30 < due_in <= backoff_min * 60
        assert not redis_client.sismember(sent_set(), str(msg["id"]))
    assert len(records_for(agg, msg["id"])) == 3


def test_4xx_fails_at_once_and_switch_restores_v9_0_retries(
    couriers: CourierFactory, db: DB, redis_client: redis.Redis, aggregator: Aggregator
) -> None:
    _, agg = aggregator
    configure_aggregator(agg, status=400)
    channel = create_channel(db, redis_client, f"{agg}/send")
    failed = create_outgoing(db, channel, "bad request, v9.2")
    retried = create_outgoing(db, channel, "bad request, v9.0")

    first, _ = couriers.start()
    queue_outgoing(redis_client, channel, [failed])
    wait_for(lambda: status_of(db, failed["id"]) == "F", 10, "status F")
    assert msg_row(db, failed["id"])["error_count"] == 0
    first.terminate()

    couriers.start({"nonretryable_fails": False})
    queue_outgoing(redis_client, channel, [retried])
    wait_for(lambda: status_of(db, retried["id"]) == "E", 10, "status E")
    assert msg_row(db, retried["id"])["error_count"] == 1


def test_response_check_mismatch_fails_at_once_and_is_an_error_in_v9_0(
    couriers: CourierFactory, db: DB, redis_client: redis.Redis, aggregator: Aggregator
) -> None:
    _, agg = aggregator
    configure_aggregator(agg, body="REJECTED")
    channel = create_channel(db, redis_client, f"{agg}/send", mt_response_check="ACCEPTED")
    failed = create_outgoing(db, channel, "checked answer, v9.2")
    retried = create_outgoing(db, channel, "checked answer, v9.0")

    first, _ = couriers.start()
    queue_outgoing(redis_client, channel, [failed])
    wait_for(lambda: status_of(db, failed["id"]) == "F", 10, "status F")
    first.terminate()

    couriers.start({"nonretryable_fails": False})
    queue_outgoing(redis_client, channel, [retried])
    wait_for(lambda: status_of(db, retried["id"]) == "E", 10, "status E")
    configure_aggregator(agg, body="ACCEPTED")
    queue_outgoing(redis_client, channel, [retried])
    wait_for(lambda: status_of(db, retried["id"]) == "W", 10, "status W once the answer matches")


def test_send_timeout_switch(
    couriers: CourierFactory, db: DB, redis_client: redis.Redis, aggregator: Aggregator
) -> None:
    _, agg = aggregator
    configure_aggregator(agg, latency_ms=1500)
    channel = create_channel(db, redis_client, f"{agg}/send")
    slow_for_one = create_outgoing(db, channel, "answered after the client gave up")
    fast_enough = create_outgoing(db, channel, "answered in time")

    first, _ = couriers.start({"send_timeout_s": 0.5})
    queue_outgoing(redis_client, channel, [slow_for_one])
    wait_for(lambda: status_of(db, slow_for_one["id"]) == "E", 10, "status E after the timeout")
    assert len(records_for(agg, slow_for_one["id"])) == 1  # the network got it: a later retry duplicates
    first.terminate()

    couriers.start({"send_timeout_s": 5.0})
    queue_outgoing(redis_client, channel, [fast_enough])
    wait_for(lambda: status_of(db, fast_enough["id"]) == "W", 10, "status W within the timeout")


def test_default_disallowed_networks_refuse_loopback(
    couriers: CourierFactory, db: DB, redis_client: redis.Redis, aggregator: Aggregator
) -> None:
    _, agg = aggregator
    channel = create_channel(db, redis_client, f"{agg}/send")
    process, _ = couriers.start()
    process.terminate()
    default_env = {k: v for k, v in process.env.items() if k != "COURIER_DISALLOWED_NETWORKS"}
    blocked = ServiceProcess("standin.courier", default_env, process.log_path, process.health_url)
    couriers.started.append(blocked)
    blocked.start()
    msg = create_outgoing(db, channel, "to a private address")

    queue_outgoing(redis_client, channel, [msg])

    wait_for(lambda: status_of(db, msg["id"]) == "E", 10, "status E for a disallowed address")
    assert records_for(agg, msg["id"]) == []
    assert "request not permitted by access config" in blocked.log_text()


def test_status_callbacks_write_s_d_f_and_ignore_unknown_ids(
    couriers: CourierFactory, db: DB, redis_client: redis.Redis
) -> None:
    channel = create_channel(db, redis_client, "http://127.0.0.1:9/send")
    _, base = couriers.start()
    msgs = {action: create_outgoing(db, channel, f"to be {action}") for action in ("sent", "delivered", "failed")}

    for action, msg in msgs.items():
        response = httpx.post(f"{base}/c/ex/{channel.uuid}/{action}", data={"id": str(msg["id"])})
        assert response.status_code == 200
        assert response.json()["message"] == "Status Update Accepted"
        assert response.json()["data"][0]["msg_id"] == msg["id"]
    unknown = httpx.get(f"{base}/c/ex/{channel.uuid}/delivered", params={"id": "999999999"})
    missing = httpx.get(f"{base}/c/ex/{channel.uuid}/delivered")

    assert unknown.status_code == 200
    assert missing.status_code == 400
    expected = {"sent": "S", "delivered": "D", "failed": "F"}
    for action, msg in msgs.items():
        wait_for(lambda m=msg, a=action: status_of(db, m["id"]) == expected[a], 5, f"status {expected[action]}")
    assert msg_row(db, msgs["delivered"]["id"])["sent_on"] is not None


def test_aggregator_delivery_callback_reaches_d(
    couriers: CourierFactory, db: DB, redis_client: redis.Redis, aggregator: Aggregator
) -> None:
    _, agg = aggregator
    channel = create_channel(db, redis_client, f"{agg}/send")
    _, base = couriers.start()
    configure_aggregator(agg, callback_base=base, delivered_delay_ms=200)
    msg = create_outgoing(db, channel, "delivered in the end")

    queue_outgoing(redis_client, channel, [msg])

    wait_for(lambda: status_of(db, msg["id"]) == "D", 10, "the delivery callback to set D")
    health = httpx.get(f"{agg}/health").json()
    assert health["callbacks"]["succeeded"] >= 1


def test_status_batch_ms_switch_delays_the_w_write(
    couriers: CourierFactory, db: DB, redis_client: redis.Redis, aggregator: Aggregator
) -> None:
    _, agg = aggregator
    channel = create_channel(db, redis_client, f"{agg}/send")
    quick = create_outgoing(db, channel, "written within half a second")
    slow = create_outgoing(db, channel, "written after three seconds")

    first, _ = couriers.start()
    queue_outgoing(redis_client, channel, [quick])
    wait_for(lambda: records_for(agg, quick["id"]), 10, "the quick send")
    sent_at = time.monotonic()
    wait_for(lambda: status_of(db, quick["id"]) == "W", 5, "status W")
    assert time.monotonic() - sent_at < 1.5
    first.terminate()

    second, _ = couriers.start({"status_batch_ms": 3000})
    queue_outgoing(redis_client, channel, [slow])
    wait_for(lambda: records_for(agg, slow["id"]), 10, "the slow send")
    time.sleep(1.5)
    assert status_of(db, slow["id"]) == "Q"
    second.kill()  # SIGKILL while the W sits in the batch: lost, as in v9
    time.sleep(3)
    assert status_of(db, slow["id"]) == "Q"
    assert redis_client.sismember(sent_set(), str(slow["id"]))  # the guard did record the send


def test_rest_of_a_batch_is_requeued_after_batch_requeue_s(
    couriers: CourierFactory, db: DB, redis_client: redis.Redis, aggregator: Aggregator
) -> None:
    _, agg = aggregator
    channel = create_channel(db, redis_client, f"{agg}/send")

    def gap(switches: dict[str, Any]) -> float:
        process, _ = couriers.start(switches)
        batch = [create_outgoing(db, channel, f"part {n}", phone="+250788000111") for n in (1, 2)]
        queue_outgoing(redis_client, channel, batch)
        records = [wait_for(lambda m=m: records_for(agg, m["id"]), 10, "a batch part")[0] for m in batch]
        process.terminate()
        return (records[1]["received_wall_ns"] - records[0]["received_wall_ns"]) / 1e9

    default_gap = gap({})
    short_gap = gap({"batch_requeue_s": 0.3})

    assert 2.7 <= default_gap <= 4.5
    assert short_gap < 1.5


def test_tps_paces_sends_over_the_seconds(
    couriers: CourierFactory, db: DB, redis_client: redis.Redis, aggregator: Aggregator
) -> None:
    _, agg = aggregator
    channel = create_channel(db, redis_client, f"{agg}/send", tps=2)
    couriers.start()
    msgs = [create_outgoing(db, channel, f"throttled {n}") for n in range(10)]

    for msg in msgs:
        queue_outgoing(redis_client, channel, [msg])

    records = [wait_for(lambda m=m: records_for(agg, m["id"]), 20, "a throttled send")[0] for m in msgs]
    arrivals = sorted(r["received_wall_ns"] / 1e9 for r in records)
    # At most 2 pops per clock second puts 10 pops in at least 5 seconds: more than 4 s from the first to
    # the last. Arrival adds each send's latency, so allow a second of it; unthrottled (4 senders, queued
    # at once) all 10 land well within a second. No per-second count: a slow second can shift an arrival
    # into the next one on a loaded machine.
    assert arrivals[-1] - arrivals[0] >= 3.0


def test_json_body_template_and_headers(
    couriers: CourierFactory, db: DB, redis_client: redis.Redis, aggregator: Aggregator
) -> None:
    _, agg = aggregator
    channel = create_channel(
        db,
        redis_client,
        f"{agg}/json",
        content_type="json",
        body='{"id": {{id}}, "to": {{to}}, "text": {{text}}, "channel": {{channel}}}',
        send_authorization="Token secret",
    )
    couriers.start()
    msg = create_outgoing(db, channel, 'quotes " and ünïcode')

    queue_outgoing(redis_client, channel, [msg])

    wait_for(lambda: status_of(db, msg["id"]) == "W", 10, "status W")
    [record] = records_for(agg, msg["id"])
    assert record["text"] == 'quotes " and ünïcode' and record["path"] == "/json"
