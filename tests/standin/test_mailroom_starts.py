"""Mailroom stand-in: flow starts from the batch queue, search-backed starts, and wait timeouts."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
from test_mailroom_support import (
    FAVORITES,
    SearchNode,
    courier_batches,
    db_fixture,  # noqa: F401 - fixture
    free_port,
    migrated_pg_fixture,  # noqa: F401 - fixture
    outgoing,
    queued_texts,
    rds_fixture,  # noqa: F401 - fixture
    receive,
    search_node_fixture,  # noqa: F401 - fixture
    seed_org,
    start_mailroom,
    wait_for,
)

BULK = 0


@pytest.fixture()
def favorites(db: psycopg.Connection[Any]) -> Any:
    if not FAVORITES.exists():
        pytest.skip(f"{FAVORITES} is not present beside the checkout")
    return seed_org(db, [FAVORITES], {"Favorites": ["favorites"]})


def queue_start(
    db: psycopg.Connection[Any],
    rds: redis.Redis,
    seed: Any,
    contact_ids: list[int] | None = None,
    urns: list[str] | None = None,
    restart_participants: bool = True,
    query: str | None = None,
) -> int:
    """What the web does on POST flow_starts: a P row, then `start_flow` on `batch:<org>` after commit."""
    flow_id = seed.flows["Favorites"]
    start_id = int(
        db.execute(
            "INSERT INTO flows_flowstart (uuid, org_id, flow_id, start_type, status, urns, contact_uuids, "
            "restart_participants, created_on, modified_on) VALUES (%s, %s, %s, 'A', 'P', %s, '[]', %s, now(), now()) "
            "RETURNING id",
            (str(uuid.uuid4()), seed.org_id, flow_id, json.dumps(urns or []), restart_participants),
        ).fetchone()[0]  # type: ignore[index]
    )
    task = {
        "type": "start_flow",
        "org_id": seed.org_id,
        "task": {
            "start_id": start_id,
            "start_type": "A",
            "org_id": seed.org_id,
            "created_by_id": None,
            "flow_id": flow_id,
            "flow_type": "M",
            "contact_ids": contact_ids or [],
            "group_ids": [],
            "urns": urns or [],
            "query": query,
            "exclusions": {"started_previously": not restart_participants, "in_a_flow": False},
            "restart_participants": restart_participants,
            "params": None,
        },
        "queued_on": datetime.now(UTC).isoformat(),
    }
    # the web scores its tasks in epoch milliseconds (a RapidPro quirk the web stand-in keeps)
    rds.zadd(f"batch:{seed.org_id}", {json.dumps(task): round(time.time() * 1000) - 10_000_000})
    rds.zincrby("batch:active", 0, str(seed.org_id))
    return start_id


def start_row(db: psycopg.Connection[Any], start_id: int) -> tuple[Any, ...]:
    row = db.execute("SELECT status, contact_count FROM flows_flowstart WHERE id = %s", (start_id,)).fetchone()
    assert row is not None
    return tuple(row)


def test_start_flow_for_contacts_and_urns(
    tmp_path: Path, migrated_pg: str, redis_url: str, db: psycopg.Connection[Any], rds: redis.Redis, favorites: Any
) -> None:
    existing = receive(db, None, favorites, "tel:+250788000030", "hello")
    mailroom = start_mailroom(tmp_path, migrated_pg, redis_url)
    try:
        start_id = queue_start(
            db, rds, favorites, contact_ids=[existing.contact_id], urns=["tel:+250788000031", "tel:+250788000032"]
        )
        wait_for(lambda: start_row(db, start_id)[0] == "C", what="start completed")
        assert start_row(db, start_id) == ("C", 3)
        contacts = db.execute(
            "SELECT u.identity, c.id FROM contacts_contacturn u JOIN contacts_contact c ON c.id = u.contact_id "
            "ORDER BY u.identity"
        ).fetchall()
        assert [c[0] for c in contacts] == ["tel:+250788000030", "tel:+250788000031", "tel:+250788000032"]
        rows = outgoing(db)
        assert len(rows) == 3
        assert {(r[1], r[2], r[3]) for r in rows} == {("What is your favorite color?", "Q", False)}
        runs = db.execute("SELECT contact_id, status FROM flows_flowrun ORDER BY contact_id").fetchall()
        assert runs == [(c[1], "W") for c in contacts]
        pushed = wait_for(
            lambda: len(queued_texts(rds, favorites, BULK)) == 3 and courier_batches(rds, favorites, BULK),
            what="bulk messages on courier's queue",
        )
        assert {m["urn"] for b in pushed for m in b} == {c[0] for c in contacts}
        assert all(m["high_priority"] is False for b in pushed for m in b)
        assert rds.zcard(f"msgs:{favorites.channel_uuid}|{favorites.tps}/1") == 0, "nothing high priority"
    finally:
        mailroom.terminate()


@pytest.mark.parametrize("restart_participants", [True, False])
def test_restart_participants(
    tmp_path: Path,
    migrated_pg: str,
    redis_url: str,
    db: psycopg.Connection[Any],
    rds: redis.Redis,
    favorites: Any,
    restart_participants: bool,
) -> None:
    mailroom = start_mailroom(tmp_path, migrated_pg, redis_url)
    try:
        urn = "tel:+250788000033"
        first = queue_start(db, rds, favorites, urns=[urn])
        wait_for(lambda: start_row(db, first)[0] == "C", what="first start completed")
        second = queue_start(db, rds, favorites, urns=[urn], restart_participants=restart_participants)
        wait_for(lambda: start_row(db, second)[0] == "C", what="second start completed")
        runs = db.execute("SELECT status FROM flows_flowrun ORDER BY id").fetchall()
        if restart_participants:
            assert runs == [("I",), ("W",)], "the first session is interrupted by the restart"
        else:
            assert runs == [("W",)], "a contact who was in the flow is skipped"
    finally:
        mailroom.terminate()


# A loaded CI machine (the other tests' clusters) has been seen to take over httpx's default 5 s here.
SEARCH_TIMEOUT = 30.0


def _index_contact(node: SearchNode, org_id: int, contact_id: int, name: str) -> None:
    httpx.put(
        f"{node.url}/contacts_test",
        json={"mappings": {"properties": {"org_id": {"type": "integer"}, "name": {"type": "keyword"}}}},
        timeout=SEARCH_TIMEOUT,
    )
    httpx.post(
        f"{node.url}/_aliases",
        json={"actions": [{"add": {"index": "contacts_test", "alias": "contacts"}}]},
        timeout=SEARCH_TIMEOUT,
    )
    httpx.put(
        f"{node.url}/contacts_test/_doc/{contact_id}?refresh=true",
        json={"id": contact_id, "org_id": org_id, "name": name},
        timeout=SEARCH_TIMEOUT,
    ).raise_for_status()


@pytest.mark.parametrize("nil_client", [True, False])
def test_query_start_with_search_down_at_start(
    tmp_path: Path,
    migrated_pg: str,
    redis_url: str,
    db: psycopg.Connection[Any],
    rds: redis.Redis,
    favorites: Any,
    nil_client: bool,
) -> None:
    contact = receive(db, None, favorites, "tel:+250788000034", "hello")
    node = SearchNode(free_port())  # not started yet: down when mailroom starts
    mailroom = start_mailroom(
        tmp_path,
        migrated_pg,
        redis_url,
        switches={"es_nil_client_at_start": nil_client},
        extra_env={"MAILROOM_ELASTIC": node.url},
    )
    try:
        node.start()
        _index_contact(node, favorites.org_id, contact.contact_id, "Alice")
        start_id = queue_start(db, rds, favorites, query="name:Alice")
        wait_for(lambda: start_row(db, start_id)[0] in ("C", "F"), what="start finished")
        if nil_client:
            assert start_row(db, start_id)[0] == "F"
            assert "no elastic client" in mailroom.log()
            assert outgoing(db) == []
            # a URN start needs no search and still works
            urn_start = queue_start(db, rds, favorites, urns=["tel:+250788000035"])
            wait_for(lambda: start_row(db, urn_start)[0] == "C", what="urn start completed")
        else:
            assert start_row(db, start_id) == ("C", 1)
            assert [r[1] for r in outgoing(db, contact.contact_id)] == ["What is your favorite color?"]
    finally:
        mailroom.terminate()
        node.stop()


def test_query_start_with_search_up(
    tmp_path: Path,
    migrated_pg: str,
    redis_url: str,
    db: psycopg.Connection[Any],
    rds: redis.Redis,
    favorites: Any,
    search_node: SearchNode,
) -> None:
    alice = receive(db, None, favorites, "tel:+250788000036", "hello")
    receive(db, None, favorites, "tel:+250788000037", "hello")
    _index_contact(search_node, favorites.org_id, alice.contact_id, "Alice")
    mailroom = start_mailroom(tmp_path, migrated_pg, redis_url, extra_env={"MAILROOM_ELASTIC": search_node.url})
    try:
        assert "elastic ok" in mailroom.log()  # logged before "mailroom started"
        start_id = queue_start(db, rds, favorites, query="name:Alice")
        wait_for(lambda: start_row(db, start_id)[0] == "C", what="start completed")
        assert start_row(db, start_id) == ("C", 1)
        assert [r[1] for r in outgoing(db)] == ["What is your favorite color?"]
    finally:
        mailroom.terminate()


TIMEOUT_FLOW = {
    "version": "13",
    "flows": [
        {
            "uuid": "a1b2c3d4-0000-4000-8000-000000000001",
            "name": "Quick Question",
            "spec_version": "13.0.0",
            "language": "eng",
            "type": "messaging",
            "expire_after_minutes": 60,
            "nodes": [
                {
                    "uuid": "a1b2c3d4-0000-4000-8000-000000000010",
                    "actions": [
                        {
                            "type": "send_msg",
                            "uuid": "a1b2c3d4-0000-4000-8000-000000000011",
                            "text": "Quick, yes or no?",
                        }
                    ],
                    "exits": [
                        {
                            "uuid": "a1b2c3d4-0000-4000-8000-000000000012",
                            "destination_uuid": "a1b2c3d4-0000-4000-8000-000000000020",
                        }
                    ],
                },
                {
                    "uuid": "a1b2c3d4-0000-4000-8000-000000000020",
                    "actions": [],
                    "router": {
                        "type": "switch",
                        "operand": "@input.text",
                        "wait": {
                            "type": "msg",
                            "timeout": {"seconds": 1, "category_uuid": "a1b2c3d4-0000-4000-8000-000000000023"},
                        },
                        "cases": [],
                        "categories": [
                            {
                                "uuid": "a1b2c3d4-0000-4000-8000-000000000022",
                                "name": "Other",
                                "exit_uuid": "a1b2c3d4-0000-4000-8000-000000000024",
                            },
                            {
                                "uuid": "a1b2c3d4-0000-4000-8000-000000000023",
                                "name": "No Response",
                                "exit_uuid": "a1b2c3d4-0000-4000-8000-000000000025",
                            },
                        ],
                        "default_category_uuid": "a1b2c3d4-0000-4000-8000-000000000022",
                    },
                    "exits": [
                        {"uuid": "a1b2c3d4-0000-4000-8000-000000000024"},
                        {
                            "uuid": "a1b2c3d4-0000-4000-8000-000000000025",
                            "destination_uuid": "a1b2c3d4-0000-4000-8000-000000000030",
                        },
                    ],
                },
                {
                    "uuid": "a1b2c3d4-0000-4000-8000-000000000030",
                    "actions": [
                        {"type": "send_msg", "uuid": "a1b2c3d4-0000-4000-8000-000000000031", "text": "Too slow!"}
                    ],
                    "exits": [{"uuid": "a1b2c3d4-0000-4000-8000-000000000032"}],
                },
            ],
        }
    ],
}


def test_a_waiting_sprints_last_message_carries_its_wait_for_courier(
    tmp_path: Path, migrated_pg: str, redis_url: str, db: psycopg.Connection[Any], rds: redis.Redis
) -> None:
    """mailroom v9.2.2 core/msgio/courier.go: NewCourierMsg puts session_wait_started_on (exactly the
    session's wait_started_on) and session_timeout on the sprint's last message, so courier can restart
    the timeout once the prompt is out; without them courier never moves timeout_on."""
    export = tmp_path / "quick.json"
    export.write_text(json.dumps(TIMEOUT_FLOW))
    seed = seed_org(db, [export], {"Quick Question": ["quick"]})
    mailroom = start_mailroom(tmp_path, migrated_pg, redis_url)
    try:
        msg = receive(db, rds, seed, "tel:+250788000039", "quick")
        batch = wait_for(lambda: [m for b in courier_batches(rds, seed, 1) for m in b], what="the queued prompt")
        started = db.execute(
            "SELECT id, wait_started_on FROM flows_flowsession WHERE contact_id = %s AND status = 'W'",
            (msg.contact_id,),
        ).fetchone()
        assert started is not None
        last = batch[-1]
        assert last["session_id"] == started[0]
        assert datetime.fromisoformat(last["session_wait_started_on"].replace("Z", "+00:00")) == started[1]
        assert last["session_timeout"] > 0
        assert all("session_wait_started_on" not in m for m in batch[:-1])
    finally:
        mailroom.terminate()


def test_wait_timeout_fires_through_the_timeouts_cron(
    tmp_path: Path, migrated_pg: str, redis_url: str, db: psycopg.Connection[Any], rds: redis.Redis
) -> None:
    export = tmp_path / "quick.json"
    export.write_text(json.dumps(TIMEOUT_FLOW))
    seed = seed_org(db, [export], {"Quick Question": ["quick"]})
    mailroom = start_mailroom(tmp_path, migrated_pg, redis_url, extra_env={"MAILROOM_STANDIN_TIMEOUTS_INTERVAL": "0.5"})
    try:
        msg = receive(db, rds, seed, "tel:+250788000038", "quick")
        timeout_on = wait_for(
            lambda: db.execute(
                "SELECT timeout_on FROM flows_flowsession WHERE contact_id = %s AND status = 'W'", (msg.contact_id,)
            ).fetchone(),
            what="waiting session with a timeout",
        )[0]
        assert timeout_on is not None
        wait_for(
            lambda: [r[1] for r in outgoing(db)] == ["Quick, yes or no?", "Too slow!"], timeout=15, what="timeout reply"
        )
        assert db.execute(
            "SELECT status FROM flows_flowsession WHERE contact_id = %s", (msg.contact_id,)
        ).fetchall() == [("C",)]
        assert outgoing(db)[1][3] is False, "a timeout's message is not a reply: bulk priority"
    finally:
        mailroom.terminate()
