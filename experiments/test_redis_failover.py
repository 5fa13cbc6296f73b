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
