"""Kill a Celery worker: nothing on the inbound -> outbound path depends on it."""

import pytest


@pytest.mark.experiment(
    name="kill-celery",
    description="SIGKILL celery-1 during a workload",
    expectations="Celery runs crons and counts only (contracts: none is on the inbound→outbound path): all valid.",
    schedule="at 8 kill celery-1; recover at 20",
    rate=4,
    duration=42,
)
def test_kill_celery(experiment):
    experiment.run()
