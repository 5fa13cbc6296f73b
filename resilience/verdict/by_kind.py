"""Each fault kind's documented weak spots, for schedules no one wrote by hand (exploration, generated runs).

A hand-written experiment names the weak spots its one fault causes. A generated schedule can draw any
kind, so its policy needs each drawn kind's: the mechanisms below are those the catalogue's own
experiments for that kind document (experiments/test_*.py), with their maxima, still bound to the fault
(by kind, so to each fault of that kind) and its window. A kind with none is judged strictly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from resilience.verdict.allowances import Allowance
from resilience.verdict.weak_spots import (
    async_replication_loss,
    courier_cut_between_insert_and_dedup,
    courier_killed_before_task_push,
    courier_killed_between_push_and_seen_mark,
    courier_popped_batch_lost,
    database_outage_logs,
    mailroom_event_dropped_in_outage,
    mailroom_post_commit_requeued,
    mailroom_push_failed,
    mailroom_task_lost,
    one_per_key,
    outcome_unknown_during_outage,
    redis_failover_losses,
)


def _node_lost(kind: str) -> tuple[Allowance, ...]:
    """A courier or mailroom process gone mid-work (kill-courier, kill-mailroom, rolling-restart)."""
    return one_per_key(
        outcome_unknown_during_outage(kind, max=10),
        courier_cut_between_insert_and_dedup(kind, max=2),
        courier_killed_between_push_and_seen_mark(kind, max=2),
        courier_killed_before_task_push(kind, max=2),
        courier_popped_batch_lost(kind, max=4),
        mailroom_task_lost(kind, max=4),
        database_outage_logs(kind, max=20),
    )


def _unreachable(kind: str) -> tuple[Allowance, ...]:
    """A node frozen or cut off: requests to it time out undecided (lb-cut, pause, the network faults)."""
    return outcome_unknown_during_outage(kind, max=10)


WEAK_SPOTS_BY_KIND: dict[str, Callable[[str], tuple[Allowance, ...]]] = {
    "kill": _node_lost,
    "crash": _node_lost,
    "stop": _node_lost,
    "restart": _node_lost,
    "rolling-restart": _node_lost,
    "pause": _unreachable,
    "lb-cut": _unreachable,
    "toxic": _unreachable,
    "partition": _unreachable,
    "isolate": _unreachable,
    "loss": _unreachable,
    "pg-failover": lambda kind: one_per_key(
        outcome_unknown_during_outage(kind, max=30),
        async_replication_loss(kind, max=3),
        database_outage_logs(kind, max=60),
        mailroom_post_commit_requeued(kind, max=2),
        mailroom_event_dropped_in_outage(kind, max=4, max_load_s=2.5),
    ),
    "redis-failover": lambda kind: one_per_key(
        mailroom_push_failed(kind, max=6),
        outcome_unknown_during_outage(kind, max=20),
        redis_failover_losses(kind, max=6),
        database_outage_logs(kind, max=40),
    ),
}


def allowances_for(kinds: Iterable[str]) -> tuple[Allowance, ...]:
    """The documented weak spots of each kind, in the order given (kinds without any add nothing)."""
    found: list[Allowance] = []
    for kind in dict.fromkeys(kinds):
        if kind in WEAK_SPOTS_BY_KIND:
            found.extend(WEAK_SPOTS_BY_KIND[kind](kind))
    return tuple(found)
