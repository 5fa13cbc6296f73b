"""Postgres failover with asynchronous replication: kill the primary, promote the hot standby."""

import pytest


@pytest.mark.experiment(
    name="pg-failover-async",
    description="SIGKILL the Postgres primary; promote the standby; HAProxy's stable address follows",
    expectations=(
        "The Go services dial one address (HAProxy :5432 via the proxy), which follows the promotion in about "
        "a second. Writes in that window fail: courier answers 400 with a cold channel cache or spools with a "
        "warm one (200, flushed later). With async replication a commit acknowledged by the old primary but "
        "not yet streamed is lost (RPO > 0 is possible). The old primary rejoins as the new standby."
    ),
    schedule="at 8 pg-failover kill; recover at 25",
    rate=4,
    duration=35,
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
        "inbound.lost": "async replication: a commit not yet streamed to the standby is lost at failover",
        "availability.rpo_lost": "async replication loses what the standby had not received",
    },
)
def test_pg_failover_async(experiment):
    experiment.run()
