"""Mailroom's switches: real v9.2.2 weak spots (default real), older behaviours, one planted bug and a test aid."""

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
        "contact_lock_poll_s",
        1.0,
        "seconds between two tries of a held contact lock: 1.0 as redisx v0.8.1 Locker.Grab in mailroom v9.2.2 "
        "(0.1 = the stand-in before issue 9, no real version)",
        "The contact lock is polled every 1 s (wait 10 s, expires 5 min)",
    ),
    Switch(
        "redis_socket_timeout_s",
        0.0,
        "read timeout of mailroom's Redis commands: 0 = none, as mailroom v9.2.2 (redisx NewPool, redigo Dial "
        "without timeouts: a black-holed command blocks until the connection closes); 15 = the stand-in before "
        "issue 9 (no real version), with a 30 s health check",
        "Redis clients have no read timeout: ... mailroom's foremen ... once one blocks, sending or handling "
        "stops until a restart (or the server side closes the connection).",
    ),
    Switch(
        "exit_without_redis",
        True,
        "Redis unreachable at start: log 'redis not reachable' and exit 2, as mailroom v9.2.2 panics at the "
        "first RP.Get (off = the stand-in before issue 9: start anyway and retry)",
        "Redis unreachable at start: `NewPool` gives a nil pool and the first `Get` panics; courier and mailroom "
        "exit (`mailroom.go` start-up).",
    ),
    Switch(
        "assets_before_lock",
        True,
        "every task loads its org's assets first (cached 5 s), before the contact lock and the LPOP, as "
        "mailroom v9.1.27+ (tasks.Perform): with the DB down the event stays in c:<org>:<contact> "
        "(off = mailroom <= v9.1.26 order: lock and LPOP first, then the stand-in's per-event fingerprint check)",
        "Mailroom (since v9.1.27 ...): org assets are loaded *before* the contact lock and the LPOP, cached 5 s.",
    ),
    Switch(
        "post_commit_tx",
        True,
        "the push to courier after a sprint's commit runs in a new DB transaction that reads the URNs, as "
        "mailroom v9.2.2 (runner.go): if it fails the event is requeued and the replies stay Q "
        "(off = the stand-in before issue 9, no real version: push with no DB access)",
        "After the sprint's transaction commits, the push to courier runs in a *new* database transaction "
        "(`runner.go`). If that transaction fails, the error requeues the `msg_event`",
    ),
    Switch(
        "post_commit_failures",
        0,
        "Test aid: the first N post-commit transactions fail at their begin, as a database cut between a "
        "sprint's commit and its push would (real v9.2 has that window, milliseconds long)",
        "If that transaction fails, the error requeues the `msg_event` (the MO is handled again) and the "
        "replies stay `Q`",
    ),
    Switch(
        "db_pool_backoff",
        False,
        "false = database/sql as mailroom v9.2.2 (lib/pq): a query takes an idle connection or dials one at "
        "once, 36 open, 8 idle, 30 min lifetime, no background reconnect; true = the stand-in before issue 9 "
        "(no real version): psycopg_pool, min 1, waits up to 15 s for its backed-off background reconnect",
        "A failed event goes back to the front of `c:<org>:<contact>` and is dropped after 3 tries.",
    ),
    Switch(
        "health_pings_deps",
        False,
        "GET /mr/ answers component and version without touching the DB or Redis, as mailroom v9.2.2 "
        "handleIndex (true = the stand-in before issue 9: pings both, 2 s each, and reports them)",
        "",
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
    for name, minimum in (("contact_lock_poll_s", 0.001), ("redis_socket_timeout_s", 0.0)):
        if float(switches[name]) < minimum:
            raise SwitchError(f"STANDIN_SWITCHES: switch mailroom.{name} expects a number >= {minimum}")
    if int(switches["post_commit_failures"]) < 0:
        raise SwitchError("STANDIN_SWITCHES: switch mailroom.post_commit_failures expects a count >= 0")
    return switches
