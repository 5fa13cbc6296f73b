"""Kill one mailroom instance while it handles conversations."""

import pytest

from resilience.verdict.weak_spots import mailroom_task_lost


@pytest.mark.experiment(
    name="kill-mailroom",
    description="SIGKILL mailroom-1 while it handles contact events; start it again 12 s later",
    expectations=(
        "Mailroom's queues have no acknowledgement: a task popped by the killed worker is lost, its contact "
        "stays locked up to 5 min and its MO stays P until the retry_msgs cron (every 5 min, P older than "
        "5 min) — longer than this run drains. Expect MOs never handled and conversations left waiting as "
        "known v9 findings; nothing acknowledged is lost from msgs_msg."
    ),
    schedule="at 8 kill mailroom-1; recover at 20",
    rate=4,
    duration=42,
    quiesce_timeout=60,
    allowances=[*mailroom_task_lost("kill mailroom-1", max=4)],
)
def test_kill_mailroom(experiment):
    experiment.run()
