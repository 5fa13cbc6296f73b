"""Kill one web (Django) instance while API flow starts and conversations run."""

import pytest


@pytest.mark.experiment(
    name="kill-web",
    description="SIGKILL web-1 while a third of the conversations are started through the API",
    expectations=(
        "The API is behind HAProxy with retry-on all-retryable-errors: starts go to web-2. Web is not on "
        "the MO path, so inbound and outbound are unaffected; every verdict valid."
    ),
    schedule="at 8 kill web-1; recover at 20",
    api_start_ratio=0.3,
    rate=4,
    duration=50,
)
def test_kill_web(experiment):
    experiment.run()
