"""Checkers: a recorded history plus the final-state snapshot in, a verdict with counts and examples out.

Each checker module has `check(history, snapshot, options) -> CheckResult` and an options dataclass;
docs/checkers.md documents every option and every key each one returns.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from resilience.checks import availability, continuity, inbound, latency, logs, outbound
from resilience.checks.analysis import Analysis
from resilience.checks.options import OptionsError, parse_options
from resilience.checks.result import CheckResult, Finding, Validity, merge
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
# checker -> kind of finding -> what it means: what allowances and declared unknowns may name.
KINDS: dict[str, dict[str, str]] = {
    module.NAME: module.KINDS for module in (inbound, outbound, continuity, availability, latency, logs)
}
OPTIONS: dict[str, type] = {
    inbound.NAME: inbound.InboundOptions,
    outbound.NAME: outbound.OutboundOptions,
    continuity.NAME: continuity.ContinuityOptions,
    availability.NAME: availability.AvailabilityOptions,
    latency.NAME: latency.LatencyOptions,
    logs.NAME: logs.LogsOptions,
}


def run_all(
    history: RecordedHistory,
    snapshot: Snapshot,
    options: Mapping[str, Any] | None = None,
    only: Iterable[str] | None = None,
) -> list[CheckResult]:
    """Run the named checkers (all by default). `options` maps a checker name to its options."""
    options = validate_options(options)
    names = list(only) if only is not None else list(CHECKERS)
    unknown = sorted(set(names) - set(CHECKERS))
    if unknown:
        raise OptionsError(f"unknown checker(s) {unknown}; known: {sorted(CHECKERS)}")
    analysis = Analysis(history, snapshot)
    with gc_paused():  # the checkers build large acyclic indexes
        return [_run_one(name, history, snapshot, options.get(name), analysis) for name in names]


def validate_options(options: Any) -> dict[str, Any]:
    """`options` (checker -> its options) parsed, so that a bad option is bad input, found before any checker
    runs; raises OptionsError naming the checker and the option."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise OptionsError(f"checker options must map a checker name to its options, got {type(options).__name__}")
    unknown = sorted(set(options) - set(CHECKERS))
    if unknown:
        raise OptionsError(f"unknown checker(s) {unknown}; known: {sorted(CHECKERS)}")
    return {name: parse_options(OPTIONS[name], raw, name) for name, raw in options.items()}


def _run_one(name: str, history: RecordedHistory, snapshot: Snapshot, options: Any, analysis: Analysis) -> CheckResult:
    """One checker; one that raises is unknown, with its traceback, and never stops the others."""
    try:
        return CHECKERS[name](history, snapshot, options, analysis=analysis)
    except OptionsError:
        raise
    except Exception as exc:  # a checker's bug or an input it cannot read: a finding, not a crash
        trace = traceback.format_exc()
        finding = Finding(name, "checker_error", Validity.UNKNOWN, detail=f"{type(exc).__name__}: {exc}")
        return CheckResult.of_findings(name, [finding], {}, [], {"error": trace})


__all__ = ["CHECKERS", "KINDS", "CheckResult", "Finding", "OptionsError", "Validity", "merge", "run_all"]
