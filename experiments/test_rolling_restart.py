"""A rolling restart of every app tier, one node at a time: what an upgrade does."""

import pytest


@pytest.mark.experiment(
    name="rolling-restart",
    description="restart web, courier, mailroom and celery node by node (graceful stop, wait healthy)",
    expectations=(
        "Graceful SIGTERM drains courier's sends and mailroom's tasks, and HAProxy moves traffic to the other "
        "node: every verdict valid. This is the pre-upgrade certification's core."
    ),
    schedule=(
        "at 3 rolling-restart web as w; at 4 rolling-restart courier as c; "
        "at 5 rolling-restart mailroom as m; at 6 rolling-restart celery as q"
    ),
    rate=4,
    duration=45,
)
def test_rolling_restart(experiment):
    experiment.run()
