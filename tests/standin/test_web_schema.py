"""Web stand-in: the migrations create docs/architecture.md's schema, with RapidPro's constraints."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from test_web_support import WebStack, run_manage

# fixtures web_stack, web_db come from the support module
pytest_plugins = ["test_web_support"]

# docs/architecture.md "Schema": table -> {column: postgres type}
CONTRACT: dict[str, dict[str, str]] = {
    "orgs_org": {
        "id": "integer",
        "uuid": "uuid",
        "name": "character varying",
        "is_active": "boolean",
        "created_on": "timestamp with time zone",
        "api_rates": "jsonb",  # read by the API throttle (RapidPro's Org.api_rates)
    },
    "api_apitoken": {
        "key": "character varying",
        "org_id": "integer",
        "user_id": "integer",
        "is_active": "boolean",
        "created": "timestamp with time zone",
    },
    "channels_channel": {
        "id": "integer",
        "uuid": "uuid",
        "org_id": "integer",
        "channel_type": "character varying",
        "name": "character varying",
        "address": "character varying",
        "config": "jsonb",
        "tps": "integer",
        "is_active": "boolean",
        "created_on": "timestamp with time zone",
    },
    "contacts_contact": {
        "id": "integer",
        "uuid": "uuid",
        "org_id": "integer",
        "name": "character varying",
        "language": "character varying",
        "fields": "jsonb",
        "status": "character varying",
        "is_active": "boolean",
        "current_flow_id": "integer",
        "created_on": "timestamp with time zone",
        "modified_on": "timestamp with time zone",
    },
    "contacts_contacturn": {
        "id": "integer",
        "org_id": "integer",
        "contact_id": "integer",
        "identity": "character varying",
        "scheme": "character varying",
        "path": "character varying",
        "channel_id": "integer",
        "priority": "integer",
    },
    "msgs_msg": {
        "id": "bigint",
        "uuid": "uuid",
        "org_id": "integer",
        "channel_id": "integer",
        "contact_id": "integer",
        "contact_urn_id": "integer",
        "direction": "character varying",
        "status": "character varying",
        "msg_type": "character varying",
        "visibility": "character varying",
        "text": "text",
        "external_id": "character varying",
        "high_priority": "boolean",
        "error_count": "integer",
        "next_attempt": "timestamp with time zone",
        "flow_id": "integer",
        "created_on": "timestamp with time zone",
        "sent_on": "timestamp with time zone",
        "queued_on": "timestamp with time zone",
        "modified_on": "timestamp with time zone",
        "metadata": "jsonb",
    },
    "flows_flow": {
        "id": "integer",
        "uuid": "uuid",
        "org_id": "integer",
        "name": "character varying",
        "flow_type": "character varying",
        "spec_version": "character varying",
        "definition": "jsonb",
        "is_active": "boolean",
        "created_on": "timestamp with time zone",
        "modified_on": "timestamp with time zone",
    },
    "triggers_trigger": {
        "id": "integer",
        "org_id": "integer",
        "trigger_type": "character varying",
        "keywords": "ARRAY",
        "match_type": "character varying",
        "flow_id": "integer",
        "is_active": "boolean",
    },
    "flows_flowsession": {
        "id": "bigint",
        "uuid": "uuid",
        "org_id": "integer",
        "contact_id": "integer",
        "status": "character varying",
        "session_type": "character varying",
        "output": "jsonb",
        "current_flow_id": "integer",
        "created_on": "timestamp with time zone",
        "ended_on": "timestamp with time zone",
        "wait_started_on": "timestamp with time zone",
        "timeout_on": "timestamp with time zone",
        "wait_expires_on": "timestamp with time zone",
    },
    "flows_flowrun": {
        "id": "bigint",
        "uuid": "uuid",
        "org_id": "integer",
        "flow_id": "integer",
        "contact_id": "integer",
        "session_id": "bigint",
        "status": "character varying",
        "path": "jsonb",
        "results": "jsonb",
        "responded": "boolean",
        "created_on": "timestamp with time zone",
        "modified_on": "timestamp with time zone",
        "exited_on": "timestamp with time zone",
    },
    "flows_flowstart": {
        "id": "bigint",
        "uuid": "uuid",
        "org_id": "integer",
        "flow_id": "integer",
        "start_type": "character varying",
        "status": "character varying",
        "urns": "jsonb",
        "contact_uuids": "jsonb",
        "restart_participants": "boolean",
        "params": "jsonb",
        "contact_count": "integer",
        "created_on": "timestamp with time zone",
        "modified_on": "timestamp with time zone",
    },
}


def columns(conn: psycopg.Connection[Any], table: str) -> dict[str, str]:
    rows = conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s", (table,)
    ).fetchall()
    return {name: data_type for name, data_type in rows}


@pytest.mark.parametrize("table", sorted(CONTRACT))
def test_contract_tables_have_their_columns_and_types(web_db: psycopg.Connection[Any], table: str) -> None:
    actual = columns(web_db, table)
    assert actual, f"{table} does not exist"
    wrong = {c: (t, actual.get(c)) for c, t in CONTRACT[table].items() if actual.get(c) != t}
    assert not wrong, f"{table}: column -> (contract type, actual type): {wrong}"


def test_text_array_holds_trigger_keywords(web_db: psycopg.Connection[Any]) -> None:
    element = web_db.execute(
        "SELECT e.data_type FROM information_schema.columns c JOIN information_schema.element_types e "
        "ON c.table_name = e.object_name AND c.dtd_identifier = e.collection_type_identifier "
        "WHERE c.table_name = 'triggers_trigger' AND c.column_name = 'keywords'"
    ).fetchone()
    assert element is not None and element[0] == "character varying"


def make_org_and_contact(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    # only the columns without a database default: what a raw-SQL stand-in must give
    org_id = conn.execute("INSERT INTO orgs_org (name) VALUES ('schema test') RETURNING id").fetchone()[0]  # type: ignore[index]
    contact_id = conn.execute(
        "INSERT INTO contacts_contact (org_id) VALUES (%s) RETURNING id", (org_id,)
    ).fetchone()[0]  # type: ignore[index]
    return org_id, contact_id


def test_msg_uuid_is_not_unique_as_in_rapidpro(web_db: psycopg.Connection[Any]) -> None:
    org_id, contact_id = make_org_and_contact(web_db)
    msg_uuid = str(uuid.uuid4())
    for _ in range(2):
        web_db.execute(
            "INSERT INTO msgs_msg (uuid, org_id, contact_id, direction, status, text) "
            "VALUES (%s, %s, %s, 'I', 'P', 'x')",
            (msg_uuid, org_id, contact_id),
        )
    count = web_db.execute("SELECT count(*) FROM msgs_msg WHERE uuid = %s", (msg_uuid,)).fetchone()[0]  # type: ignore[index]
    assert count == 2


def test_urn_identity_is_unique_within_an_org_only(web_db: psycopg.Connection[Any]) -> None:
    org_id, contact_id = make_org_and_contact(web_db)
    other_org, other_contact = make_org_and_contact(web_db)
    insert = (
        "INSERT INTO contacts_contacturn (org_id, contact_id, identity, scheme, path) "
        "VALUES (%s, %s, 'tel:+250788111222', 'tel', '+250788111222')"
    )
    web_db.execute(insert, (org_id, contact_id))
    web_db.execute(insert, (other_org, other_contact))
    with pytest.raises(psycopg.errors.UniqueViolation):
        web_db.execute(insert, (org_id, contact_id))


def test_database_defaults_fill_the_constant_columns(web_db: psycopg.Connection[Any]) -> None:
    org_id, contact_id = make_org_and_contact(web_db)
    row = web_db.execute(
        "INSERT INTO msgs_msg (org_id, contact_id, direction, status, text) VALUES (%s, %s, 'O', 'Q', 'x') "
        "RETURNING uuid, msg_type, visibility, error_count, created_on IS NOT NULL, modified_on IS NOT NULL",
        (org_id, contact_id),
    ).fetchone()
    assert row is not None
    assert row[0] is not None and row[1:] == ("T", "V", 0, True, True)
    contact = web_db.execute(
        "SELECT uuid IS NOT NULL, status, is_active FROM contacts_contact WHERE id = %s", (contact_id,)
    ).fetchone()
    assert contact == (True, "A", True)
    assert web_db.execute("SELECT api_rates FROM orgs_org WHERE id = %s", (org_id,)).fetchone() == ({},)


def folder_totals(conn: psycopg.Connection[Any], org_id: int) -> dict[str, int]:
    rows = conn.execute(
        "SELECT label_type, sum(count) FROM msgs_systemlabelcount WHERE org_id = %s GROUP BY label_type",
        (org_id,),
    ).fetchall()
    return {label: int(total) for label, total in rows if total}


def test_folder_counts_follow_messages_through_their_statuses(web_db: psycopg.Connection[Any]) -> None:
    org_id, contact_id = make_org_and_contact(web_db)
    insert = (
        "INSERT INTO msgs_msg (org_id, contact_id, direction, status, text) "
        "VALUES (%s, %s, %s, %s, 'x') RETURNING id"
    )
    incoming = web_db.execute(insert, (org_id, contact_id, "I", "P")).fetchone()[0]  # type: ignore[index]
    outgoing = web_db.execute(insert, (org_id, contact_id, "O", "Q")).fetchone()[0]  # type: ignore[index]
    assert folder_totals(web_db, org_id) == {"O": 1}  # a pending incoming message is in no folder
    web_db.execute("UPDATE msgs_msg SET status = 'H' WHERE id = %s", (incoming,))
    web_db.execute("UPDATE msgs_msg SET status = 'W' WHERE id = %s", (outgoing,))
    assert folder_totals(web_db, org_id) == {"I": 1, "S": 1}
    web_db.execute("UPDATE msgs_msg SET status = 'F' WHERE id = %s", (outgoing,))
    web_db.execute("DELETE FROM msgs_msg WHERE id = %s", (incoming,))
    assert folder_totals(web_db, org_id) == {"X": 1}


def test_models_and_migrations_agree(web_stack: WebStack) -> None:
    done = run_manage(web_stack.env(), "makemigrations", "--check", "--dry-run")
    assert done.returncode == 0, done.stdout + done.stderr
