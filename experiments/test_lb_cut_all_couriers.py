"""The load balancer cut from every courier for a few seconds."""

import pytest


@pytest.mark.experiment(
    name="lb-cut-all-couriers",
    description="HAProxy puts every courier in maintenance for 4 s",
    expectations=(
        "MOs in those seconds get 503 from HAProxy: definitely not accepted (fail), so nothing acknowledged "
        "is lost and contacts re-send. The availability checker shows the unavailable window; every "
        "correctness verdict valid."
    ),
    schedule="at 8 lb-cut courier; recover at 12",
    rate=4,
    duration=42,
)
def test_lb_cut_all_couriers(experiment):
    experiment.run()
