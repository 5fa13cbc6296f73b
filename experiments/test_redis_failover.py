"""Redis failover: kill the master, Sentinel promotes the replica, HAProxy follows."""

import pytest

from resilience.verdict.weak_spots import (
    database_outage_logs,
    mailroom_push_failed,
    outcome_unknown_during_outage,
    redis_failover_losses,
)


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
    duration=42,
    quiesce_timeout=60,
    allowances=[
        *mailroom_push_failed("redis-failover", max=6),
        *outcome_unknown_during_outage("redis-failover", max=20),
        *redis_failover_losses("redis-failover", max=6),
        *database_outage_logs("redis-failover", max=40),
    ],
)
def test_redis_failover(experiment):
    experiment.run()
