"""Mailroom stand-in in outages, as mailroom v9.2.2 behaves (docs/fidelity.md rows 2, 4, 7, 9-11, 19, 23,
25, 30): Redis and Postgres black holes, Redis down at start, assets before the contact lock, the
post-commit transaction, the contact lock's poll, database connections, and `/mr/`.

Each default is checked against the v9.2 behaviour; where cheap, the switch restoring the older one too.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
from test_mailroom_support import (
    FAVORITES,
    RedisMonitor,
    ServiceProcess,
    TcpProxy,
    courier_batches,
    db_fixture,  # noqa: F401 - fixture
    free_port,
    migrated_pg_fixture,  # noqa: F401 - fixture
    msg_status,
    outgoing,
    pg_proxy,
    proxied_pg,
    rds_fixture,  # noqa: F401 - fixture
    receive,
    redis_proxy,
    seed_org,
    start_mailroom,
    wait_for,
)

HIGH = 1
COLOR = "What is your favorite color?"
BEER = "Good choice, I like Red too! What is your favorite beer?"
ORG_CACHE_S = 5.0  # core/models/assets.go: orgCache


@pytest.fixture()
def favorites(db: psycopg.Connection[Any]) -> Any:
    if not FAVORITES.exists():
        pytest.skip(f"{FAVORITES} is not present beside the checkout")
    return seed_org(db, [FAVORITES], {"Favorites": ["favorites"]})


def _pushed_ids(rds: redis.Redis, seed: Any) -> list[int]:
    return [m["id"] for batch in courier_batches(rds, seed, HIGH) for m in batch]


def _wait_done(db: psycopg.Connection[Any], rds: redis.Redis, seed: Any, msg: Any, what: str) -> None:
    """The message handled and its reply pushed: H alone is only the sprint's commit; the push follows in its
    own transaction, and an outage begun in between would fail that one."""
    wait_for(lambda: msg_status(db, msg.msg_id) == "H" and len(_pushed_ids(rds, seed)) == len(outgoing(db)), what=what)


# rows 2 and 4: no read timeout on Redis; the handler foreman stalls on a black-holed connection


def test_redis_black_hole_stalls_handling_until_the_connection_closes(
    tmp_path: Path, migrated_pg: str, redis_url: str, db: psycopg.Connection[Any], rds: redis.Redis, favorites: Any
) -> None:
    proxy, proxied = redis_proxy(redis_url)
    mailroom = start_mailroom(tmp_path, migrated_pg, proxied)
    try:
        first = receive(db, rds, favorites, "tel:+250788000201", "favorites")
        _wait_done(db, rds, favorites, first, what="handled before the black hole")
        assert proxy.hold() >= 1  # live connections only: a new one would reach Redis
        second = receive(db, rds, favorites, "tel:+250788000202", "favorites")  # queued past the proxy
        time.sleep(20)  # longer than the 15 s read timeout the stand-in had before
        assert msg_status(db, second.msg_id) == "P", "the foreman waits on its pop for ever"
        assert rds.zcard(f"handler:{favorites.org_id}") == 1, "nothing was popped"
        proxy.cut_all()  # the server side closes the connections: the pop fails, a new connection serves
        wait_for(lambda: msg_status(db, second.msg_id) == "H", timeout=20, what="handled once the connection closed")
    finally:
        proxy.release()
        mailroom.terminate()
        proxy.close()


def test_redis_read_timeout_switch_turns_the_stall_into_a_retry(
    tmp_path: Path, migrated_pg: str, redis_url: str, db: psycopg.Connection[Any], rds: redis.Redis, favorites: Any
) -> None:
    proxy, proxied = redis_proxy(redis_url)
    mailroom = start_mailroom(tmp_path, migrated_pg, proxied, switches={"redis_socket_timeout_s": 2})
    try:
        first = receive(db, rds, favorites, "tel:+250788000203", "favorites")
        _wait_done(db, rds, favorites, first, what="handled before the black hole")
        proxy.hold()
        # Each held pooled connection costs one command a 2 s timeout; a timeout inside a handler task fails
        # that task (logged and gone, as real), so the proof is that handling resumes while the connections
        # stay held: one of a few messages sent over 30 s is handled. Without the switch none is (test above).
        sent = []
        for number in range(6):
            sent.append(receive(db, rds, favorites, f"tel:+25078800021{number}", "favorites"))
            try:
                wait_for(lambda: any(msg_status(db, m.msg_id) == "H" for m in sent), timeout=5, what="handled")
                break
            except AssertionError:
                continue
        assert any(msg_status(db, m.msg_id) == "H" for m in sent), mailroom.log()[-3000:]
        assert "Timeout" in mailroom.log(), "the held connections timed out (the retry's cause)"
    finally:
        proxy.release()
        mailroom.terminate()
        proxy.close()


# row 7: Redis unreachable at start


def _run_mailroom(tmp_path: Path, pg: str, redis_url: str, switches: dict[str, Any]) -> ServiceProcess:
    env = {
        "MAILROOM_DB": pg,
        "MAILROOM_REDIS": redis_url,
        "MAILROOM_ELASTIC": "http://127.0.0.1:1",
        "MAILROOM_ADDRESS": "127.0.0.1",
        "MAILROOM_PORT": str(free_port()),
        "STANDIN_SWITCHES": json.dumps(switches),
    }
    return ServiceProcess("standin.mailroom", env, tmp_path / "mailroom.log")


def test_redis_unreachable_at_start_exits_non_zero(tmp_path: Path, migrated_pg: str) -> None:
    mailroom = _run_mailroom(tmp_path, migrated_pg, f"redis://127.0.0.1:{free_port()}/15", {})
    try:
        code = mailroom.proc.wait(30)
        assert code == 2, mailroom.log()
        log = mailroom.log()
        assert "redis not reachable" in log
        assert log.index("redis not reachable") < log.index("exiting")
        assert "mailroom started" not in log and "Traceback" not in log
    finally:
        mailroom.kill()


def test_redis_unreachable_at_start_switch_keeps_running(tmp_path: Path, migrated_pg: str) -> None:
    mailroom = _run_mailroom(
        tmp_path, migrated_pg, f"redis://127.0.0.1:{free_port()}/15", {"exit_without_redis": False}
    )
    try:
        mailroom.wait_for_log("mailroom started")
        assert "redis not reachable" in mailroom.log()
        time.sleep(1)
        assert mailroom.proc.poll() is None
    finally:
        mailroom.terminate()


# rows 9 and 10: org assets loaded before the lock and the LPOP, cached 5 s


def test_db_outage_longer_than_the_asset_cache_leaves_the_event_queued_for_the_next_one(
    tmp_path: Path, migrated_pg: str, redis_url: str, db: psycopg.Connection[Any], rds: redis.Redis, favorites: Any
) -> None:
    proxy = pg_proxy(migrated_pg)
    mailroom = start_mailroom(tmp_path, proxied_pg(migrated_pg, proxy), redis_url)
    urn = "tel:+250788000205"
    try:
        first = receive(db, rds, favorites, urn, "favorites")
        _wait_done(db, rds, favorites, first, what="handled before the outage")
        proxy.down()
        time.sleep(ORG_CACHE_S + 1)
        second = receive(db, rds, favorites, urn, "red")
        wait_for(lambda: "error loading org assets" in mailroom.log(), what="the task failed on its assets")
        contact_list = f"c:{favorites.org_id}:{first.contact_id}"
        assert rds.zcard(f"handler:{favorites.org_id}") == 0, "the task was popped"
        assert rds.llen(contact_list) == 1, "the event was never popped"
        assert msg_status(db, second.msg_id) == "P"
        assert "error handling contact event" not in mailroom.log()
        proxy.up()
        time.sleep(1)
        assert rds.llen(contact_list) == 1, "nothing handles it until the contact's next event"
        third = receive(db, rds, favorites, urn, "primus")
        wait_for(lambda: msg_status(db, third.msg_id) == "H", what="the next event handled")
        assert msg_status(db, second.msg_id) == "H", "the stranded event was handled by the next one's task"
        texts = [r[1] for r in outgoing(db)]
        assert texts[:2] == [COLOR, BEER] and len(texts) == 3, texts
    finally:
        mailroom.terminate()
        proxy.close()


@pytest.mark.parametrize("assets_before_lock", [True, False])
def test_db_outage_within_the_asset_cache_burns_three_tries_at_once(
    tmp_path: Path,
    migrated_pg: str,
    redis_url: str,
    db: psycopg.Connection[Any],
    rds: redis.Redis,
    favorites: Any,
    assets_before_lock: bool,
) -> None:
    """Rows 10 and 25. With the assets cached, the task takes the lock and pops the event without the database;
    its contact query fails at once (no pool wait), so the three tries go by quickly and the event is dropped:
    the message stays P for retry_msgs. The older order pops first whatever the cache, with the same end."""
    proxy = pg_proxy(migrated_pg)
    mailroom = start_mailroom(
        tmp_path, proxied_pg(migrated_pg, proxy), redis_url, switches={"assets_before_lock": assets_before_lock}
    )
    urn = "tel:+250788000206"
    try:
        first = receive(db, rds, favorites, urn, "favorites")
        _wait_done(db, rds, favorites, first, what="handled before the outage")
        proxy.down()
        started = time.monotonic()
        second = receive(db, rds, favorites, urn, "red")
        wait_for(lambda: "permanent failure" in mailroom.log(), timeout=40, what="third failure dropped the event")
        burned = time.monotonic() - started
        assert burned < 10, f"three tries took {burned:.1f}s: the queries waited for a connection"
        log = mailroom.log()
        assert "error_count=1" in log and "error_count=2" in log
        assert "error loading org assets" not in log, "the assets came from the cache"
        assert rds.llen(f"c:{favorites.org_id}:{first.contact_id}") == 0
        assert msg_status(db, second.msg_id) == "P"
        proxy.up()
        third = receive(db, rds, favorites, urn, "red")
        wait_for(lambda: msg_status(db, third.msg_id) == "H", what="handled once the database is back")
        assert [r[1] for r in outgoing(db)] == [COLOR, BEER]
    finally:
        mailroom.terminate()
        proxy.close()


# row 11: the push to courier in a new transaction after the commit


def test_failed_post_commit_transaction_requeues_the_event_and_leaves_the_reply_queued(
    tmp_path: Path, migrated_pg: str, redis_url: str, db: psycopg.Connection[Any], rds: redis.Redis, favorites: Any
) -> None:
    mailroom = start_mailroom(tmp_path, migrated_pg, redis_url, switches={"post_commit_failures": 1})
    try:
        msg = receive(db, rds, favorites, "tel:+250788000207", "favorites")
        wait_for(lambda: len(_pushed_ids(rds, favorites)) == 1, what="the second handling's reply pushed")
        replies = outgoing(db)
        assert [(r[1], r[2]) for r in replies] == [(COLOR, "Q"), (COLOR, "Q")], "the MO was handled twice"
        assert _pushed_ids(rds, favorites) == [replies[1][0]], "the first reply was never pushed"
        assert msg_status(db, msg.msg_id) == "H"
        log = mailroom.log()
        assert "error starting transaction for post commit hooks" in log and "error_count=1" in log
    finally:
        mailroom.terminate()


def test_post_commit_tx_switch_pushes_without_the_database(
    tmp_path: Path, migrated_pg: str, redis_url: str, db: psycopg.Connection[Any], rds: redis.Redis, favorites: Any
) -> None:
    mailroom = start_mailroom(
        tmp_path, migrated_pg, redis_url, switches={"post_commit_tx": False, "post_commit_failures": 1}
    )
    try:
        msg = receive(db, rds, favorites, "tel:+250788000208", "favorites")
        wait_for(lambda: len(_pushed_ids(rds, favorites)) == 1, what="reply pushed")
        assert [r[1] for r in outgoing(db)] == [COLOR]
        assert msg_status(db, msg.msg_id) == "H"
        assert "error_count=1" not in mailroom.log()
    finally:
        mailroom.terminate()


# row 19: the contact lock is tried once a second


@pytest.mark.parametrize("poll", [None, 0.1])
def test_contact_lock_is_tried_once_a_second(
    tmp_path: Path,
    migrated_pg: str,
    redis_url: str,
    db: psycopg.Connection[Any],
    rds: redis.Redis,
    favorites: Any,
    poll: float | None,
) -> None:
    switches = {} if poll is None else {"contact_lock_poll_s": poll}
    mailroom = start_mailroom(
        tmp_path, migrated_pg, redis_url, switches=switches, extra_env={"MAILROOM_STANDIN_CONTACT_LOCK_WAIT": "30"}
    )
    monitor = RedisMonitor(redis_url)
    try:
        warm = receive(db, None, favorites, "tel:+250788000209", "warm-up")
        lock_key = f"lock:c:{favorites.org_id}:{warm.contact_id}"
        rds.set(lock_key, "held-by-the-test", px=60_000)
        msg = receive(db, rds, favorites, "tel:+250788000209", "favorites")
        wait_for(lambda: len(monitor.commands("SET", lock_key)) >= 3, what="three tries of the held lock")
        rds.delete(lock_key)
        wait_for(lambda: msg_status(db, msg.msg_id) == "H", what="handled once the lock was free")
        tries = [at for at, line in monitor.commands("SET", lock_key) if "held-by-the-test" not in line]
        gaps = [b - a for a, b in itertools.pairwise(tries)]
        if poll is None:
            # the grab that succeeds is a try like the others: it waits for the next tick too
            assert min(gaps) >= 0.9, gaps
        else:
            assert statistics.median(gaps) < 0.5, gaps
    finally:
        monitor.stop()
        mailroom.terminate()


# row 25: connections as database/sql hands them out


def test_dialing_pool_fails_at_once_in_an_outage_and_the_next_query_after_it_succeeds(migrated_pg: str) -> None:
    from standin.mailroom.dbpool import DialingPool

    proxy = pg_proxy(migrated_pg)

    async def scenario() -> tuple[float, float]:
        pool = DialingPool(proxied_pg(migrated_pg, proxy), max_open=4, connect_timeout=5)
        try:
            async with pool.connection() as conn:
                await conn.execute("SELECT 1")
            proxy.down()
            started = time.monotonic()
            with pytest.raises(psycopg.OperationalError):
                async with pool.connection() as conn:
                    await conn.execute("SELECT 1")
            failed_after = time.monotonic() - started
            proxy.up()
            started = time.monotonic()
            async with pool.connection() as conn:  # no back-off to wait for: it dials now
                assert await (await conn.execute("SELECT 1")).fetchone() == (1,)
            return failed_after, time.monotonic() - started
        finally:
            await pool.close()

    try:
        failed_after, recovered_after = asyncio.run(scenario())
        assert failed_after < 3, f"the query waited {failed_after:.1f}s instead of failing"
        assert recovered_after < 3, f"the first query after the outage took {recovered_after:.1f}s"
    finally:
        proxy.close()


# row 23: a Postgres black hole blocks a task's query


def test_postgres_black_hole_blocks_the_task_instead_of_failing_it(
    tmp_path: Path, migrated_pg: str, redis_url: str, db: psycopg.Connection[Any], rds: redis.Redis, favorites: Any
) -> None:
    proxy = pg_proxy(migrated_pg)
    mailroom = start_mailroom(tmp_path, proxied_pg(migrated_pg, proxy), redis_url)
    urn = "tel:+250788000210"
    try:
        first = receive(db, rds, favorites, urn, "favorites")
        _wait_done(db, rds, favorites, first, what="handled before the black hole")
        proxy.hold(new_too=True)
        second = receive(db, rds, favorites, urn, "red")
        wait_for(lambda: rds.zcard(f"handler:{favorites.org_id}") == 0, what="task popped")
        time.sleep(12)
        assert msg_status(db, second.msg_id) == "P"
        log = mailroom.log()
        assert "error running task" not in log and "error handling contact event" not in log, "it did not fail"
        proxy.release()
        wait_for(lambda: msg_status(db, second.msg_id) == "H", timeout=20, what="handled once the bytes flow")
        assert [r[1] for r in outgoing(db)] == [COLOR, BEER]
    finally:
        proxy.release()
        mailroom.terminate()
        proxy.close()


# row 30: /mr/ touches no dependency


def _wait_until_no_new_connections(proxy: TcpProxy, quiet_s: float = 1.0, timeout: float = 15.0) -> None:
    """The crons fire once at start and dial the pool beside the web server: on a loaded machine a dial
    came after the black hole began and was counted against /mr/ (CI). Let them finish first."""
    deadline = time.monotonic() + timeout
    seen, since = proxy.accepted, time.monotonic()
    while time.monotonic() - since < quiet_s:
        assert time.monotonic() < deadline, f"mailroom kept dialling the database for {timeout:.0f} s"
        time.sleep(0.1)
        if proxy.accepted != seen:
            seen, since = proxy.accepted, time.monotonic()


def test_index_answers_without_touching_a_black_holed_database(
    tmp_path: Path, migrated_pg: str, redis_url: str, db: psycopg.Connection[Any], rds: redis.Redis
) -> None:
    proxy = pg_proxy(migrated_pg)
    mailroom = start_mailroom(tmp_path, proxied_pg(migrated_pg, proxy), redis_url)
    try:
        _wait_until_no_new_connections(proxy)
        proxy.hold(new_too=True)
        accepted = proxy.accepted
        answer = httpx.get(f"http://127.0.0.1:{mailroom.port}/mr/", timeout=1.5)  # HAProxy checks with 1 s
        assert answer.status_code == 200
        assert answer.json() == {"url": "/mr/", "component": "mailroom", "version": "9.2.2-standin"}
        assert proxy.accepted == accepted, "no connection to the database"
    finally:
        proxy.release()
        mailroom.terminate()
        proxy.close()


def test_index_switch_pings_the_database_and_redis(
    tmp_path: Path, migrated_pg: str, redis_url: str, db: psycopg.Connection[Any], rds: redis.Redis
) -> None:
    proxy = pg_proxy(migrated_pg)
    mailroom = start_mailroom(tmp_path, proxied_pg(migrated_pg, proxy), redis_url, switches={"health_pings_deps": True})
    try:
        assert mailroom.health()["db"] == "ok"
        proxy.down()
        body = mailroom.health()
        assert body["db"].startswith("error") and body["redis"] == "ok", body
    finally:
        mailroom.terminate()
        proxy.close()
