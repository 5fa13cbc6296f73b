"""Kill one courier while it is sending: replies in flight to a slow aggregator."""

import pytest


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
    duration=30,
    known={
        "inbound.unhandled": (
            "courier killed between its insert and the handler-task push: the MO stays P "
            "(contracts, Inbound: 'the mailroom task is not guaranteed')"
        ),
        "inbound.duplicated": (
            "courier killed after its insert and before its seen-msgs mark: HAProxy's retry of the cut request "
            "reached the other courier, whose de-dup had nothing to match, and it wrote a second row; the first "
            "stays P (contracts, Inbound: de-dup order, and no unique constraint on msgs_msg.uuid)"
        ),
        "inbound.duplicate_rows": "the same retried request, counted per row",
        "outbound.lost": "courier killed after the pop and before the send: the message stays Q (contracts, Outbound)",
        "continuity.missing_replies": "a reply lost with the killed courier's in-flight sends",
    },
)
def test_kill_courier_sending(experiment):
    experiment.run()
