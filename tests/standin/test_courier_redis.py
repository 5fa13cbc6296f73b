"""Courier stand-in against a failing Redis, as courier v9.2.1 behaves (docs/fidelity.md rows 1, 3, 5, 6).

v9.2.1's Redis pool has no read deadline: a black-holed Redis stalls the foreman, the dethrottler and every
inbound request until the connection is closed from the other side. Without Redis at start it exits.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import redis
from test_courier_support import (
    CourierFactory,
    SeededChannel,
    ServiceProcess,
    TcpRelay,
    aggregator_fixture,  # noqa: F401 - fixture
    aggregator_records,
    couriers_fixture,  # noqa: F401 - fixture
    create_channel,
    create_outgoing,
    db_fixture,  # noqa: F401 - fixture
    free_port,
    queue_outgoing,
    redis_client_fixture,  # noqa: F401 - fixture
    relay_url,
    wait_for,
)

DB = psycopg.Connection[dict[str, Any]]
Aggregator = tuple[ServiceProcess, str]
EARLIER_TIMEOUTS = {"redis_read_timeout_s": 5.0, "redis_connect_timeout_s": 5.0}


def _redis_relay(redis_url: str) -> TcpRelay:
    parts = urlsplit(redis_url)
    return TcpRelay(parts.hostname or "127.0.0.1", parts.port or 6379)


def _sent(agg: str, msg_id: int) -> bool:
    return any(r["msg_id"] == msg_id for r in aggregator_records(agg))


def _phone() -> str:
    return "+2507" + str(uuid.uuid4().int)[:8]


def _rows_with_text(db: DB, channel: SeededChannel, text: str) -> int:
    row = db.execute(
        "SELECT count(*) AS n FROM msgs_msg WHERE channel_id = %s AND text = %s", (channel.id, text)
    ).fetchone()
    assert row is not None
    return int(row["n"])


def test_black_holed_redis_stalls_foreman_and_dethrottler_until_connections_close(
    couriers: CourierFactory, db: DB, redis_client: redis.Redis, redis_url: str, aggregator: Aggregator
) -> None:
    _, agg = aggregator
    channel = create_channel(db, redis_client, f"{agg}/send")
    stalled_relay, retrying_relay = _redis_relay(redis_url), _redis_relay(redis_url)
    try:
        stalled, _ = couriers.start(COURIER_REDIS=relay_url(redis_url, stalled_relay))
        retrying, _ = couriers.start(EARLIER_TIMEOUTS, COURIER_REDIS=relay_url(redis_url, retrying_relay))
        before = create_outgoing(db, channel, "sent before the black hole")
        queue_outgoing(redis_client, channel, [before])
        wait_for(lambda: _sent(agg, before["id"]), 10, "the send before the black hole")

        stalled_relay.hold()
        retrying_relay.hold()
        time.sleep(3)  # the foreman (every 0.25 s) and the dethrottler (every 1 s) have each sent a command
        stalled_early, retrying_early = stalled_relay.held_bytes, retrying_relay.held_bytes
        during = create_outgoing(db, channel, "queued inside the black hole")
        queue_outgoing(redis_client, channel, [during])  # straight to Redis: only the couriers are cut off
        time.sleep(8)  # longer than the earlier 5 s read timeout

        assert stalled_early > 0
        assert stalled_relay.held_bytes == stalled_early  # blocked on their first commands: no retry
        assert retrying_relay.held_bytes > retrying_early  # the earlier timeout gives up and tries again
        assert not _sent(agg, during["id"])
        assert "error popping" not in stalled.log_text() and "error dethrottling" not in stalled.log_text()
        assert "Timeout reading from" in retrying.log_text()

        stalled_relay.heal()  # connections closed, as a Redis restart or a server-side timeout would
        retrying.kill()
        wait_for(lambda: _sent(agg, during["id"]), 15, "sending to resume once the connections are closed")
        assert "error popping outgoing msg" in stalled.log_text()  # the blocked pop failed with the connection
    finally:
        stalled_relay.close()
        retrying_relay.close()


def test_inbound_request_hangs_in_dedup_while_redis_is_black_holed(
    couriers: CourierFactory, db: DB, redis_client: redis.Redis, redis_url: str
) -> None:
    channel = create_channel(db, redis_client, "http://127.0.0.1:9/send")
    stalled_relay, retrying_relay = _redis_relay(redis_url), _redis_relay(redis_url)
    settings = {"spool_flush_s": 1.0}
    try:
        _, stalled = couriers.start(settings, COURIER_REDIS=relay_url(redis_url, stalled_relay))
        _, retrying = couriers.start(
            {**settings, **EARLIER_TIMEOUTS}, COURIER_REDIS=relay_url(redis_url, retrying_relay)
        )
        for base in (stalled, retrying):  # warm the channel cache and the pools
            warm = httpx.post(f"{base}/c/ex/{channel.uuid}/receive", data={"from": _phone(), "text": base})
            assert warm.status_code == 200
        stalled_relay.hold()
        retrying_relay.hold()

        def receive(base: str, text: str) -> int | str:
            data = {"from": _phone(), "text": text}
            try:
                return httpx.post(f"{base}/c/ex/{channel.uuid}/receive", data=data, timeout=20).status_code
            except httpx.TimeoutException:
                return "timed out"

        with ThreadPoolExecutor(2) as pool:
            hung = pool.submit(receive, stalled, "into the black hole, v9.2")
            pool.submit(receive, retrying, "into the black hole, earlier timeouts")
            outcome = hung.result()

        assert outcome == "timed out"
        assert _rows_with_text(db, channel, "into the black hole, v9.2") == 0
        assert list((couriers.spool_dir / "msgs").glob("*.json")) == []
        # the earlier 5 s read timeout gave up on de-dup and wrote the message inside the black hole
        assert _rows_with_text(db, channel, "into the black hole, earlier timeouts") == 1

        stalled_relay.heal()
        # The request outlived its client: once the de-dup read fails the message is written after all (the
        # stand-in inserts it; v9.2.1's cancelled request context spools it and the flusher inserts it).
        wait_for(lambda: _rows_with_text(db, channel, "into the black hole, v9.2") == 1, 15, "the late write")
    finally:
        stalled_relay.close()
        retrying_relay.close()


def test_redis_unreachable_at_start_exits_non_zero_unless_switched_off(
    couriers: CourierFactory, redis_url: str
) -> None:
    nothing_listening = f"redis://127.0.0.1:{free_port()}/15"
    exiting, _ = couriers.start(wait=False, COURIER_REDIS=nothing_listening)

    assert exiting.wait_exit(timeout=20) != 0
    assert "redis not reachable" in exiting.log_text()
    assert "server listening" not in exiting.log_text()

    relay = _redis_relay(redis_url)
    try:
        relay.down()
        patient, base = couriers.start({"exit_without_redis": False}, COURIER_REDIS=relay_url(redis_url, relay))
        assert "redis err" in httpx.get(f"{base}/", timeout=5).text
        relay.up()
        wait_for(lambda: "redis ok" in httpx.get(f"{base}/", timeout=5).text, 10, "the late redis to be used")
        assert patient.proc is not None and patient.proc.poll() is None
    finally:
        relay.close()


def test_redis_reachable_at_start_starts_normally(couriers: CourierFactory) -> None:
    process, base = couriers.start()
    time.sleep(1.5)  # past the dethrottler's first tick, where v9.2.1 would panic on a nil pool

    assert process.proc is not None and process.proc.poll() is None
    assert "redis ok" in process.log_text() and "redis not reachable" not in process.log_text()
    assert "redis ok" in httpx.get(f"{base}/", timeout=5).text


def test_redis_unreachable_without_senders_keeps_running(couriers: CourierFactory) -> None:
    # v9.2.1 starts no dethrottler without senders, so nothing dereferences the nil pool at start
    unreachable = f"redis://127.0.0.1:{free_port()}/15"
    process, _ = couriers.start(COURIER_REDIS=unreachable, COURIER_MAX_WORKERS="0")
    time.sleep(1.5)

    assert "redis not reachable" in process.log_text()
    assert process.proc is not None and process.proc.poll() is None
