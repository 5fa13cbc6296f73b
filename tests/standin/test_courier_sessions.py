"""Courier stand-in moves a waiting session's timeout once the prompt is out (docs/fidelity.md row 14).

Mailroom v9.2.2 marks the sprint's last message with `session_wait_started_on` and `session_timeout`;
courier v9.2.1, on W/S, sets `timeout_on` to now + timeout if the session still waits since that moment.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import redis
from test_courier_support import (
    CourierFactory,
    SeededChannel,
    ServiceProcess,
    aggregator_fixture,  # noqa: F401 - fixture
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
TIMEOUT_S = 600
LATE_BY = timedelta(minutes=2)  # the prompt leaves two minutes after the sprint's commit


def _waiting_prompt(db: DB, channel: SeededChannel, text: str, wait_moved: bool = False) -> tuple[dict[str, Any], int]:
    """An outgoing prompt as mailroom queues the sprint's last message, and its waiting session's id."""
    msg = create_outgoing(db, channel, text)
    started = datetime.now(UTC) - LATE_BY
    row = db.execute(
        "INSERT INTO flows_flowsession (org_id, contact_id, status, wait_started_on, timeout_on)"
        " VALUES (%s, %s, 'W', %s, %s) RETURNING id",
        (channel.org_id, msg["contact_id"], started, started + timedelta(seconds=TIMEOUT_S)),
    ).fetchone()
    assert row is not None
    carried = started - timedelta(seconds=30) if wait_moved else started
    msg.update(
        session_id=row["id"],
        session_status="W",
        session_wait_started_on=carried.isoformat().replace("+00:00", "Z"),
        session_timeout=TIMEOUT_S,
    )
    return msg, int(row["id"])


def _timeout_in(db: DB, session_id: int) -> float:
    """Seconds from now until the session's timeout_on."""
    row = db.execute(
        "SELECT extract(epoch from timeout_on - now()) AS left_s FROM flows_flowsession WHERE id = %s", (session_id,)
    ).fetchone()
    assert row is not None
    return float(row["left_s"])


def _unmoved(db: DB, session_id: int) -> bool:
    """timeout_on still counts from the commit (about LATE_BY less than the full timeout left)."""
    return _timeout_in(db, session_id) < TIMEOUT_S - LATE_BY.total_seconds() + 5


def test_wired_prompt_restarts_the_session_timeout_and_switch_turns_it_off(
    couriers: CourierFactory, db: DB, redis_client: redis.Redis, aggregator: Aggregator
) -> None:
    _, agg = aggregator
    channel = create_channel(db, redis_client, f"{agg}/send")
    refused = create_channel(db, redis_client, "http://127.0.0.1:9/send")
    wired, wired_session = _waiting_prompt(db, channel, "pick a number")
    moved_on, moved_on_session = _waiting_prompt(db, channel, "an older wait", wait_moved=True)
    errored, errored_session = _waiting_prompt(db, refused, "never reaches the phone")
    unswitched, unswitched_session = _waiting_prompt(db, channel, "sent by the earlier stand-in")

    first, _ = couriers.start()
    queue_outgoing(redis_client, channel, [wired])
    queue_outgoing(redis_client, channel, [moved_on])
    queue_outgoing(redis_client, refused, [errored])
    for msg, status in ((wired, "W"), (moved_on, "W"), (errored, "E")):
        wait_for(lambda m=msg, s=status: msg_row(db, m["id"])["status"] == s, 10, f"status {status}")
    first.terminate()  # drains the session updates that follow the sends

    assert TIMEOUT_S - 15 < _timeout_in(db, wired_session) <= TIMEOUT_S  # counted from the send
    assert _unmoved(db, moved_on_session)  # the session waits since another moment: left alone
    assert _unmoved(db, errored_session)  # only W/S move it

    second, _ = couriers.start({"session_timeouts": False})
    queue_outgoing(redis_client, channel, [unswitched])
    wait_for(lambda: msg_row(db, unswitched["id"])["status"] == "W", 10, "status W")
    second.terminate()
    assert _unmoved(db, unswitched_session)
