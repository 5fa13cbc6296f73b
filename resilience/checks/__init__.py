"""Checkers: a recorded history plus the final-state snapshot in, a verdict with counts and examples out.

Each checker module has `check(history, snapshot, options) -> CheckResult` and an options dataclass;
docs/checkers.md documents every option and every key each one returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from resilience.checks import availability, continuity, inbound, latency, logs, outbound
from resilience.checks.analysis import Analysis
from resilience.checks.options import OptionsError
from resilience.checks.result import CheckResult, Validity, merge
from resilience.history import RecordedHistory, gc_paused
from resilience.snapshot import Snapshot


class Checker(Protocol):
    def __call__(
        self, history: RecordedHistory, snapshot: Snapshot, options: Any = None, *, analysis: Analysis | None = None
    ) -> CheckResult: ...


CHECKERS: dict[str, Checker] = {
    inbound.NAME: inbound.check,
    outbound.NAME: outbound.check,
    continuity.NAME: continuity.check,
    availability.NAME: availability.check,
    latency.NAME: latency.check,
    logs.NAME: logs.check,
}


def run_all(
    history: RecordedHistory,
    snapshot: Snapshot,
    options: Mapping[str, Any] | None = None,
    only: Iterable[str] | None = None,
) -> list[CheckResult]:
    """Run the named checkers (all by default). `options` maps a checker name to its options."""
    options = options or {}
    names = list(only) if only is not None else list(CHECKERS)
    unknown = sorted((set(options) | set(names)) - set(CHECKERS))
    if unknown:
        raise OptionsError(f"unknown checker(s) {unknown}; known: {sorted(CHECKERS)}")
    analysis = Analysis(history, snapshot)
    with gc_paused():  # the checkers build large acyclic indexes
        return [CHECKERS[name](history, snapshot, options.get(name), analysis=analysis) for name in names]


__all__ = ["CHECKERS", "CheckResult", "OptionsError", "Validity", "merge", "run_all"]
