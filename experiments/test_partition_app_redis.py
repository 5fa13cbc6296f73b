"""Partition the app tier from Redis."""

import pytest


@pytest.mark.experiment(
    name="partition-app-redis",
    description="every app-tier connection to Redis black-holed for 8 s",
    expectations=(
        "All app↔Redis traffic crosses the proxy's redis route, so a timeout toxic there is a partition of "
        "the app tier from Redis (data stops, connections stay open). Courier still stores MOs (Postgres) but "
        "its Redis push fails and is only logged: the MO stays P (contracts, Inbound) until retry_msgs. "
        "Expect unhandled MOs and lost replies as known v9 findings."
    ),
    schedule="at 8 toxic redis timeout timeout=0; recover at 16",
    rate=4,
    duration=30,
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
        "inbound.unhandled": "a failed Redis push is only logged: the message stays P (contracts, Inbound)",
        "outbound.lost": "the reply of an MO whose handler task never reached Redis",
        "continuity.missing_replies": "a conversation whose task never reached Redis",
    },
)
def test_partition_app_redis(experiment):
    experiment.run()
