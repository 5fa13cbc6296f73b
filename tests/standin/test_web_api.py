"""Web stand-in: API v2 over a live gunicorn — shapes, filters, cursors, errors, and the Redis hand-offs."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
from standin.mailroom.msg_send import repetitions_key
from test_web_support import (
    NO_MAILROOM,
    Gunicorn,
    WebStack,
    api,
    django_call,
    free_port,
    run_manage,
    seed,
    web_env,
)

# fixtures web_stack, web_db, web_redis, seeded, live_web come from the support module
pytest_plugins = ["test_web_support"]


def get_all(url: str, token: str) -> list[dict[str, Any]]:
    """Follow `next` links to the end, as a client of RapidPro's cursor pagination does."""
    results: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url:
        response = httpx.get(next_url, headers=api(token), timeout=10)
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page) == {"next", "previous", "results"}
        results.extend(page["results"])
        next_url = page["next"]
    return results


def make_contact(
    conn: psycopg.Connection[Any], org_id: int, phone: str, name: str = "Ann"
) -> tuple[int, str, int]:
    contact_id, contact_uuid = conn.execute(
        "INSERT INTO contacts_contact (org_id, name) VALUES (%s, %s) RETURNING id, uuid::text", (org_id, name)
    ).fetchone()  # type: ignore[misc]
    urn_id = conn.execute(
        "INSERT INTO contacts_contacturn (org_id, contact_id, identity, scheme, path) "
        "VALUES (%s, %s, %s, 'tel', %s) RETURNING id",
        (org_id, contact_id, f"tel:{phone}", phone),
    ).fetchone()[0]  # type: ignore[index]
    return contact_id, contact_uuid, urn_id


def make_msg(
    conn: psycopg.Connection[Any],
    org_id: int,
    contact_id: int,
    direction: str,
    status: str,
    text: str,
    when: datetime,
) -> int:
    return int(
        conn.execute(
            "INSERT INTO msgs_msg (org_id, contact_id, direction, status, text, created_on, modified_on) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (org_id, contact_id, direction, status, text, when, when),
        ).fetchone()[0]  # type: ignore[index]
    )


def unique_phone() -> str:
    return "+2507" + str(uuid.uuid4().int)[:8]


def test_login_page_is_the_health_check(live_web: str) -> None:
    response = httpx.get(live_web + "/", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html") and "Sign In" in response.text


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "Authentication credentials were not provided."),
        ({"Authorization": "Token 0000000000000000000000000000000000000000"}, "Invalid token"),
        ({"Authorization": "Bearer abc"}, "Authentication credentials were not provided."),
    ],
)
def test_missing_or_bad_token_is_403(live_web: str, headers: dict[str, str], detail: str) -> None:
    response = httpx.get(live_web + "/api/v2/flows.json", headers=headers, timeout=5)
    assert response.status_code == 403
    assert response.json() == {"detail": detail}


def test_flows_list_the_seeded_exports_with_their_results(live_web: str, seeded: dict[str, Any]) -> None:
    flows = {f["name"]: f for f in get_all(live_web + "/api/v2/flows.json", seeded["api_token"])}
    assert {n: f["uuid"] for n, f in flows.items()} == seeded["flows"]
    favorites = flows["Favorites"]
    assert favorites["type"] == "message" and favorites["expires"] == 720 and favorites["archived"] is False
    assert [r["key"] for r in favorites["results"]] == ["color", "beer", "name"]
    assert set(favorites["runs"]) == {"active", "waiting", "completed", "expired", "interrupted", "failed"}
    only = get_all(f"{live_web}/api/v2/flows.json?uuid={seeded['flows']['Rate us']}", seeded["api_token"])
    assert [f["name"] for f in only] == ["Rate us"]


def batch_tasks(rds: redis.Redis, org_id: int) -> list[tuple[dict[str, Any], float]]:
    return [(json.loads(m), s) for m, s in rds.zrange(f"batch:{org_id}", 0, -1, withscores=True)]


def test_flow_start_inserts_a_pending_start_and_queues_start_flow(
    live_web: str, seeded: dict[str, Any], web_db: psycopg.Connection[Any], web_redis: redis.Redis
) -> None:
    org_id = seeded["org_id"]
    contact_id, contact_uuid, _ = make_contact(web_db, org_id, unique_phone())
    flow_uuid = seeded["flows"]["Favorites"]
    before_ms = time.time() * 1000
    body = {
        "flow": flow_uuid,
        "contacts": [contact_uuid],
        "urns": ["tel:+250 788-555-123"],
        "restart_participants": False,
        "params": {"source key": "x", "n": 3},
    }

    response = httpx.post(live_web + "/api/v2/flow_starts.json", json=body, headers=api(seeded["api_token"]))

    assert response.status_code == 201, response.text
    start = response.json()
    assert start["status"] == "pending" and start["flow"] == {"uuid": flow_uuid, "name": "Favorites"}
    assert start["contacts"] == [{"uuid": contact_uuid, "name": "Ann"}]
    assert start["params"] == {"source_key": "x", "n": 3} and start["restart_participants"] is False
    row = web_db.execute(
        "SELECT id, status, start_type, urns, contact_uuids, restart_participants, params "
        "FROM flows_flowstart "
        "WHERE uuid = %s",
        (start["uuid"],),
    ).fetchone()
    assert row is not None
    start_id = row[0]
    assert row[1:] == ("P", "A", ["tel:+250788555123"], [contact_uuid], False, {"source_key": "x", "n": 3})

    [(payload, score)] = batch_tasks(web_redis, org_id)
    assert payload["type"] == "start_flow" and payload["org_id"] == org_id
    flow_id = web_db.execute("SELECT id FROM flows_flow WHERE uuid = %s", (flow_uuid,)).fetchone()[0]  # type: ignore[index]
    task = payload["task"]
    assert {k: task[k] for k in ("start_id", "start_type", "org_id", "flow_id", "flow_type")} == {
        "start_id": start_id,
        "start_type": "A",
        "org_id": org_id,
        "flow_id": flow_id,
        "flow_type": "M",
    }
    assert task["contact_ids"] == [contact_id] and task["urns"] == ["tel:+250788555123"]
    assert task["restart_participants"] is False
    assert task["exclusions"] == {"started_previously": True, "in_a_flow": False}
    assert task["params"] == {"source_key": "x", "n": 3}
    datetime.fromisoformat(payload["queued_on"].replace("Z", "+00:00"))
    # RapidPro's Django scores batch tasks in epoch milliseconds plus the high-priority offset
    assert before_ms - 10_000_000 <= score <= time.time() * 1000 - 10_000_000 + 1
    assert web_redis.zscore("batch:active", str(org_id)) == 0

    listed = get_all(f"{live_web}/api/v2/flow_starts.json?uuid={start['uuid']}", seeded["api_token"])
    assert [s["id"] for s in listed] == [start_id]


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ([1], {"non_field_errors": ["Request body should be a single JSON object"]}),
        ({"urns": ["tel:+250788000009"]}, {"flow": ["This field is required."]}),
        ({"flow": "{favorites}"}, {"non_field_errors": ["Must specify at least one group, contact or URN"]}),
        (
            {"flow": "5f05311e-8f81-4a67-a5b5-1501b6d6496a", "urns": ["tel:+250788000009"]},
            {"flow": ["No such object: 5f05311e-8f81-4a67-a5b5-1501b6d6496a"]},
        ),
        (
            {"flow": "{favorites}", "urns": ["tel:0788"]},
            {"urns": {"0": ["Invalid URN: tel:0788. Ensure phone numbers contain country codes."]}},
        ),
        ({"flow": "{favorites}", "groups": ["Doctors"]}, {"groups": {"0": ["No such object: Doctors"]}}),
        (
            {"flow": "{favorites}", "contacts": ["5f05311e-8f81-4a67-a5b5-1501b6d6496a"]},
            {"contacts": {"0": ["No such object: 5f05311e-8f81-4a67-a5b5-1501b6d6496a"]}},
        ),
        (
            {"flow": "{favorites}", "urns": ["tel:+250788000009"], "params": [1]},
            {"params": ["Must be a valid JSON object"]},
        ),
    ],
)
def test_flow_start_bad_input_is_400_with_field_errors(
    live_web: str,
    seeded: dict[str, Any],
    web_db: psycopg.Connection[Any],
    web_redis: redis.Redis,
    body: Any,
    errors: dict[str, Any],
) -> None:
    if isinstance(body, dict) and body.get("flow") == "{favorites}":
        body = {**body, "flow": seeded["flows"]["Favorites"]}
    starts_before = web_db.execute("SELECT count(*) FROM flows_flowstart").fetchone()

    response = httpx.post(live_web + "/api/v2/flow_starts.json", json=body, headers=api(seeded["api_token"]))

    assert response.status_code == 400
    assert response.json() == errors
    assert web_db.execute("SELECT count(*) FROM flows_flowstart").fetchone() == starts_before
    assert batch_tasks(web_redis, seeded["org_id"]) == []


def test_messages_exclude_pending_and_filter_by_contact_folder_and_dates(
    live_web: str, seeded: dict[str, Any], web_db: psycopg.Connection[Any]
) -> None:
    org_id, token = seeded["org_id"], seeded["api_token"]
    ann_id, ann_uuid, _ = make_contact(web_db, org_id, unique_phone(), "Ann")
    bob_id, _, _ = make_contact(web_db, org_id, unique_phone(), "Bob")
    t0 = datetime(2030, 1, 1, tzinfo=UTC)
    pending = make_msg(web_db, org_id, ann_id, "I", "P", "pending", t0)
    handled = [
        make_msg(web_db, org_id, ann_id, "I", "H", f"in {i}", t0 + timedelta(minutes=i)) for i in range(1, 6)
    ]
    reply = make_msg(web_db, org_id, ann_id, "O", "W", "reply", t0 + timedelta(minutes=10))
    make_msg(web_db, org_id, bob_id, "I", "H", "bob", t0 + timedelta(minutes=11))

    ann = get_all(f"{live_web}/api/v2/messages.json?contact={ann_uuid}", token)
    # newest first across pages of 3, the pending row left out, no row twice
    assert [m["id"] for m in ann] == [reply, *reversed(handled)]
    assert pending not in [m["id"] for m in ann]
    first = ann[-1]
    assert first["direction"] == "in" and first["status"] == "handled" and first["type"] == "text"
    assert first["contact"] == {"uuid": ann_uuid, "name": "Ann"} and first["text"] == "in 1"
    assert ann[0]["direction"] == "out" and ann[0]["status"] == "wired"

    window = get_all(
        f"{live_web}/api/v2/messages.json?contact={ann_uuid}&after=2030-01-01T00:02:00Z&before=2030-01-01T00:04:00Z",
        token,
    )
    assert [m["text"] for m in window] == ["in 4", "in 3", "in 2"]
    incoming = get_all(f"{live_web}/api/v2/messages.json?folder=incoming&after=2030-01-01T00:00:00Z", token)
    assert {m["text"] for m in incoming} >= {"in 1", "bob"} and "reply" not in {m["text"] for m in incoming}
    sent_ids = {m["id"] for m in get_all(f"{live_web}/api/v2/messages.json?folder=sent", token)}
    assert reply in sent_ids and not sent_ids & set(handled)
    bad_date = get_all(f"{live_web}/api/v2/messages.json?contact={ann_uuid}&after=yesterday", token)
    assert bad_date == []  # RapidPro: an unparseable date matches nothing


def test_messages_refuse_two_exclusive_filters(live_web: str, seeded: dict[str, Any]) -> None:
    response = httpx.get(
        f"{live_web}/api/v2/messages.json?folder=inbox&contact={uuid.uuid4()}",
        headers=api(seeded["api_token"]),
    )
    assert response.status_code == 400
    assert response.json() == {
        "detail": "You may only specify one of the contact, folder, label, broadcast parameters"
    }


def test_post_message_goes_through_mailroom_to_courier(
    web_with_mailroom: str, seeded: dict[str, Any], web_db: psycopg.Connection[Any], web_redis: redis.Redis
) -> None:
    """v9.2.5: the API asks mailroom's /mr/msg/send, which inserts the message (high priority, as a user's
    chat message) and queues it to courier's high-priority queue."""
    phone = unique_phone()
    contact_id, contact_uuid, urn_id = make_contact(web_db, seeded["org_id"], phone)

    response = httpx.post(
        web_with_mailroom + "/api/v2/messages.json",
        json={"contact": contact_uuid, "text": "Hello from the API"},
        headers=api(seeded["api_token"]),
        timeout=30,
    )

    assert response.status_code == 201, response.text
    sent = response.json()
    assert sent["status"] == "queued" and sent["direction"] == "out" and sent["urn"] == f"tel:{phone}"
    assert sent["channel"] == {"uuid": seeded["channel_uuid"], "name": "External"}
    assert sent["contact"] == {"uuid": contact_uuid, "name": "Ann"}
    assert (sent["type"], sent["visibility"], sent["flow"], sent["sent_on"]) == ("text", "visible", None, None)
    row = web_db.execute(
        "SELECT status, direction, contact_urn_id, high_priority, text FROM msgs_msg WHERE id = %s", (sent["id"],)
    ).fetchone()
    assert row == ("Q", "O", urn_id, True, "Hello from the API")
    queue = f"msgs:{seeded['channel_uuid']}|10"
    [(batch, score)] = web_redis.zrange(f"{queue}/1", 0, -1, withscores=True)
    [queued] = json.loads(batch)
    assert {
        k: queued[k] for k in ("id", "org_id", "contact_id", "contact_urn_id", "urn", "text", "channel_uuid")
    } == {
        "id": sent["id"],
        "org_id": seeded["org_id"],
        "contact_id": contact_id,
        "contact_urn_id": urn_id,
        "urn": f"tel:{phone}",
        "text": "Hello from the API",
        "channel_uuid": seeded["channel_uuid"],
    }
    assert queued["high_priority"] is True and queued["error_count"] == 0
    assert abs(score - time.time()) < 30  # courier's queues are scored in epoch seconds
    assert web_redis.zscore("msgs:active", queue) == 0
    assert web_redis.zcard(f"{queue}/0") == 0


def test_post_message_fails_while_mailroom_is_down(
    live_web: str, seeded: dict[str, Any], web_db: psycopg.Connection[Any], web_redis: redis.Redis
) -> None:
    """Nothing listens at live_web's MAILROOM_URL: RapidPro's client raises, its API answers the plain 500,
    and no message exists (the web writes none itself)."""
    contact_id, contact_uuid, _ = make_contact(web_db, seeded["org_id"], unique_phone())

    response = httpx.post(
        live_web + "/api/v2/messages.json",
        json={"contact": contact_uuid, "text": "Nobody home"},
        headers=api(seeded["api_token"]),
        timeout=30,
    )

    assert response.status_code == 500
    assert response.text == "Server Error. Site administrators have been notified."
    assert web_db.execute("SELECT count(*) FROM msgs_msg WHERE contact_id = %s", (contact_id,)).fetchone() == (0,)
    assert web_redis.keys("msgs:*") == []


def test_post_message_mailroom_error_is_a_plain_500(
    web_with_mailroom: str, seeded: dict[str, Any], web_db: psycopg.Connection[Any], web_redis: redis.Redis
) -> None:
    """Mailroom answers 500 (its repetition counter in Redis fails before any insert): the API gives the
    same plain 500 as for any unhandled error, as RapidPro's RequestException is not caught."""
    contact_id, contact_uuid, _ = make_contact(web_db, seeded["org_id"], unique_phone())
    now = datetime.now(UTC)
    for moment in (now, now + timedelta(seconds=30)):
        web_redis.set(repetitions_key(moment), "not a hash")

    response = httpx.post(
        web_with_mailroom + "/api/v2/messages.json",
        json={"contact": contact_uuid, "text": "Refused"},
        headers=api(seeded["api_token"]),
        timeout=30,
    )

    assert response.status_code == 500
    assert response.text == "Server Error. Site administrators have been notified."
    assert web_db.execute("SELECT count(*) FROM msgs_msg WHERE contact_id = %s", (contact_id,)).fetchone() == (0,)


def test_post_message_with_the_switch_off_is_sent_by_the_web_itself(
    web_stack: WebStack, seeded: dict[str, Any], web_db: psycopg.Connection[Any], web_redis: redis.Redis, tmp_path: Path
) -> None:
    """`api_send_through_mailroom` off: the stand-in before issue 9 inserts the message and queues it to
    courier's bulk queue itself, so mailroom being down does not matter."""
    phone = unique_phone()
    contact_id, contact_uuid, urn_id = make_contact(web_db, seeded["org_id"], phone)
    env = web_stack.env(MAILROOM_URL=NO_MAILROOM, STANDIN_SWITCHES='{"api_send_through_mailroom": false}')
    server = Gunicorn(env, tmp_path / "gunicorn.log", workers=1)
    try:
        response = httpx.post(
            server.url + "/api/v2/messages.json",
            json={"contact": contact_uuid, "text": "Hello from the web"},
            headers=api(seeded["api_token"]),
            timeout=30,
        )
    finally:
        server.stop()

    assert response.status_code == 201, response.text
    sent = response.json()
    assert sent["status"] == "queued" and sent["urn"] == f"tel:{phone}"
    row = web_db.execute(
        "SELECT status, contact_urn_id, high_priority, queued_on IS NOT NULL FROM msgs_msg WHERE id = %s",
        (sent["id"],),
    ).fetchone()
    assert row == ("Q", urn_id, False, True)
    queue = f"msgs:{seeded['channel_uuid']}|10"
    [batch] = web_redis.zrange(f"{queue}/0", 0, -1)
    [queued] = json.loads(batch)
    assert (queued["id"], queued["contact_id"], queued["high_priority"]) == (sent["id"], contact_id, False)
    assert web_redis.zcard(f"{queue}/1") == 0


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"text": "hi"}, {"contact": ["This field is required."]}),
        ({"contact": "{contact}"}, {"non_field_errors": ["Must provide either text or attachments."]}),
        (
            {"contact": "{contact}", "text": "x" * 641},
            {"text": ["Ensure this field has no more than 640 characters."]},
        ),
        (
            {"contact": str(uuid.UUID(int=1)), "text": "hi"},
            {"contact": [f"No such object: {uuid.UUID(int=1)}"]},
        ),
    ],
)
def test_post_message_bad_input_is_400(
    live_web: str,
    seeded: dict[str, Any],
    web_db: psycopg.Connection[Any],
    web_redis: redis.Redis,
    body: dict[str, Any],
    errors: dict[str, Any],
) -> None:
    _, contact_uuid, _ = make_contact(web_db, seeded["org_id"], unique_phone())
    body = {k: (contact_uuid if v == "{contact}" else v) for k, v in body.items()}
    response = httpx.post(live_web + "/api/v2/messages.json", json=body, headers=api(seeded["api_token"]))
    assert response.status_code == 400
    assert response.json() == errors
    assert web_redis.keys("msgs:*") == []


def test_runs_render_path_and_values_and_filter(
    live_web: str, seeded: dict[str, Any], web_db: psycopg.Connection[Any]
) -> None:
    org_id, token = seeded["org_id"], seeded["api_token"]
    contact_id, contact_uuid, _ = make_contact(web_db, org_id, unique_phone(), "Runner")
    flow_id = web_db.execute(
        "SELECT id FROM flows_flow WHERE uuid = %s", (seeded["flows"]["Favorites"],)
    ).fetchone()[0]  # type: ignore[index]
    session_id = web_db.execute(
        "INSERT INTO flows_flowsession (uuid, org_id, contact_id, status) "
        "VALUES (gen_random_uuid(), %s, %s, 'W') "
        "RETURNING id",
        (org_id, contact_id),
    ).fetchone()[0]  # type: ignore[index]
    path = [{"uuid": str(uuid.uuid4()), "node_uuid": "n-1", "arrived_on": "2030-01-01T00:00:00.000000Z"}]
    results = {
        "color": {
            "name": "Color",
            "value": "red",
            "category": "Red",
            "node_uuid": "n-1",
            "input": "red",
            "created_on": "2030-01-01T00:00:01.000000Z",
        }
    }
    insert = (
        "INSERT INTO flows_flowrun "
        "(uuid, org_id, flow_id, contact_id, session_id, status, path, results, responded) "
        "VALUES (gen_random_uuid(), %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id"
    )
    responded = web_db.execute(
        insert, (org_id, flow_id, contact_id, session_id, "C", json.dumps(path), json.dumps(results), True)
    ).fetchone()[0]  # type: ignore[index]
    silent = web_db.execute(
        insert, (org_id, flow_id, contact_id, session_id, "W", "[]", "{}", False)
    ).fetchone()[0]  # type: ignore[index]

    runs = get_all(f"{live_web}/api/v2/runs.json?contact={contact_uuid}", token)
    assert [r["id"] for r in runs] == [silent, responded]
    done = runs[1]
    assert done["exit_type"] == "completed" and runs[0]["exit_type"] is None
    assert done["path"] == [{"node": "n-1", "time": "2030-01-01T00:00:00.000000Z"}]
    assert done["values"]["color"] == {
        "value": "red",
        "category": "Red",
        "node": "n-1",
        "time": "2030-01-01T00:00:01.000000Z",
        "input": "red",
        "name": "Color",
    }
    assert done["contact"]["uuid"] == contact_uuid and done["flow"]["name"] == "Favorites"
    only_responded = get_all(f"{live_web}/api/v2/runs.json?contact={contact_uuid}&responded=true", token)
    assert [r["id"] for r in only_responded] == [responded]
    by_flow = get_all(f"{live_web}/api/v2/runs.json?flow={seeded['flows']['Favorites']}", token)
    assert {silent, responded} <= {r["id"] for r in by_flow}
    both = httpx.get(
        f"{live_web}/api/v2/runs.json?flow={uuid.uuid4()}&contact={contact_uuid}", headers=api(token)
    )
    assert both.status_code == 400


def test_contacts_list_with_urns_and_filter_by_urn(
    live_web: str, seeded: dict[str, Any], web_db: psycopg.Connection[Any]
) -> None:
    phone = unique_phone()
    _, contact_uuid, _ = make_contact(web_db, seeded["org_id"], phone, "Listed")
    found = get_all(
        f"{live_web}/api/v2/contacts.json?urn=tel:{phone.replace('+', '%2B')}", seeded["api_token"]
    )
    assert [(c["uuid"], c["name"], c["urns"], c["status"]) for c in found] == [
        (contact_uuid, "Listed", [f"tel:{phone}"], "active")
    ]
    assert contact_uuid in {
        c["uuid"] for c in get_all(f"{live_web}/api/v2/contacts.json", seeded["api_token"])
    }
    bad = httpx.get(f"{live_web}/api/v2/contacts.json?urn=tel:12", headers=api(seeded["api_token"]))
    assert bad.status_code == 400 and bad.json() == {"detail": "Invalid URN: tel:12"}


@pytest.fixture(scope="module")
def throttled_web(
    web_stack: WebStack, seeded: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    server = Gunicorn(
        web_stack.env(API_THROTTLE_RATE="3/minute"),
        tmp_path_factory.mktemp("throttled") / "gunicorn.log",
        workers=1,
    )
    try:
        yield server.url
    finally:
        server.stop()


def org_with_rapidpros_rates(stack: WebStack, tmp_path: Path, name: str) -> dict[str, Any]:
    """A seeded org without api_rates, as RapidPro creates every org: the default rates apply to it."""
    export = tmp_path / f"{name}.json"
    node = {"uuid": str(uuid.uuid4()), "actions": [], "exits": []}
    flow = {"uuid": str(uuid.uuid4()), "name": name, "spec_version": "13.0.0", "nodes": [node]}
    export.write_text(json.dumps({"version": "13", "flows": [flow]}))
    return seed(stack, "--flows", str(export), "--send-url", "http://x:1/", "--name", name, "--api-rate", "")


def inside_one_window(period: int, needed: float) -> None:
    """Wait for the next fixed throttle window if the current one ends within `needed` seconds."""
    left = period - time.time() % period
    if left < needed:
        time.sleep(left + 1)


def test_throttle_is_per_org_and_per_scope(
    throttled_web: str, web_stack: WebStack, web_redis: redis.Redis, tmp_path: Path
) -> None:
    one = org_with_rapidpros_rates(web_stack, tmp_path, f"One {uuid.uuid4().hex[:6]}")
    other = org_with_rapidpros_rates(web_stack, tmp_path, f"Other {uuid.uuid4().hex[:6]}")
    inside_one_window(60, 10)

    codes = [
        httpx.get(throttled_web + "/api/v2/flows.json", headers=api(one["api_token"])).status_code for _ in range(4)
    ]

    assert codes == [200, 200, 200, 429]
    limited = httpx.get(throttled_web + "/api/v2/flows.json", headers=api(one["api_token"]))
    assert limited.status_code == 429
    assert limited.json()["detail"].startswith("Request was throttled.")
    assert 0 < int(limited.headers["Retry-After"]) <= 60
    # another org has its own budget, and so has another scope of the same org
    assert httpx.get(throttled_web + "/api/v2/flows.json", headers=api(other["api_token"])).status_code == 200
    assert httpx.get(throttled_web + "/api/v2/messages.json", headers=api(one["api_token"])).status_code == 200


def test_org_api_rates_override_the_default_per_scope(
    throttled_web: str,
    seeded: dict[str, Any],
    web_stack: WebStack,
    web_db: psycopg.Connection[Any],
    web_redis: redis.Redis,
    tmp_path: Path,
) -> None:
    """As RapidPro's OrgUserRateThrottle: the org's api_rates win for the scopes they name. The harness's
    seeded org (seed_org's own rates) is not held to the server's default of 3/minute."""
    org = org_with_rapidpros_rates(web_stack, tmp_path, f"Rated {uuid.uuid4().hex[:6]}")
    web_db.execute("UPDATE orgs_org SET api_rates = %s WHERE id = %s", (json.dumps({"v2": "5/minute"}), org["org_id"]))
    inside_one_window(60, 15)

    def codes(token: str, endpoint: str, n: int) -> list[int]:
        url = f"{throttled_web}/api/v2/{endpoint}.json"
        return [httpx.get(url, headers=api(token)).status_code for _ in range(n)]

    assert codes(org["api_token"], "flows", 6) == [200] * 5 + [429]  # v2: its own 5/minute
    assert codes(org["api_token"], "messages", 4) == [200] * 3 + [429]  # v2.messages: the default
    assert set(codes(seeded["api_token"], "flows", 8)) == {200}


def test_default_rate_is_rapidpros_2500_an_hour(
    live_web: str, seeded: dict[str, Any], web_stack: WebStack, web_redis: redis.Redis, tmp_path: Path
) -> None:
    """v9.2.5 settings_common.py: v2, v2.contacts, v2.messages and v2.runs at 2500/hour for an org without
    api_rates. The stand-in's default was 100000/hour before issue 9."""
    rates = django_call(web_stack.env(), "from django.conf import settings\nresult = settings.REST_FRAMEWORK")
    scopes = ("v2", "v2.contacts", "v2.messages", "v2.runs")
    assert rates["DEFAULT_THROTTLE_RATES"] == dict.fromkeys(scopes, "2500/hour")
    org = org_with_rapidpros_rates(web_stack, tmp_path, f"Busy {uuid.uuid4().hex[:6]}")
    inside_one_window(3600, 180)
    url = live_web + "/api/v2/messages.json?folder=nothing"  # the cheapest request the throttle counts

    def burst(token: str, n: int) -> list[int]:
        with httpx.Client(headers=api(token), timeout=30) as client:
            return [client.get(url).status_code for _ in range(n)]

    with ThreadPoolExecutor(max_workers=4) as pool:
        codes = sorted(c for part in pool.map(burst, [org["api_token"]] * 4, [625] * 4) for c in part)
    assert codes == [200] * 2500
    over = httpx.get(url, headers=api(org["api_token"]), timeout=30)
    assert over.status_code == 429 and 0 < int(over.headers["Retry-After"]) <= 3600
    assert httpx.get(url, headers=api(seeded["api_token"]), timeout=30).status_code == 200


def test_a_bad_throttle_rate_stops_the_web_at_start(web_stack: WebStack) -> None:
    done = run_manage(web_stack.env(API_THROTTLE_RATE="lots"), "check")
    assert done.returncode != 0
    assert "API_THROTTLE_RATE: expected <requests>/<second|minute|hour|day>, got 'lots'" in done.stderr


def test_a_mailroom_url_ending_in_mr_stops_the_web_at_start(web_stack: WebStack) -> None:
    """RapidPro's client appends /mr/<endpoint> to MAILROOM_URL: a URL with /mr already would miss."""
    done = run_manage(web_stack.env(MAILROOM_URL="http://lb/mr/"), "check")
    assert done.returncode != 0
    assert "MAILROOM_URL: expected mailroom's base URL (the client appends /mr/...), got 'http://lb/mr/'" in done.stderr


@pytest.mark.parametrize("dead", ["postgres", "redis"])
def test_a_dead_store_is_a_plain_500_and_the_login_page_stays_up(
    web_stack: WebStack, seeded: dict[str, Any], web_db: psycopg.Connection[Any], tmp_path: Path, dead: str
) -> None:
    nowhere = free_port()  # nothing listens there
    database_url = (
        f"postgres://temba:temba@127.0.0.1:{nowhere}/temba" if dead == "postgres" else web_stack.database_url
    )
    redis_url = f"redis://127.0.0.1:{nowhere}/15" if dead == "redis" else web_stack.redis_url
    starts_before = web_db.execute("SELECT count(*) FROM flows_flowstart").fetchone()
    server = Gunicorn(web_env(database_url, redis_url), tmp_path / "gunicorn.log", workers=1)
    try:
        token = api(seeded["api_token"])
        listed = httpx.get(server.url + "/api/v2/flows.json", headers=token, timeout=15)
        body = {"flow": seeded["flows"]["Favorites"], "urns": ["tel:+250788000077"]}
        started = httpx.post(server.url + "/api/v2/flow_starts.json", json=body, headers=token, timeout=15)
        for response in (listed, started):
            assert response.status_code == 500
            assert response.text == "Server Error. Site administrators have been notified."
        assert httpx.get(server.url + "/", timeout=5).status_code == 200
    finally:
        server.stop()
    # the throttle reads Redis before anything is written, as RapidPro's cache-backed throttle does
    assert web_db.execute("SELECT count(*) FROM flows_flowstart").fetchone() == starts_before


@pytest.mark.parametrize(
    ("switches", "message"),
    [
        ('{"spool": true}', "STANDIN_SWITCHES: unknown switch web.spool; web has: api_send_through_mailroom"),
        ("not json", "STANDIN_SWITCHES: not valid JSON"),
        ("{}", None),
    ],
)
def test_switches_are_validated_at_start(web_stack: WebStack, switches: str, message: str | None) -> None:
    done = run_manage(web_stack.env(STANDIN_SWITCHES=switches), "check")
    if message is None:
        assert done.returncode == 0, done.stderr
    else:
        assert done.returncode != 0 and message in done.stderr and "Traceback" not in done.stderr
