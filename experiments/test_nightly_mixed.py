"""The nightly mixed run: a seeded random schedule of faults, one of n+1 per tier at a time."""

import pytest


@pytest.mark.experiment(
    name="nightly-mixed",
    description="random faults (kill, pause, restart, lb cut, toxics) drawn from the seed; blast radius bounded",
    expectations=(
        "Never more than one node of a service out at once, so the n+1 topology should carry on; losses that "
        "real v9 is known for (a killed courier's popped batch, a killed mailroom's task) may appear and are "
        "named as known findings. Same seed, same schedule: re-run with --seed to replay a failure."
    ),
    schedule="generate",
    generator={"duration": 50, "kinds": ["kill", "pause", "restart", "lb-cut", "toxic"], "start_after": 5},
    rate=4,
    duration=55,
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
        "inbound.duplicated": (
            "courier killed after its insert and before its seen-msgs mark: HAProxy's retry of the cut request "
            "reached the other courier, whose de-dup had nothing to match, and it wrote a second row; the first "
            "stays P (contracts, Inbound: de-dup order, and no unique constraint on msgs_msg.uuid)"
        ),
        "inbound.duplicate_rows": "the same retried request, counted per row",
        "outbound.lost": "courier killed after the pop and before the send (contracts, Outbound)",
        "inbound.unhandled": "a popped mailroom task dies with its worker (contracts, Mailroom)",
        "continuity.missing_replies": "replies lost to the above",
        "continuity.stuck_runs": "a contact locked by a killed mailroom worker",
    },
)
def test_nightly_mixed(experiment):
    experiment.run()
