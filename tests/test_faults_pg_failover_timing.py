"""When a failover took hold (resilience/faults/pg_failover.py): the old primary's death where the backend
records it, not the return of the API call that killed it. The verdict's window for async replication loss
closes there, so an MO courier spooled after the death is not taken for a commit replication lost."""

from __future__ import annotations

import time
from typing import Any, cast

from resilience.faults.pg_failover import stopped_acknowledging_after


class Exited:
    def __init__(self, seconds_ago: float | None) -> None:
        self.seconds_ago = seconds_ago

    def exited_at(self, node: str) -> float | None:
        return None if self.seconds_ago is None else time.time() - self.seconds_ago


def test_the_recorded_death_closes_the_window_not_the_kill_s_return() -> None:
    started = time.monotonic() - 0.4  # the inject began 0.4 s ago; the container died 0.25 s ago
    took_hold = stopped_acknowledging_after(cast(Any, Exited(0.25)), "postgres-1", started)
    assert 0.13 <= took_hold <= 0.17


def test_without_a_recorded_death_the_return_bounds_it() -> None:
    started = time.monotonic() - 0.4
    assert 0.4 <= stopped_acknowledging_after(cast(Any, Exited(None)), "postgres-1", started) < 0.5


def test_a_death_outside_the_inject_is_clamped_into_it() -> None:
    # Another clock (a remote engine) or an earlier life of the container: never before the inject began,
    # never after the kill returned.
    started = time.monotonic() - 0.4
    assert stopped_acknowledging_after(cast(Any, Exited(30.0)), "postgres-1", started) == 0.0
    assert 0.4 <= stopped_acknowledging_after(cast(Any, Exited(-30.0)), "postgres-1", started) < 0.5
