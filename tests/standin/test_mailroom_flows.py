"""Mailroom stand-in: inbound messages through flows, as courier hands them over in Redis."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from test_mailroom_support import (
    FAVORITES,
    REGISTRATION,
    courier_batches,
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
BULK = 0


@pytest.fixture()
def favorites(db: psycopg.Connection[Any]) -> Any:
    if not FAVORITES.exists():
        pytest.skip(f"{FAVORITES} is not present beside the checkout")
    return seed_org(db, [FAVORITES], {"Favorites": ["favorites", "fav"]})


def test_keyword_starts_flow_in_one_transaction_and_queues_reply(
    tmp_path: Path, migrated_pg: str, redis_url: str, db: psycopg.Connection[Any], rds: redis.Redis, favorites: Any
) -> None:
    mailroom = start_mailroom(tmp_path, migrated_pg, redis_url)
    try:
        msg = receive(db, rds, favorites, "tel:+250788000001", "favorites")
        wait_for(lambda: msg_status(db, msg.msg_id) == "H", what="inbound marked H")

        session = db.execute(
            "SELECT id, status, current_flow_id, wait_started_on IS NOT NULL, output FROM flows_flowsession "
            "WHERE contact_id = %s",
            (msg.contact_id,),
        ).fetchall()
        assert len(session) == 1
        session_id, status, current_flow, waiting_since, output = session[0]
        assert (status, current_flow, waiting_since) == ("W", favorites.flows["Favorites"], True)
        assert output  # the engine's state, for the resume

        runs = db.execute(
            "SELECT status, flow_id, session_id, path FROM flows_flowrun WHERE contact_id = %s", (msg.contact_id,)
        ).fetchall()
        assert [(r[0], r[1], r[2]) for r in runs] == [("W", favorites.flows["Favorites"], session_id)]
        assert runs[0][3], "the run's path records the nodes visited"

        replies = outgoing(db, msg.contact_id)
        assert [(r[1], r[2], r[3]) for r in replies] == [("What is your favorite color?", "Q", True)]
        assert db.execute("SELECT flow_id FROM msgs_msg WHERE id = %s", (msg.msg_id,)).fetchone() == (
            favorites.flows["Favorites"],
        )

        # everything above was written by one transaction: same xmin on session, run and reply rows
        xmins = db.execute(
            "SELECT (SELECT xmin::text FROM flows_flowsession WHERE contact_id = %(c)s), "
            "(SELECT xmin::text FROM flows_flowrun WHERE contact_id = %(c)s), "
            "(SELECT xmin::text FROM msgs_msg WHERE contact_id = %(c)s AND direction = 'O'), "
            "(SELECT xmin::text FROM msgs_msg WHERE id = %(m)s), "
            "(SELECT xmin::text FROM contacts_contact WHERE id = %(c)s)",
            {"c": msg.contact_id, "m": msg.msg_id},
        ).fetchone()
        assert xmins is not None and len(set(xmins)) == 1, xmins

        batches = wait_for(lambda: courier_batches(rds, favorites, HIGH), what="reply on courier's queue")
        assert len(batches) == 1 and len(batches[0]) == 1
        pushed = batches[0][0]
        assert pushed["id"] == replies[0][0]
        assert pushed["text"] == "What is your favorite color?"
        assert pushed["urn"] == "tel:+250788000001"
        assert pushed["channel_uuid"] == favorites.channel_uuid
        assert pushed["high_priority"] is True
        for key in (
            "uuid",
            "org_id",
            "channel_id",
            "contact_id",
            "contact_urn_id",
            "error_count",
            "created_on",
            "queued_on",
        ):
            assert key in pushed, key
        assert f"msgs:{favorites.channel_uuid}|{favorites.tps}" in rds.zrange("msgs:active", 0, -1)
    finally:
        mailroom.terminate()


def test_reply_resumes_the_waiting_session(
    tmp_path: Path, migrated_pg: str, redis_url: str, db: psycopg.Connection[Any], rds: redis.Redis, favorites: Any
) -> None:
    mailroom = start_mailroom(tmp_path, migrated_pg, redis_url)
    try:
        urn = "tel:+250788000002"
        first = receive(db, rds, favorites, urn, "fav")
        wait_for(lambda: msg_status(db, first.msg_id) == "H", what="keyword handled")
        answer = receive(db, rds, favorites, urn, "I like red")
        wait_for(lambda: msg_status(db, answer.msg_id) == "H", what="answer handled")

        texts = [r[1] for r in outgoing(db, first.contact_id)]
        assert texts == ["What is your favorite color?", "Good choice, I like Red too! What is your favorite beer?"]
        assert db.execute(
            "SELECT count(*), min(status) FROM flows_flowsession WHERE contact_id = %s", (first.contact_id,)
        ).fetchone() == (1, "W")
        run = db.execute(
            "SELECT status, results, responded FROM flows_flowrun WHERE contact_id = %s", (first.contact_id,)
        ).fetchone()
        assert run is not None and run[0] == "W" and run[2] is True
        assert run[1]["color"]["category"] == "Red"
        assert wait_for(lambda: len(queued_texts(rds, favorites, HIGH)) == 2 and queued_texts(rds, favorites, HIGH))
    finally:
        mailroom.terminate()


FAVORITES_CONVERSATION = [
    ("favorites", ["What is your favorite color?"]),
    ("purple", ["I don't know that color. Try again."]),
    ("blue", ["Good choice, I like Blue too! What is your favorite beer?"]),
    ("primus", ["Mmmmm... delicious Primus. If only they made blue Primus! Lastly, what is your name?"]),
    ("Ben Haggerty", ["Thanks Ben Haggerty, we are all done!"]),
]
REGISTRATION_CONVERSATION = [
    ("join", ["Welcome to registration. What is your name?"]),
    ("Ann", ["Thanks Ann. How old are you?"]),
    ("thirty", ["Please send your age as a number between 1 and 120."]),
    ("34", ["Which district do you live in?"]),
    ("Kigali", ["Thanks Ann, you are registered. Age: 34. District: Kigali."]),
]


@pytest.mark.parametrize(
    ("export", "keyword", "steps"),
    [(REGISTRATION, "join", REGISTRATION_CONVERSATION), (FAVORITES, "favorites", FAVORITES_CONVERSATION)],
    ids=["registration", "favorites"],
)
def test_whole_conversation_to_the_end(
    tmp_path: Path,
    migrated_pg: str,
    redis_url: str,
    db: psycopg.Connection[Any],
    rds: redis.Redis,
    export: Path,
    keyword: str,
    steps: list[tuple[str, list[str]]],
) -> None:
    if not export.exists():
        pytest.skip(f"{export} is not present")
    flows = json.loads(export.read_text())["flows"]
    seed = seed_org(db, [export], {flows[0]["name"]: [keyword]})
    mailroom = start_mailroom(tmp_path, migrated_pg, redis_url)
    try:
        urn = "tel:+250788000003"
        expected: list[str] = []
        contact_id = None
        for text, replies in steps:
            msg = receive(db, rds, seed, urn, text)
            contact_id = msg.contact_id
            wait_for(lambda m=msg: msg_status(db, m.msg_id) == "H", what=f"{text!r} handled")
            expected.extend(replies)
            assert [r[1] for r in outgoing(db, contact_id)] == expected
        assert db.execute(
            "SELECT status, ended_on IS NOT NULL, current_flow_id FROM flows_flowsession WHERE contact_id = %s",
            (contact_id,),
        ).fetchall() == [("C", True, None)]
        run = db.execute(
            "SELECT status, exited_on IS NOT NULL FROM flows_flowrun WHERE contact_id = %s", (contact_id,)
        ).fetchall()
        assert run == [("C", True)]
        contact = db.execute(
            "SELECT current_flow_id, name, fields FROM contacts_contact WHERE id = %s", (contact_id,)
        ).fetchone()
        assert contact is not None and contact[0] is None
        if export == REGISTRATION:
            assert contact[1] == "Ann"
            assert contact[2] == {"age": "34", "district": "Kigali"}
        wait_for(lambda: queued_texts(rds, seed, HIGH) == expected, what="every reply on courier's queue")
    finally:
        mailroom.terminate()


def test_message_without_trigger_or_session_is_only_handled(
    tmp_path: Path, migrated_pg: str, redis_url: str, db: psycopg.Connection[Any], rds: redis.Redis, favorites: Any
) -> None:
    mailroom = start_mailroom(tmp_path, migrated_pg, redis_url)
    try:
        msg = receive(db, rds, favorites, "tel:+250788000004", "hello there")
        wait_for(lambda: msg_status(db, msg.msg_id) == "H", what="inbox message handled")
        assert outgoing(db) == []
        assert db.execute("SELECT count(*) FROM flows_flowsession").fetchone() == (0,)
    finally:
        mailroom.terminate()


def test_keyword_during_a_session_interrupts_it_and_starts_again(
    tmp_path: Path, migrated_pg: str, redis_url: str, db: psycopg.Connection[Any], rds: redis.Redis, favorites: Any
) -> None:
    mailroom = start_mailroom(tmp_path, migrated_pg, redis_url)
    try:
        urn = "tel:+250788000005"
        first = receive(db, rds, favorites, urn, "favorites")
        wait_for(lambda: msg_status(db, first.msg_id) == "H")
        again = receive(db, rds, favorites, urn, "favorites please")
        wait_for(lambda: msg_status(db, again.msg_id) == "H")
        sessions = db.execute(
            "SELECT status FROM flows_flowsession WHERE contact_id = %s ORDER BY id", (first.contact_id,)
        ).fetchall()
        assert sessions == [("I",), ("W",)]
        runs = db.execute(
            "SELECT status FROM flows_flowrun WHERE contact_id = %s ORDER BY id", (first.contact_id,)
        ).fetchall()
        assert runs == [("I",), ("W",)]
    finally:
        mailroom.terminate()
