"""Indexer stand-in: contacts reach the search node and follow changes, resuming from the index."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from test_mailroom_support import (
    STANDIN_SRC,
    SearchNode,
    ServiceProcess,
    db_fixture,  # noqa: F401 - fixture
    free_port,
    migrated_pg_fixture,  # noqa: F401 - fixture
    receive,
    search_node_fixture,  # noqa: F401 - fixture
    seed_org,
    wait_for,
)


def start_indexer(tmp_path: Path, pg: str, search_url: str, name: str = "indexer") -> tuple[ServiceProcess, int]:
    port = free_port()
    proc = ServiceProcess(
        "standin.indexer",
        {
            "INDEXER_DB": pg,
            "INDEXER_ELASTIC_URL": search_url,
            "INDEXER_POLL": "0.3",
            "INDEXER_PORT": str(port),
            "INDEXER_ADDRESS": "127.0.0.1",
        },
        tmp_path / f"{name}.log",
    )
    proc.wait_for_log("indexer started")
    return proc, port


def docs(node: SearchNode) -> dict[int, dict[str, Any]]:
    resp = httpx.post(f"{node.url}/contacts/_search", json={"size": 1000, "query": {"match_all": {}}})
    if resp.status_code != 200:
        return {}
    return {int(h["_id"]): h["_source"] for h in resp.json()["hits"]["hits"]}


def test_indexer_catches_up_and_follows_changes(
    tmp_path: Path, migrated_pg: str, db: psycopg.Connection[Any], search_node: SearchNode
) -> None:
    seed = seed_org(db)
    first = receive(db, None, seed, "tel:+250788000040", "hi")
    second = receive(db, None, seed, "tel:+250788000041", "hi")
    db.execute("UPDATE contacts_contact SET name = 'Alice' WHERE id = %s", (first.contact_id,))
    indexer, port = start_indexer(tmp_path, migrated_pg, search_node.url)
    try:
        indexed = wait_for(lambda: len(docs(search_node)) == 2 and docs(search_node), what="both contacts indexed")
        alice = indexed[first.contact_id]
        assert alice["name"] == "Alice" and alice["org_id"] == seed.org_id
        assert alice["urns"] == [{"scheme": "tel", "path": "+250788000040"}]
        physical = list(httpx.get(f"{search_node.url}/contacts").json())
        assert len(physical) == 1 and physical[0].startswith(f"contacts_{datetime.now(UTC):%Y_%m_%d}")

        db.execute(
            "UPDATE contacts_contact SET name = 'Alicia', modified_on = now() WHERE id = %s", (first.contact_id,)
        )
        third = receive(db, None, seed, "tel:+250788000042", "hi")
        db.execute(
            "UPDATE contacts_contact SET is_active = false, modified_on = now() WHERE id = %s", (second.contact_id,)
        )
        wait_for(
            lambda: (
                set(docs(search_node)) == {first.contact_id, third.contact_id}
                and docs(search_node)[first.contact_id]["name"] == "Alicia"
            ),
            what="rename, new contact and deletion indexed",
        )
        status = httpx.get(f"http://127.0.0.1:{port}/").json()
        assert status["component"] == "indexer" and status["last_error"] is None and status["indexed"] >= 4
    finally:
        indexer.terminate()


def test_indexer_resumes_from_the_newest_document_in_the_index(
    tmp_path: Path, migrated_pg: str, db: psycopg.Connection[Any], search_node: SearchNode
) -> None:
    seed = seed_org(db)
    first = receive(db, None, seed, "tel:+250788000043", "hi")
    indexer, _ = start_indexer(tmp_path, migrated_pg, search_node.url)
    wait_for(lambda: first.contact_id in docs(search_node), what="first contact indexed")
    indexer.terminate()

    # while it is down: a change backdated beyond the 5 s overlap, and an ordinary one
    stale = receive(db, None, seed, "tel:+250788000044", "hi")
    db.execute(
        "UPDATE contacts_contact SET modified_on = %s WHERE id = %s",
        (datetime.now(UTC) - timedelta(minutes=5), stale.contact_id),
    )
    fresh = receive(db, None, seed, "tel:+250788000045", "hi")

    again, _ = start_indexer(tmp_path, migrated_pg, search_node.url, name="indexer-2")
    try:
        wait_for(lambda: fresh.contact_id in docs(search_node), what="fresh contact indexed after restart")
        assert stale.contact_id not in docs(search_node), "older than the index's newest document: skipped, as real"
        assert len(httpx.get(f"{search_node.url}/contacts").json()) == 1, "the existing index is reused"
    finally:
        again.terminate()


def test_indexer_survives_the_search_node_being_down(
    tmp_path: Path, migrated_pg: str, db: psycopg.Connection[Any]
) -> None:
    seed = seed_org(db)
    contact = receive(db, None, seed, "tel:+250788000046", "hi")
    node = SearchNode(free_port())
    indexer, _ = start_indexer(tmp_path, migrated_pg, node.url)
    try:
        indexer.wait_for_log("error indexing contacts")
        node.start()
        wait_for(lambda: contact.contact_id in docs(node), what="indexed once the node is up")
    finally:
        indexer.terminate()
        node.stop()


def test_indexer_refuses_switches(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "standin.indexer"],
        env={"PYTHONPATH": str(STANDIN_SRC), "PATH": "/usr/bin:/bin", "STANDIN_SWITCHES": json.dumps({"x": 1})},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2 and "unknown switch indexer.x" in done.stderr
