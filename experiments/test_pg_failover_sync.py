"""Postgres failover with synchronous replication (remote_apply)."""

import pytest

SYNC = "ALTER SYSTEM SET synchronous_standby_names = '*'; ALTER SYSTEM SET synchronous_commit = 'remote_apply';"
ASYNC = "ALTER SYSTEM RESET synchronous_standby_names; ALTER SYSTEM RESET synchronous_commit;"


def _apply(cluster, sql: str) -> None:
    for node in cluster.run.nodes_of("postgres"):
        for statement in [s for s in sql.split(";") if s.strip()] + ["SELECT pg_reload_conf()"]:
            cluster.run.exec_ok(node, ["runuser", "-u", "postgres", "--", "psql", "-qAtc", statement])


@pytest.fixture
def synchronous(cluster):
    """Synchronous replication on every Postgres node for the experiment, asynchronous again after."""
    _apply(cluster, SYNC)
    try:
        yield
    finally:
        _apply(cluster, ASYNC)


@pytest.mark.experiment(
    name="pg-failover-sync",
    description="synchronous replication (remote_apply); SIGKILL the primary; promote the standby",
    expectations=(
        "No acknowledged commit is lost (RPO 0): every commit was applied on the standby first. But the new "
        "primary has no standby until the old one is rebuilt, and synchronous commits wait for one "
        "(field notes: they hang), so writes stall until the old primary rejoins: a long unavailable window."
    ),
    schedule="at 8 pg-failover kill; recover at 25",
    rate=4,
    duration=35,
    quiesce_timeout=150,
    known={
        "logs.traceback": (
            "a Celery cron that runs during the database outage fails with a connection error and logs it, "
            "as RapidPro's Celery does; its next run succeeds"
        ),
        "logs.fatal": "PostgreSQL logs FATAL for every client connection the failover cuts",
        "logs.duplicate_key": (
            "a contact-URN get-or-create retried after its first transaction failed mid-failover hits the "
            "unique (identity, org) constraint and is handled"
        ),
        "inbound.duplicated": (
            "a synchronous commit cancelled by the failover is already committed locally; courier sees an error, "
            "spools the message and replays it: no unique constraint on msgs_msg.uuid (contracts, Inbound: Spool)"
        ),
        "inbound.duplicate_rows": "the same replayed spool entry, counted per row",
        "inbound.unhandled": (
            "courier stored the MO but its handler task push came while writes stalled; it stays P until "
            "retry_msgs (contracts, Inbound: 'the mailroom task is not guaranteed')"
        ),
        "outbound.lost": "the reply of an MO left P",
    },
)
def test_pg_failover_sync(experiment, synchronous):
    experiment.run()
