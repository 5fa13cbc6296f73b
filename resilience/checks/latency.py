"""Latency: from an MO's invocation to the arrival of its first owed reply at the phone network, as
percentiles before, during and after faults (and per fault)."""

from __future__ import annotations

import bisect
import statistics
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from resilience.checks.analysis import Analysis
from resilience.checks.model import MO, NS_PER_S, Exchange, FaultWindow
from resilience.checks.options import OptionsError, parse_options
from resilience.checks.result import CheckResult, Examples, Finding, Validity
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
    fault_bounds: dict[str, dict[str, float]] | None = None
    """Per fault kind, bounds relative to the run's p95 before any fault: the p95 of MOs invoked during a
    fault of that kind may be at most `p95_during_factor` x before + `slack_s` + `fault_duration_factor` x the
    fault's length (work held back until the fault heals), and the p95 after the
    last fault at most `p95_after_factor` x before + `slack_s`. Filled by the experiment from
    resilience/verdict/bounds.py; judged only when the baseline has `min_baseline` samples."""
    min_baseline: int = 10
    """Samples the `before` phase needs for the relative bounds to be judged."""


KINDS: dict[str, str] = {
    "too_slow": "a phase's p95 or p99 exceeded max_p95_s / max_p99_s",
    "slow_during": "MO->reply p95 during a fault exceeded its bound relative to the p95 before any fault",
    "slow_after": "MO->reply p95 after the last fault exceeded its bound relative to the p95 before any fault",
    "no_data": "no MO got its reply (unknown)",
}
BOUND_NAMES = ("p95_during_factor", "p95_after_factor", "slack_s", "fault_duration_factor")


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
    findings: list[Finding] = []

    phases = {phase: percentiles(samples) for phase, samples in by_phase.items()}
    for phase, figures in phases.items():
        for key, bound in (("p95_s", opts.max_p95_s), ("p99_s", opts.max_p99_s)):
            if bound is not None and figures[key] is not None and figures[key] > bound:
                examples.add("too_slow", phase=phase, measure=key, value=figures[key], bound=bound)
                findings.append(
                    Finding(NAME, "too_slow", Validity.FALSE, detail=f"{phase} {key} {figures[key]} > {bound}")
                )
    per_fault = {fid: percentiles(samples) for fid, samples in by_fault.items()}
    baseline = phases["before"]
    judged: dict[str, Any] = {}
    if faults and opts.fault_bounds and baseline["count"] >= opts.min_baseline:
        judged = _relative_bounds(faults, per_fault, phases, opts, view.seconds, history_end, findings, examples)
    samples = sum(len(s) for s in by_phase.values())
    if samples == 0:
        findings.append(Finding(NAME, "no_data", Validity.UNKNOWN, detail="no MO got its reply"))
    counts: dict[str, int | float] = {"samples": samples, "unanswered": unanswered}
    counts.update({f"{phase}_count": len(by_phase[phase]) for phase in PHASES})
    return CheckResult.of_findings(
        NAME, findings, counts, examples.items, {"phases": phases, "faults": per_fault, "bounds": judged}
    )


def _relative_bounds(
    faults: list[FaultWindow],
    per_fault: dict[str, dict[str, Any]],
    phases: dict[str, dict[str, Any]],
    opts: LatencyOptions,
    seconds: Any,
    history_end: int,
    findings: list[Finding],
    examples: Examples,
) -> dict[str, Any]:
    """Judge each fault's p95 (and the after phase's) against its kind's bound; returns what was judged."""
    before = phases["before"]["p95_s"]
    judged: dict[str, Any] = {}
    after_limit: float | None = None
    for fault in faults:
        bounds = (opts.fault_bounds or {}).get(fault.kind, {})
        unknown = sorted(set(bounds) - set(BOUND_NAMES))
        if unknown:
            raise OptionsError(
                f"{NAME}.fault_bounds[{fault.kind!r}]: unknown bound(s) {unknown}; known: {list(BOUND_NAMES)}"
            )
        slack = bounds.get("slack_s", 0.0)
        if "p95_after_factor" in bounds:
            limit = round(before * bounds["p95_after_factor"] + slack, 3)
            after_limit = limit if after_limit is None else max(after_limit, limit)
        if "p95_during_factor" not in bounds:
            continue
        # A fault that holds work back until it is healed (a partition, a paused node, a failover) delays the
        # reply to an MO sent during it by up to its length: so much of its duration is added to the bound.
        held = bounds.get("fault_duration_factor", 0.0) * (fault.until(history_end) - fault.start) / NS_PER_S
        limit = round(before * bounds["p95_during_factor"] + slack + held, 3)
        during = per_fault[fault.id]["p95_s"]
        judged[fault.id] = {"p95_s": during, "bound_s": limit}
        if during is not None and during > limit:
            detail = f"{fault.kind} {' '.join(map(str, fault.targets))}: p95 {during} s during > bound {limit} s"
            findings.append(Finding(NAME, "slow_during", Validity.FALSE, round(seconds(fault.start), 3),
                                    fault=fault.id, detail=detail + f" (before: {before} s)"))  # fmt: skip
            examples.add("slow_during", fault=fault.id, p95_s=during, bound_s=limit, before_p95_s=before)
    after = phases["after"]["p95_s"]
    if after_limit is not None:
        judged["after"] = {"p95_s": after, "bound_s": after_limit}
        if after is not None and after > after_limit:
            last = max(f.until(history_end) for f in faults)
            detail = f"p95 {after} s after the faults > bound {after_limit} s (before: {before} s)"
            findings.append(Finding(NAME, "slow_after", Validity.FALSE, round(seconds(last), 3), detail=detail))
            examples.add("slow_after", p95_s=after, bound_s=after_limit, before_p95_s=before)
    return judged


def _union(faults: list[FaultWindow], history_end: int) -> list[tuple[int, int]]:
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
