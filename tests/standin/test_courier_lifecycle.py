"""Courier stand-in, process lifecycle: health page, graceful SIGTERM, switch validation, channel cache TTL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import httpx
import psycopg
import redis
from test_courier_support import (
    STANDIN_SRC,
    CourierFactory,
    ServiceProcess,
    TcpRelay,
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
    relay_url,
    wait_for,
)

DB = psycopg.Connection[dict[str, Any]]
Aggregator = tuple[ServiceProcess, str]


def _host_port(pg_url: str) -> tuple[str, int]:
    info = psycopg.conninfo.conninfo_to_dict(pg_url)
    return str(info.get("host") or "127.0.0.1"), int(info.get("port") or 5432)


def test_health_is_always_200_and_reports_db_and_redis(couriers: CourierFactory, pg_url: str) -> None:
    relay = TcpRelay(*_host_port(pg_url))
    try:
        _, base = couriers.start(db_url=relay_url(pg_url, relay))
        healthy = httpx.get(f"{base}/")
        relay.down()
        db_down = httpx.get(f"{base}/")
    finally:
        relay.close()

    assert healthy.status_code == 200
    assert "db ok" in healthy.text and "redis ok" in healthy.text
    assert db_down.status_code == 200
    assert "db err" in db_down.text and "redis ok" in db_down.text


def test_sigterm_drains_the_send_in_flight_and_its_status(
    couriers: CourierFactory, db: DB, redis_client: redis.Redis, aggregator: Aggregator
) -> None:
    _, agg = aggregator
    configure_aggregator(agg, latency_ms=2000)
    channel = create_channel(db, redis_client, f"{agg}/send")
    process, _ = couriers.start({"status_batch_ms": 5000})
    msg = create_outgoing(db, channel, "in flight at shutdown")
    queue_outgoing(redis_client, channel, [msg])
    wait_for(lambda: [r for r in aggregator_records(agg) if r["msg_id"] == msg["id"]], 10, "the send to start")

    started = time.monotonic()
    exit_code = process.terminate(timeout=30)

    assert exit_code == 0
    assert time.monotonic() - started >= 1.0  # it waited for the aggregator's answer
    assert msg_row(db, msg["id"])["status"] == "W"  # the 5 s batch was written on the way out


def test_sigterm_exits_promptly_when_idle(couriers: CourierFactory) -> None:
    process, _ = couriers.start()
    started = time.monotonic()

    assert process.terminate(timeout=15) == 0
    assert time.monotonic() - started < 5


def test_unknown_switch_exits_2_with_a_clear_message(pg_url: str, redis_url: str) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(STANDIN_SRC),
        "COURIER_DB": pg_url,
        "COURIER_REDIS": redis_url,
        "STANDIN_SWITCHES": '{"spool_dedupe": true}',
    }
    result = subprocess.run(
        [sys.executable, "-m", "standin.courier"], env=env, capture_output=True, text=True, timeout=30
    )

    assert result.returncode == 2
    assert "unknown switch courier.spool_dedupe" in result.stderr
    assert "spool_dedup" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_switch_value_and_bad_env_exit_2(pg_url: str, redis_url: str) -> None:
    base = {**os.environ, "PYTHONPATH": str(STANDIN_SRC), "COURIER_DB": pg_url, "COURIER_REDIS": redis_url}
    cases = [
        ({"STANDIN_SWITCHES": '{"status_batch_ms": "soon"}'}, "courier.status_batch_ms expects a int"),
        ({"COURIER_DISALLOWED_NETWORKS": "10.0.0.0/33"}, "couldn't parse '10.0.0.0/33' as an IP network"),
        ({"COURIER_PORT": "eighty"}, "COURIER_PORT: expected an integer"),
    ]
    for extra, message in cases:
        result = subprocess.run(
            [sys.executable, "-m", "standin.courier"],
            env={**base, **extra},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 2, result.stderr
        assert message in result.stderr
        assert "Traceback" not in result.stderr


def test_channel_cache_switch_sets_how_long_a_warm_cache_survives_a_db_outage(
    couriers: CourierFactory, db: DB, redis_client: redis.Redis, pg_url: str
) -> None:
    channel = create_channel(db, redis_client, "http://127.0.0.1:9/send")
    relay = TcpRelay(*_host_port(pg_url))
    try:
        _, short = couriers.start({"channel_cache_s": 1}, db_url=relay_url(pg_url, relay))
        _, default = couriers.start(db_url=relay_url(pg_url, relay))
        for base in (short, default):
            warm = httpx.post(f"{base}/c/ex/{channel.uuid}/receive", data={"from": "+250788555001", "text": base})
            assert warm.status_code == 200
        relay.down()
        time.sleep(1.5)

        expired = httpx.post(f"{short}/c/ex/{channel.uuid}/receive", data={"from": "+250788555002", "text": "a"})
        cached = httpx.post(f"{default}/c/ex/{channel.uuid}/receive", data={"from": "+250788555003", "text": "b"})
    finally:
        relay.close()

    assert expired.status_code == 400
    assert cached.status_code == 200  # spooled: the 60 s cache still knows the channel
