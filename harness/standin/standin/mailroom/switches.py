"""Mailroom's switches: real v9 weak spots (default real) and one planted bug (default off)."""

from __future__ import annotations

from standin.common.switches import Switch, SwitchError, Switches, load_switches

SERVICE = "mailroom"

PUSH_FAILURE_STATUSES = ("I", "Q")

DECLARED: list[Switch] = [
    Switch(
        "retry_pending",
        True,
        "the retry_msgs cron re-queues inbound messages left P (off = mailroom v10.1.29+, cron removed)",
        "The `retry_msgs` cron (every 5 min, P older than 5 min, only when the handler queue is empty, "
        "once per message per hour) recovers it in v9; removed in mailroom v10.1.29.",
    ),
    Switch(
        "retry_pending_only_when_queue_empty",
        True,
        "retry_msgs does nothing while any handler queue holds a task (off = retry regardless)",
        "The `retry_msgs` cron (every 5 min, P older than 5 min, only when the handler queue is empty, "
        "once per message per hour) recovers it in v9",
    ),
    Switch(
        "duplicate_reply",
        0.0,
        "PLANTED BUG: probability that a reply gets a second msgs_msg row (same text, own id) that is "
        "queued too; courier's sent guard works on ids, so it cannot catch it",
        "",
    ),
    Switch(
        "push_failure_status",
        "I",
        "status given to outgoing messages whose push to courier's queue failed after commit: 'I' with "
        "next_attempt (real, retried by the minute cron) or 'Q' (left queued: lost until the daily fail)",
        "AFTER commit: push the outgoing messages to courier's queue; if that push fails they become `I` "
        "with `next_attempt` +10 min.",
    ),
    Switch(
        "contact_lock",
        True,
        "handle_contact_event takes lock:c:<org>:<contact> before popping the contact's events "
        "(off = two workers may handle one contact's events concurrently)",
        "Incoming message: lock `lock:c:<org>:<contact>` (wait 10 s, expires 5 min; requeue if not got)",
    ),
    Switch(
        "es_nil_client_at_start",
        True,
        "Elasticsearch unreachable at start leaves no client until restart (off = reconnect on demand)",
        "Mailroom with ES down at start keeps a nil client: searches, smart groups and group starts fail "
        "until mailroom restarts.",
    ),
]


def load_mailroom_switches(raw: str | None = None, seed: int | None = None) -> Switches:
    switches = load_switches(SERVICE, DECLARED, raw=raw, seed=seed)
    status = switches["push_failure_status"]
    if status not in PUSH_FAILURE_STATUSES:
        raise SwitchError(
            f"STANDIN_SWITCHES: switch mailroom.push_failure_status expects one of "
            f"{', '.join(PUSH_FAILURE_STATUSES)}, got {status!r}"
        )
    probability = float(switches["duplicate_reply"])
    if not 0.0 <= probability <= 1.0:
        raise SwitchError(
            f"STANDIN_SWITCHES: switch mailroom.duplicate_reply expects a probability in [0, 1], got {probability}"
        )
    return switches
