"""Latency: from an MO's invocation to the arrival of its first owed reply at the phone network, as
percentiles before, during and after faults (and per fault)."""

from __future__ import annotations

import bisect
import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from resilience.checks.analysis import Analysis
from resilience.checks.model import MO, NS_PER_S, Exchange, Fault
from resilience.checks.options import parse_options
from resilience.checks.result import CheckResult, Examples, verdict
from resilience.history import FAIL, OK, RecordedHistory
from resilience.snapshot import Delivery, Snapshot

NAME = "latency"
PHASES = ("before", "during", "after")


@dataclass(frozen=True)
class LatencyOptions:
    max_p95_s: float | None = None
    """A phase whose p95 exceeds this makes the verdict false."""
    max_p99_s: float | None = None
    """A phase whose p99 exceeds this makes the verdict false."""


def percentiles(samples: list[float]) -> dict[str, Any]:
    if not samples:
        return {"count": 0, "p50_s": None, "p95_s": None, "p99_s": None, "max_s": None}
    cuts = statistics.quantiles(samples, n=100, method="inclusive") if len(samples) > 1 else samples * 99
    return {
        "count": len(samples),
        "p50_s": round(cuts[49], 3),
        "p95_s": round(cuts[94], 3),
        "p99_s": round(cuts[98], 3),
        "max_s": round(max(samples), 3),
    }


def check(
    history: RecordedHistory,
    snapshot: Snapshot,
    options: LatencyOptions | dict[str, Any] | None = None,
    *,
    analysis: Analysis | None = None,
) -> CheckResult:
    opts = parse_options(LatencyOptions, options, NAME)
    analysis = Analysis.of(history, snapshot, analysis)
    view = analysis.view
    header = history.header
    latencies = _first_reply_latencies(
        [e for e in view.exchanges if e.kind == MO], analysis.first_deliveries, header.mono_to_wall_ns
    )
    faults = view.applied_faults
    answered = sorted((mo.invoke_time, latency) for mo, latency in latencies if latency is not None)
    invoked = [when for when, _ in answered]
    by_fault: dict[str, list[float]] = {}
    for fault in faults:
        until = fault.until(history.end_time)
        span = answered[bisect.bisect_left(invoked, fault.start) : bisect.bisect_left(invoked, until)]
        by_fault[fault.id] = [latency for _, latency in span]
    windows = _union(faults, history.end_time)
    starts = [start for start, _ in windows]
    by_phase: dict[str, list[float]] = {phase: [] for phase in PHASES}
    for when, latency in answered:
        position = bisect.bisect_right(starts, when) - 1
        if position < 0:
            by_phase["before"].append(latency)
        else:
            by_phase["during" if when < windows[position][1] else "after"].append(latency)
    unanswered = len(latencies) - len(answered)
    examples = Examples()

    phases = {phase: percentiles(samples) for phase, samples in by_phase.items()}
    too_slow = []
    for phase, figures in phases.items():
        for key, bound in (("p95_s", opts.max_p95_s), ("p99_s", opts.max_p99_s)):
            if bound is not None and figures[key] is not None and figures[key] > bound:
                too_slow.append(phase)
                examples.add("too_slow", phase=phase, measure=key, value=figures[key], bound=bound)
    samples = sum(len(s) for s in by_phase.values())
    counts: dict[str, int | float] = {"samples": samples, "unanswered": unanswered}
    counts.update({f"{phase}_count": len(by_phase[phase]) for phase in PHASES})
    return CheckResult(
        name=NAME,
        valid=verdict(false_if=bool(too_slow), unknown_if=samples == 0),
        counts=counts,
        examples=examples.items,
        details={"phases": phases, "faults": {fid: percentiles(s) for fid, s in by_fault.items()}},
    )


def _union(faults: list[Fault], history_end: int) -> list[tuple[int, int]]:
    """The fault windows [start, until) (sorted by start) merged where they overlap."""
    merged: list[tuple[int, int]] = []
    for fault in faults:
        end = fault.until(history_end)
        if merged and fault.start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((fault.start, end))
    return merged


def _first_reply_latencies(
    mos: list[Exchange], deliveries: dict[str, list[Delivery]], to_wall: Callable[[int], int]
) -> list[tuple[Exchange, float | None]]:
    """Latency (s) of every acknowledged MO that owes a reply; None when no such reply arrived after it.

    Replies carry no reference to the MO they answer, so each (urn, first reply text) is matched in time
    order: every MO that owes that text claims the earliest unclaimed arrival after its invocation.
    MOs of unknown outcome take part in claiming (their reply may have come) but yield no sample.
    """
    claimants: defaultdict[tuple[str, str], list[Exchange]] = defaultdict(list)
    for mo in mos:
        if mo.expect and mo.outcome != FAIL:
            claimants[(mo.urn, mo.expect[0])].append(mo)
    arrivals: dict[tuple[str, str], list[int]] = {}
    for urn, urn_deliveries in deliveries.items():
        for delivery in urn_deliveries:
            arrivals.setdefault((urn, delivery.text), []).append(delivery.received_wall_ns)
    results: list[tuple[Exchange, float | None]] = []
    for key, waiting in claimants.items():
        times = sorted(arrivals.get(key, ()))
        position = 0
        for mo in sorted(waiting, key=lambda m: m.invoke_time):
            invoked = to_wall(mo.invoke_time)
            position = bisect.bisect_left(times, invoked, lo=position)
            latency = None
            if position < len(times):
                latency = (times[position] - invoked) / NS_PER_S
                position += 1
            if mo.outcome == OK:
                results.append((mo, latency))
    return results
