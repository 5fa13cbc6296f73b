"""RapidPro v9's documented weak spots, as allowances to bound to a fault.

Each function returns the Allowance(s) for one behaviour of shared/rapidpro-contracts.md, with the
contracts line that documents it; the experiment says which fault causes it and how much of it that
fault may cause (`max`), e.g. `*courier_cut_between_insert_and_dedup("kill courier-1", max=2)`.
"""

from __future__ import annotations

from dataclasses import replace

from resilience.verdict.allowances import Allowance

CONTACT_LOCK_S = 300.0
# Why a cut request can be stored twice: courier writes its de-dup mark last.
SEEN_MARK_LAST = (
    "Inbound: order of work on receive (de-dup, get-or-create, insert, MULTI); courier@v9.2.1 "
    "backends/rapidpro/msg.go writeMsg marks seen-msgs only after writeMsgToDB has queued the task"
)  # mailroom's contact lock expires after 5 minutes (contracts: Mailroom)


def courier_cut_between_insert_and_dedup(fault: str, max: int) -> tuple[Allowance, ...]:
    """A request cut after courier's insert and before its seen-msgs mark, retried by HAProxy on the other
    courier, is stored twice; the first row stays P."""
    contract = "Inbound: order of work on receive (de-dup, get-or-create, insert, MULTI); no unique constraint on uuid"
    why = ("courier killed after its insert and before its seen-msgs mark: HAProxy's retry reached the other "
           "courier, whose de-dup had nothing to match, and it wrote a second row; the first stays P")  # fmt: skip
    return (
        Allowance("inbound.duplicated", fault, max, why, contract),
        Allowance("inbound.unhandled", fault, max, why, contract),
    )


def courier_killed_between_push_and_seen_mark(fault: str, max: int) -> tuple[Allowance, ...]:
    """Courier killed after its insert and its handler-task push but before its seen-msgs mark: the request,
    retried by HAProxy on the other courier (or re-sent by the aggregator after a 502), finds no mark, is
    stored again and handled again, so the contact's step is answered twice."""
    contract = SEEN_MARK_LAST
    why = ("courier killed after queueing the MO's task and before its seen-msgs mark: the request retried on the "
           "other courier was stored and handled a second time")  # fmt: skip
    return stored_and_handled_twice(fault, max, why, contract)


def courier_request_hung_before_seen_mark(fault: str, max: int) -> tuple[Allowance, ...]:
    """A request caught by a Redis black hole after courier's insert, hung in its task push (v9.2's Redis
    calls have no read timeout) before the seen-msgs mark: HAProxy's retry on the response timeout (or the
    aggregator's own, after its timeout) reached the other courier, whose de-dup found no mark once Redis
    answered again, so the MO was stored and handled twice; its client never got an answer."""
    contract = f"v9.2 specifics: Redis without a read timeout; {SEEN_MARK_LAST}"
    why = ("a request hung in courier's task push by the Redis black hole, before its seen-msgs mark, was retried "
           "on the other courier, which stored it again once Redis answered")  # fmt: skip
    return stored_and_handled_twice(fault, max, why, contract)


def courier_killed_before_task_push(fault: str, max: int) -> tuple[Allowance, ...]:
    """Courier killed (or its Redis push failing) between its insert and the handler-task push: the MO
    stays P, and its replies never come."""
    contract = "Inbound: a failed Redis push is only logged; the message stays P. The mailroom task is not guaranteed"
    why = "the MO was stored but its handler task never reached mailroom's queue: it stays P, unanswered"
    return (
        Allowance("inbound.unhandled", fault, max, why, contract),
        *unanswered_conversation(fault, max, why, contract),
    )


def courier_popped_batch_lost(fault: str, max: int) -> tuple[Allowance, ...]:
    """Courier killed after popping a batch and before sending it: the messages stay Q for 7 days."""
    contract = "Outbound: courier killed after the pop and before the send -> the message stays Q (known losses)"
    why = "a reply popped by the killed courier and never sent stays Q until the daily cron fails it"
    return unanswered_conversation(fault, max, why, contract)


def mailroom_task_lost(fault: str, max: int) -> tuple[Allowance, ...]:
    """A handler task popped by a mailroom that dies (or lost with a Redis master) is gone: the MO stays P
    until retry_msgs (5 min), the contact is locked up to 5 min."""
    contract = "Mailroom: crash mid-task -> the task is lost, the contact locked up to 5 min, the inbound stays P"
    why = "a popped handler task died with its worker; retry_msgs recovers it after 5 minutes, later than this run"
    allowances = (
        Allowance("inbound.unhandled", fault, max, why, contract),
        *unanswered_conversation(fault, max, why, contract),
        Allowance("continuity.stuck_runs", fault, max, why, contract),
        Allowance("continuity.stuck_sessions", fault, max, why, contract),
    )
    # The dead worker's contact lock holds that contact's re-sent MOs too, however late, for up to 5 minutes.
    return tuple(replace(a, follows_contact_s=CONTACT_LOCK_S) for a in allowances)


def mailroom_event_dropped_in_outage(fault: str, max: int, max_load_s: float | None = None) -> tuple[Allowance, ...]:
    """With the database unreachable, mailroom's handler requeues a failed event and retries it at once, so
    its 3 tries burn within the outage and the event is dropped: the MO stays P until retry_msgs (5 min).
    Every event that arrives while mailroom's dials hang is dropped, so the count grows with the load:
    `max_load_s` bounds it by seconds of the run's MO rate (each key by the same multiple of `max`)."""
    contract = "Mailroom: a failed event goes back to the front of c:<org>:<contact> and is dropped after 3 tries"
    why = "the handler's 3 tries of the MO's event failed within the database outage; retry_msgs takes it in 5 min"
    allowances = (
        Allowance("inbound.unhandled", fault, max, why, contract),
        *unanswered_conversation(fault, max, why, contract),
        Allowance("continuity.stuck_runs", fault, max, why, contract),
        Allowance("continuity.stuck_sessions", fault, max, why, contract),
    )
    if max_load_s is None:
        return allowances
    return tuple(replace(a, max_load_s=max_load_s * a.max / max) for a in allowances)


def unanswered_conversation(fault: str, max: int, why: str, contract: str) -> tuple[Allowance, ...]:
    """What a lost reply does to its conversation: the contact never sees the rest (a reply lost mid-way
    shows as skipped once the contact's resend moves the flow on, and as a completed run whose replies the
    contact never saw when the resends carry the flow to its end). The resends themselves are steps sent
    twice, so their contact's later replies are undecided (one ahead or behind): bounded by the same
    conversations, at most one script's worth (4 replies) per lost reply."""
    resent = "the contact re-sent the unanswered step, so the flow may be a reply ahead: " + why
    return (
        Allowance("outbound.lost", fault, max, why, contract),
        Allowance("continuity.incomplete", fault, 4 * max, why, contract),
        Allowance("continuity.skipped", fault, 4 * max, why, contract),
        Allowance("continuity.completed_run_replies_missing", fault, max, why, contract),
        Allowance("continuity.indeterminate", fault, max, resent, contract),
        Allowance("outbound.lost_indeterminate", fault, 4 * max, resent, contract),
        Allowance("outbound.unexpected_indeterminate", fault, 4 * max, resent, contract),
        Allowance("outbound.duplicate_replies_indeterminate", fault, 4 * max, resent, contract),
    )


def redis_failover_losses(fault: str, max: int) -> tuple[Allowance, ...]:
    """Queue entries and sent-guard entries written to the old master and not replicated are lost."""
    contract = "Outbound: known duplicates: Redis failover losing the sent sets; Mailroom: no acknowledgement"
    why = "Redis replication is asynchronous: queue and sent-set entries on the old master are gone"
    return one_per_key(
        (Allowance("outbound.duplicate_delivery", fault, max, why, contract),),
        mailroom_task_lost(fault, max),
        courier_popped_batch_lost(fault, max),
    )


def one_per_key(*mechanisms: tuple[Allowance, ...]) -> tuple[Allowance, ...]:
    """Several mechanisms of one fault that share a finding kind share its maximum: two allowances for one
    key would each count up to their own maximum and double the bound. The reasons are kept, joined."""
    merged: dict[str, Allowance] = {}
    for allowance in (a for mechanism in mechanisms for a in mechanism):
        kept = merged.get(allowance.key)
        if kept is None:
            merged[allowance.key] = allowance
            continue
        why = kept.why if allowance.why in kept.why else f"{kept.why}; or {allowance.why}"
        loads = [a.max_load_s for a in (kept, allowance) if a.max_load_s]
        merged[allowance.key] = replace(kept, max=max(kept.max, allowance.max), why=why,
                                        max_load_s=max(loads) if loads else None)  # fmt: skip
    return tuple(merged.values())


def async_replication_loss(fault: str, max: int) -> tuple[Allowance, ...]:
    """A commit acknowledged by the old primary and not yet streamed to the standby is lost at failover."""
    contract = "field notes, PostgreSQL 15: asynchronous streaming replication; contracts: a 200 means committed"
    why = "async replication: a commit the old primary acknowledged but had not streamed is lost at failover"
    return (
        # Only what the old primary acknowledged before it stopped acknowledging: the window closes when the
        # inject took hold, not when the fault is recovered, and it judges the acknowledgement, not the
        # invocation (an MO sent just before the kill and acknowledged after it was spooled or went to the
        # new primary: losing it is not replication's doing). RPO is judged by its last lost acknowledgement.
        Allowance("inbound.lost", fault, max, why, contract, before=2.0, after=0.0, closes_at="injection",
                  judged_at="acknowledgement"),
        Allowance("availability.rpo", fault, max, why, contract, before=2.0, after=0.0, closes_at="injection",
                  judged_at="acknowledgement"),
        *unanswered_conversation(fault, max, why, contract),
    )


def database_outage_logs(fault: str, max: int) -> tuple[Allowance, ...]:
    """What the services log while the database (or Redis) is failing over."""
    contract = "Celery: crons fail while the broker/DB is unreachable and run again; PostgreSQL logs FATAL per cut"
    return (
        Allowance("logs.traceback", fault, max, "a Celery task or cron running during the outage fails with a "
                  "connection error and logs its traceback; its next run succeeds", contract),
        Allowance("logs.fatal", fault, max, "PostgreSQL logs FATAL for client connections the failover cuts",
                  contract),
        Allowance("logs.duplicate_key", fault, max, "a contact-URN get-or-create retried after its first "
                  "transaction failed mid-failover hits the unique (identity, org) constraint and is handled",
                  contract),
    )  # fmt: skip


def sync_commit_replayed_from_spool(fault: str, max: int) -> tuple[Allowance, ...]:
    """A synchronous commit cancelled by the failover is committed locally; courier saw an error, spooled
    the message and replays it: a duplicate row (no unique constraint on msgs_msg.uuid)."""
    contract = "Inbound: Spool (no unique constraint on msgs_msg.uuid); field notes: synchronous commits hang"
    why = "a cancelled synchronous commit was already committed locally; courier spooled and replayed it"
    return stored_and_handled_twice(fault, max, why, contract)


def stored_and_handled_twice(fault: str, max: int, why: str, contract: str) -> tuple[Allowance, ...]:
    """What an MO stored twice does when both rows reach mailroom: its flow steps twice, so the contact gets
    the step's reply twice, and a last step completes a second run."""
    handled_twice = "both rows of the MO were handled, so its flow stepped twice: " + why
    return (
        Allowance("inbound.duplicated", fault, max, why, contract),
        Allowance("outbound.duplicate_replies", fault, max, handled_twice, contract),
        Allowance("continuity.repeated", fault, max, handled_twice, contract),
        Allowance("continuity.extra_completed_runs", fault, max, handled_twice, contract),
    )


def mailroom_post_commit_requeued(fault: str, max: int) -> tuple[Allowance, ...]:
    """Mailroom committed the sprint, then the post-commit transaction that queues its replies failed (the
    database went away between the two): the event is requeued and the MO handled again from the new state,
    while the first handling's replies stay Q. The contact gets the next step's reply twice or an
    unexpected one, and the first replies never leave (docs/fidelity.md row 11)."""
    contract = (
        "Mailroom: after the sprint's transaction commits, the push runs in a new database transaction; if it "
        "fails, the msg_event is requeued (the MO is handled again) and the replies stay Q"
    )
    why = "the post-commit transaction failed in the database outage: the MO was handled again, its replies stayed Q"
    return (
        Allowance("outbound.duplicate_replies", fault, max, why, contract),
        Allowance("outbound.unexpected", fault, max, why, contract),
        Allowance("outbound.lost", fault, max, why, contract),
        Allowance("continuity.repeated", fault, max, why, contract),
        Allowance("continuity.completed_run_replies_missing", fault, max, why, contract),
    )


def handled_after_the_contact_resent(fault: str, max: int) -> tuple[Allowance, ...]:
    """A stall (v9.2's Redis clients without a read timeout) held an acknowledged MO's handler task until the
    operator's restart; by then its contact had waited out its reply timeout and sent the step again, and
    both were handled: the step is answered twice, the second answer out of order."""
    contract = "v9.2 specifics: Redis without a read timeout; once a call blocks, handling stops until a restart"
    why = "the MO's task waited out the stall until a restart; its contact had re-sent the step, and both were handled"
    return (
        Allowance("continuity.repeated", fault, max, why, contract),
        Allowance("continuity.reordered", fault, max, why, contract),
        Allowance("outbound.duplicate_replies", fault, max, why, contract),
        Allowance("outbound.unexpected", fault, max, why, contract),
    )


def outcome_unknown_during_outage(fault: str, max: int) -> tuple[Allowance, ...]:
    """Requests that timed out (or were retried by a resending contact) while the fault lasted: the client
    cannot know whether RapidPro took them, so the flow may be a reply ahead or behind for that contact.
    The checkers bound this to the replies those exchanges were owed; this bounds how many contacts."""
    contract = "Inbound: a 200 means committed or spooled; a timeout or a reset leaves the outcome unknown"
    why = ("an MO whose request timed out during the outage (outcome unknown) or was sent again: the flow may "
           "have taken it, so its contact's replies may be one off")  # fmt: skip
    return tuple(
        Allowance(key, fault, max, why, contract)
        for key in (
            "continuity.indeterminate",
            "outbound.lost_indeterminate",
            "outbound.duplicate_replies_indeterminate",
            "outbound.unexpected_indeterminate",
        )
    )


def mailroom_push_failed(fault: str, max: int) -> tuple[Allowance, ...]:
    """Mailroom committed the sprint (run completed, replies Q) but the push to courier's queue failed
    (Redis unreachable): the replies become I with next_attempt +10 min, later than the run drains."""
    contract = "Mailroom: AFTER commit, push the outgoing messages; if that push fails they become I (+10 min)"
    why = "the sprint committed but its replies could not be pushed to courier's queue: I, retried in 10 minutes"
    return (
        Allowance("outbound.lost", fault, max, why, contract),
        Allowance("continuity.completed_run_replies_missing", fault, max, why, contract),
        Allowance("continuity.incomplete", fault, 4 * max, why, contract),
    )


def search_outage_logs(fault: str, max: int) -> tuple[Allowance, ...]:
    """Celery's check_elasticsearch_lag cron, run while the search node is down, fails and logs it."""
    contract = "Web API v2, Celery: check_elasticsearch_lag every 300 s; Search: the indexer retries until back"
    why = "the check_elasticsearch_lag cron ran while the search node was down: a connection error, logged"
    return (Allowance("logs.traceback", fault, max, why, contract, nodes=("celery-1", "celery-2")),)
