"""Latency: from an MO's invocation to the arrival of its first owed reply at the phone network, as
percentiles before, during and after faults (and per fault)."""

from __future__ import annotations

import bisect
import statistics
from collections import defaultdict
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
    latencies = first_reply_latencies(analysis, header.wall_anchor_ns - header.mono_anchor_ns)
    faults = view.applied_faults
    history_end = history.end_time
    windows = _union(faults, history_end)
    starts = [start for start, _ in windows]
    by_phase: dict[str, list[float]] = {phase: [] for phase in PHASES}
    by_fault: dict[str, list[float]] = {fault.id: [] for fault in faults}
    unanswered = 0
    for mo, latency in latencies:
        if latency is None:
            unanswered += 1
            continue
        when = mo.invoke_time
        position = bisect.bisect_right(starts, when) - 1
        if position < 0:
            by_phase["before"].append(latency)
        elif when < windows[position][1]:
            by_phase["during"].append(latency)
            for fault in faults:
                if fault.start <= when < fault.until(history_end):
                    by_fault[fault.id].append(latency)
        else:
            by_phase["after"].append(latency)
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


def first_reply_latencies(analysis: Analysis, mono_to_wall: int) -> list[tuple[Exchange, float | None]]:
    """Latency (s) of every acknowledged MO that owes a reply; None when no such reply arrived after it.
    `mono_to_wall` is the wall clock's offset from the recorder's monotonic clock."""
    view = analysis.view
    owed, seen, uncertain = analysis.owed_texts, analysis.seen_texts, view.uncertain_urns
    results: list[tuple[Exchange, float | None]] = []
    for urn, exchanges in view.by_urn.items():
        arrivals = analysis.first_deliveries.get(urn, [])
        if urn not in uncertain and seen.get(urn, []) == owed[urn]:
            in_order = _in_script_order(exchanges, arrivals, mono_to_wall)
            if in_order is not None:
                results.extend(in_order)
                continue
        results.extend(_claimed_in_time_order(exchanges, arrivals, mono_to_wall))
    return results


def _in_script_order(
    exchanges: list[Exchange], arrivals: list[Delivery], mono_to_wall: int
) -> list[tuple[Exchange, float | None]] | None:
    """When a contact got exactly its owed replies in order, each MO's first reply is at a known position.
    None if a reply seems to precede its MO (a clock disagreement): then time order decides."""
    results: list[tuple[Exchange, float | None]] = []
    position = 0
    for exchange in exchanges:
        if exchange.outcome != OK:
            continue
        if exchange.kind == MO and exchange.expect:
            latency = arrivals[position].received_wall_ns - (exchange.invoke_time + mono_to_wall)
            if latency < 0:
                return None
            results.append((exchange, latency / NS_PER_S))
        position += len(exchange.expect)
    return results


def _claimed_in_time_order(
    exchanges: list[Exchange], arrivals: list[Delivery], mono_to_wall: int
) -> list[tuple[Exchange, float | None]]:
    """Replies carry no reference to the MO they answer, so each of the URN's reply texts is matched in
    time order: every MO owing that text first claims the earliest unclaimed arrival after its
    invocation. MOs of unknown outcome take part in claiming (their reply may have come) but yield no
    sample."""
    times_of: dict[str, list[int]] = defaultdict(list)
    for delivery in arrivals:
        times_of[delivery.text].append(delivery.received_wall_ns)
    for times in times_of.values():
        times.sort()
    unclaimed_from: dict[str, int] = {}  # per text: arrivals before this position are spent
    results: list[tuple[Exchange, float | None]] = []
    for mo in exchanges:  # by invocation time
        if mo.kind != MO or not mo.expect or mo.outcome == FAIL:
            continue
        text = mo.expect[0]
        times = times_of.get(text, [])
        invoked = mo.invoke_time + mono_to_wall
        position = bisect.bisect_left(times, invoked, lo=unclaimed_from.get(text, 0))
        latency = None
        if position < len(times):
            latency = (times[position] - invoked) / NS_PER_S
            unclaimed_from[text] = position + 1
        if mo.outcome == OK:
            results.append((mo, latency))
    return results
