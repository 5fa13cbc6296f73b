"""Kill one courier while it is sending: replies in flight to a slow aggregator."""

import pytest

from resilience.verdict.weak_spots import (
    courier_cut_between_insert_and_dedup,
    courier_killed_before_task_push,
    courier_killed_between_push_and_seen_mark,
    courier_popped_batch_lost,
    one_per_key,
)


@pytest.mark.experiment(
    name="kill-courier-sending",
    description="the aggregator answers after 800 ms, so sends are in flight; SIGKILL courier-1 mid-send",
    expectations=(
        "Sends in flight on courier-1 die with it. RapidPro v9 has no in-flight list: a popped message that "
        "was not sent stays Q until a daily cron fails it; one that was sent but whose W status write was "
        "still in the 500 ms batch keeps status Q/W mismatch (the phone got it). Expect lost replies as a "
        "known finding; inbound is stored, once unless the kill cut a request between insert and de-dup mark."
    ),
    schedule="at 8 kill courier-1; recover at 20",
    aggregator={"latency_ms": 800},
    rate=4,
    duration=42,
    allowances=[
        # One request cut on a killed courier is stored twice either way; only the moment of the cut
        # decides whether the first row stays P or is handled too, so the two share one maximum.
        *one_per_key(
            courier_cut_between_insert_and_dedup("kill courier-1", max=2),
            courier_killed_between_push_and_seen_mark("kill courier-1", max=2),
        ),
        *courier_killed_before_task_push("kill courier-1", max=2),
        *courier_popped_batch_lost("kill courier-1", max=6),
    ],
)
def test_kill_courier_sending(experiment):
    experiment.run()
