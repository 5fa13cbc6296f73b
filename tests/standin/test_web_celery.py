"""Web stand-in: the Celery crons, called directly and run by a real worker and beat on the Redis broker."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from test_web_support import BIN, STANDIN_SRC, WebStack, django_call, django_run, wait_for

# fixtures web_stack, web_db, web_redis come from the support module
pytest_plugins = ["test_web_support"]

DAY = timedelta(days=1)


def new_org(conn: psycopg.Connection[Any], name: str) -> tuple[int, int]:
    org_id = conn.execute("INSERT INTO orgs_org (name) VALUES (%s) RETURNING id", (name,)).fetchone()[0]  # type: ignore[index]
    contact_id = conn.execute(
        "INSERT INTO contacts_contact (org_id) VALUES (%s) RETURNING id", (org_id,)
    ).fetchone()[0]  # type: ignore[index]
    return org_id, contact_id


def add_msg(
    conn: psycopg.Connection[Any], org_id: int, contact_id: int, direction: str, status: str, age: timedelta
) -> int:
    created = datetime.now(UTC) - age
    return int(
        conn.execute(
            "INSERT INTO msgs_msg (org_id, contact_id, direction, status, text, created_on, modified_on) "
            "VALUES (%s, %s, %s, %s, 'x', %s, %s) RETURNING id",
            (org_id, contact_id, direction, status, created, created),
        ).fetchone()[0]  # type: ignore[index]
    )


def statuses(conn: psycopg.Connection[Any], ids: list[int]) -> list[str]:
    rows = dict(conn.execute("SELECT id, status FROM msgs_msg WHERE id = ANY(%s)", (ids,)).fetchall())
    return [rows[i] for i in ids]


RUN_FAIL_OLD = "from temba.msgs.tasks import fail_old_messages\nresult = fail_old_messages()"


def test_fail_old_messages_fails_only_unsent_outgoing_older_than_a_week(
    web_stack: WebStack, web_db: psycopg.Connection[Any], web_redis: redis.Redis
) -> None:
    org_id, contact_id = new_org(web_db, "fail old")
    old = 8 * DAY
    doomed = [add_msg(web_db, org_id, contact_id, "O", s, old) for s in ("Q", "I", "E")]
    kept = [
        add_msg(web_db, org_id, contact_id, "O", "W", old),
        add_msg(web_db, org_id, contact_id, "O", "D", old),
        add_msg(web_db, org_id, contact_id, "I", "P", old),
        add_msg(web_db, org_id, contact_id, "O", "Q", 6 * DAY),
    ]

    result = django_call(web_stack.env(), RUN_FAIL_OLD)

    assert result["failed"] >= 3
    assert statuses(web_db, doomed) == ["F", "F", "F"]
    assert statuses(web_db, kept) == ["W", "D", "P", "Q"]
    call_count = web_redis.hget("cron_stats:call_count", "fail_old_messages")
    assert call_count == "1"


def test_a_held_cron_lock_skips_the_run(
    web_stack: WebStack, web_db: psycopg.Connection[Any], web_redis: redis.Redis
) -> None:
    org_id, contact_id = new_org(web_db, "locked")
    stale = add_msg(web_db, org_id, contact_id, "O", "Q", 8 * DAY)
    web_redis.set("celery-task-lock:fail_old_messages", "someone-else", ex=60)

    assert django_call(web_stack.env(), RUN_FAIL_OLD) == {"skipped": True}
    assert statuses(web_db, [stale]) == ["Q"]

    web_redis.delete("celery-task-lock:fail_old_messages")
    assert django_call(web_stack.env(), RUN_FAIL_OLD)["failed"] >= 1
    assert statuses(web_db, [stale]) == ["F"]
    assert not web_redis.exists("celery-task-lock:fail_old_messages")  # released after the run


def label_rows(conn: psycopg.Connection[Any], org_id: int) -> list[tuple[str, int, bool]]:
    return conn.execute(
        "SELECT label_type, count, is_squashed FROM msgs_systemlabelcount "
        "WHERE org_id = %s ORDER BY label_type, id",
        (org_id,),
    ).fetchall()


def test_squash_msg_counts_sums_the_trigger_rows_per_folder(
    web_stack: WebStack, web_db: psycopg.Connection[Any], web_redis: redis.Redis
) -> None:
    org_id, contact_id = new_org(web_db, "squash")
    for _ in range(3):
        add_msg(web_db, org_id, contact_id, "I", "H", DAY)
    sent = add_msg(web_db, org_id, contact_id, "O", "Q", DAY)
    web_db.execute("UPDATE msgs_msg SET status = 'W' WHERE id = %s", (sent,))
    assert len(label_rows(web_db, org_id)) == 6  # inbox +1 +1 +1, outbox +1 -1, sent +1

    result = django_call(
        web_stack.env(), "from temba.msgs.tasks import squash_msg_counts\nresult = squash_msg_counts()"
    )

    assert result["squashed"] >= 3
    assert label_rows(web_db, org_id) == [("I", 3, True), ("O", 0, True), ("S", 1, True)]


def test_interrupt_flow_sessions_asks_mailroom_for_sessions_waiting_90_days(
    web_stack: WebStack, web_db: psycopg.Connection[Any], web_redis: redis.Redis
) -> None:
    org_id, contact_id = new_org(web_db, "interrupt")
    insert = (
        "INSERT INTO flows_flowsession (org_id, contact_id, status, created_on) "
        "VALUES (%s, %s, %s, %s) RETURNING id"
    )
    now = datetime.now(UTC)
    ancient = web_db.execute(insert, (org_id, contact_id, "W", now - 91 * DAY)).fetchone()[0]  # type: ignore[index]
    web_db.execute(insert, (org_id, contact_id, "W", now - DAY))
    web_db.execute(insert, (org_id, contact_id, "C", now - 91 * DAY))

    result = django_call(
        web_stack.env(),
        "from temba.flows.tasks import interrupt_flow_sessions\nresult = interrupt_flow_sessions()",
    )

    assert result["interrupted"] >= 1
    tasks = [json.loads(t) for t in web_redis.zrange(f"batch:{org_id}", 0, -1)]
    assert [(t["type"], t["task"]) for t in tasks] == [("interrupt_sessions", {"session_ids": [ancient]})]


class StubSearch:
    """A one-route Elasticsearch: `POST /contacts/_search` answers the newest indexed contact (or 404)."""

    def __init__(self) -> None:
        self.newest: dict[str, Any] | None = None
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if stub.newest is None:
                    self.send_response(404)
                    body = b'{"error": {"type": "index_not_found_exception"}}'
                else:
                    self.send_response(200)
                    body = json.dumps({"hits": {"hits": [{"_source": stub.newest}]}}).encode()
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def stub_search() -> Iterator[StubSearch]:
    stub = StubSearch()
    yield stub
    stub.close()


RUN_LAG = "from temba.contacts.tasks import check_elasticsearch_lag\nresult = check_elasticsearch_lag()"


def test_check_elasticsearch_lag_reports_drift_and_stays_quiet_when_current(
    web_stack: WebStack, web_db: psycopg.Connection[Any], web_redis: redis.Redis, stub_search: StubSearch
) -> None:
    env = web_stack.env(ELASTICSEARCH_URL=stub_search.url)
    newest = web_db.execute("SELECT max(modified_on) FROM contacts_contact").fetchone()[0]  # type: ignore[index]
    assert newest is not None

    assert django_call(env, RUN_LAG) == {"lag_seconds": None}  # no index yet

    stub_search.newest = {"id": 1, "modified_on": (newest - timedelta(minutes=10)).isoformat()}
    result, log = django_run(env, RUN_LAG)
    assert result["lag_seconds"] == pytest.approx(600, abs=1)
    assert "drift between ElasticSearch and DB" in log

    stub_search.newest = {"id": 1, "modified_on": newest.isoformat()}
    result, log = django_run(env, RUN_LAG)
    assert result["lag_seconds"] == pytest.approx(0, abs=1)
    assert "drift" not in log


class CeleryProcess:
    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("w")
        self.proc = subprocess.Popen(
            [str(BIN / "celery"), "-A", "temba", *args],
            env=env,
            cwd=STANDIN_SRC,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()
        return self.proc.returncode


def test_worker_and_beat_run_squash_every_interval_on_the_redis_broker(
    web_stack: WebStack, web_db: psycopg.Connection[Any], web_redis: redis.Redis, tmp_path: Path
) -> None:
    env = web_stack.env(
        SQUASH_COUNTS_INTERVAL="1", CELERY_BEAT_SCHEDULE_FILENAME=str(tmp_path / "beat-schedule")
    )
    org_id, contact_id = new_org(web_db, "beat")
    add_msg(web_db, org_id, contact_id, "I", "H", DAY)
    add_msg(web_db, org_id, contact_id, "I", "H", DAY)
    worker = CeleryProcess(
        ["worker", "--loglevel", "INFO", "--concurrency", "1"], env, tmp_path / "worker.log"
    )
    beat = CeleryProcess(["beat", "--loglevel", "INFO"], env, tmp_path / "beat.log")
    try:

        def squashed() -> bool:
            for process in (worker, beat):
                if process.proc.poll() is not None:
                    raise AssertionError(f"celery exited early:\n{process.log_path.read_text()}")
            return label_rows(web_db, org_id) == [("I", 2, True)]

        wait_for(squashed, timeout=45, what="beat to schedule squash_msg_counts and the worker to run it")
        add_msg(web_db, org_id, contact_id, "I", "H", DAY)
        wait_for(lambda: label_rows(web_db, org_id) == [("I", 3, True)], timeout=20, what="a second squash")
        # The task bumps its call counter after its transaction commits: wait for it, bounded.
        wait_for(
            lambda: int(web_redis.hget("cron_stats:call_count", "squash_msg_counts") or 0) >= 2,
            timeout=10,
            what="the second squash to be counted",
        )
    finally:
        beat_rc, worker_rc = beat.stop(), worker.stop()
    assert "squash_msg_counts" in (tmp_path / "worker.log").read_text()
    assert (beat_rc, worker_rc) == (0, 0), (tmp_path / "worker.log").read_text()[-2000:]
