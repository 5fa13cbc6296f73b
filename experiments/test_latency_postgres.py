"""Latency on every RapidPro service's Postgres connections."""

import pytest


@pytest.mark.experiment(
    name="latency-postgres",
    description="200 ms latency on the proxy's postgres route for 12 s (no netem here: the Toxiproxy API)",
    expectations="Slower, not wrong: every verdict valid; the latency checker shows MO→reply growing during the fault.",
    schedule="at 8 toxic postgres latency latency=200; recover at 20",
    rate=4,
    duration=42,
)
def test_latency_postgres(experiment):
    experiment.run()
