"""Redis failover: kill the master, Sentinel promotes the replica, HAProxy follows."""

import pytest


@pytest.mark.experiment(
    name="redis-failover",
    description="SIGKILL the Redis master; Sentinel promotes the replica; the stable address follows",
    expectations=(
        "Sentinel promotes in ~1.5 s and HAProxy follows. Queue entries written to the old master and not "
        "yet replicated are lost (Redis replication is asynchronous), and RapidPro's pooled connections fail "
        "one command each: a mailroom task or courier send can be lost, and the sent-guard sets can lose "
        "entries (duplicates possible). MOs stay in msgs_msg; lost tasks leave them P until retry_msgs."
    ),
    schedule="at 8 redis-failover; recover at 25",
    rate=4,
    duration=35,
    quiesce_timeout=60,
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
        "inbound.unhandled": (
            "a mailroom task lost with the old master or a dead pooled connection (contracts, Mailroom)"
        ),
        "outbound.lost": "a courier queue entry lost with the old master",
        "outbound.duplicate_deliveries": "Redis failover losing the sent sets (contracts, Outbound)",
        "continuity.missing_replies": "a reply lost with the old master",
    },
)
def test_redis_failover(experiment):
    experiment.run()
