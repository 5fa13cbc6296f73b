"""The load balancer cut from one courier: traffic moves to the other."""

import pytest


@pytest.mark.experiment(
    name="lb-cut-courier",
    description="HAProxy puts courier-1 in maintenance for 12 s",
    expectations="courier-2 takes every request; the cut courier still sends replies (it pops from Redis). All valid.",
    schedule="at 8 lb-cut courier courier-1; recover at 20",
    rate=4,
    duration=42,
)
def test_lb_cut_courier(experiment):
    experiment.run()
