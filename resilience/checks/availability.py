"""Availability and recovery: success ratio per second, and per fault the time to the first success,
the time to recover, the longest stretch without a success, and (for failovers) the recovery point:
acknowledged MOs lost across the failover."""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass
from itertools import accumulate, pairwise
from typing import Any

from resilience.checks.analysis import Analysis
from resilience.checks.matching import InboundMatching
from resilience.checks.model import NS_PER_S, Exchange, Fault, HistoryView
from resilience.checks.options import parse_options
from resilience.checks.result import CheckResult, Examples, verdict
from resilience.history import FAIL, INFO, OK, RecordedHistory
from resilience.snapshot import Snapshot

NAME = "availability"


@dataclass(frozen=True)
class AvailabilityOptions:
    min_success_ratio: float | None = None
    """Overall ok / (ok + fail + info) of MOs below this makes the verdict false."""
    max_recovery_s: float | None = None
    """A fault whose time to recover (recover -> first ok) exceeds this makes the verdict false."""
    max_unavailable_s: float | None = None
    """A fault whose longest stretch without an ok exceeds this makes the verdict false."""
    max_rpo_msgs: int = 0
    """Acknowledged MOs a single failover may lose before the verdict is false."""
    failover_kinds: tuple[str, ...] = ()
    """Fault kinds that are failovers; empty means every kind whose name contains "failover"."""


class _Successes:
    """Successful MOs, for "first success among MOs invoked at or after t" in O(log n)."""

    def __init__(self, mos: list[Exchange]) -> None:
        oks = sorted((m.invoke_time, m.end_time) for m in mos if m.outcome == OK and m.end_time is not None)
        self.invoked = [invoked for invoked, _ in oks]
        # earliest completion among MOs invoked at or after position i
        self.first_done_from = list(accumulate(reversed([done for _, done in oks]), min))[::-1]
        self.done_sorted = sorted(done for _, done in oks)

    def first_after(self, when: int) -> int | None:
        position = bisect.bisect_left(self.invoked, when)
        return self.first_done_from[position] if position < len(self.invoked) else None

    def longest_gap(self, start: int, stop: int) -> tuple[int, int]:
        """The longest stretch within [start, stop] with no completed success: (from, to)."""
        lo = bisect.bisect_left(self.done_sorted, start)
        hi = bisect.bisect_right(self.done_sorted, stop)
        edges = [start, *self.done_sorted[lo:hi], stop]
        gaps = ((b - a, a, b) for a, b in pairwise(edges))
        _, begin, end = max(gaps)
        return begin, end


def check(
    history: RecordedHistory,
    snapshot: Snapshot,
    options: AvailabilityOptions | dict[str, Any] | None = None,
    *,
    analysis: Analysis | None = None,
) -> CheckResult:
    opts = parse_options(AvailabilityOptions, options, NAME)
    analysis = Analysis.of(history, snapshot, analysis)
    view = analysis.view
    mos = view.mos
    outcomes = Counter(m.outcome for m in mos)
    pending = sum(m.end_time is None for m in mos)
    completed = len(mos) - pending
    ratio = outcomes[OK] / len(mos) if mos else None  # an MO never completed counts as info

    successes = _Successes(mos)
    invoked = [m.invoke_time for m in mos]
    lost_acks = _lost_acknowledgements(analysis.inbound)
    examples = Examples()
    faults = []
    attributed = 0
    for fault in view.applied_faults:
        report = _fault_report(fault, view, mos, invoked, successes)
        if _is_failover(fault, opts):
            until = fault.until(view.history.end_time)
            lost_here = [t for t in lost_acks[attributed:] if t < until]
            attributed += len(lost_here)
            report["rpo_msgs"] = len(lost_here)
            report["rpo_window_s"] = round(max(0, fault.start - lost_here[0]) / NS_PER_S, 3) if lost_here else 0.0
        faults.append(report)

    quiescent = snapshot.quiescent
    recover_times = [f["time_to_recover_s"] for f in faults if f["time_to_recover_s"] is not None]
    gaps = [f["unavailable_s"] for f in faults]
    failovers = [f for f in faults if "rpo_msgs" in f]
    rpo_excess = [f for f in failovers if f["rpo_msgs"] > opts.max_rpo_msgs]
    unrecovered = [f for f in faults if f["never_recovered"]]
    late = opts.max_recovery_s
    slow = [f for f in faults if late is not None and (f["time_to_recover_s"] or 0) > late]
    # never recovered, though MOs were still being tried for longer than the bound allows
    given_up = [f for f in unrecovered if late is not None and f["tried_after_recover_s"] > late]
    long_gaps = [
        f for f in faults if opts.max_unavailable_s is not None and f["unavailable_s"] > opts.max_unavailable_s
    ]
    poor = opts.min_success_ratio is not None and ratio is not None and ratio < opts.min_success_ratio
    for kind, found in (("rpo", rpo_excess), ("slow_recovery", slow + given_up), ("unavailable", long_gaps)):
        for fault_report in found:
            examples.add(kind, **{k: v for k, v in fault_report.items() if k != "targets"})
    for fault_report in unrecovered:
        if fault_report not in given_up:
            examples.add("never_recovered", **{k: v for k, v in fault_report.items() if k != "targets"})

    valid = verdict(
        false_if=poor or bool(slow) or bool(given_up) or bool(long_gaps) or (quiescent and bool(rpo_excess)),
        unknown_if=completed == 0 or len(unrecovered) > len(given_up) or (not quiescent and bool(rpo_excess)),
    )
    counts: dict[str, int | float] = {
        "mos": len(mos),
        "ok": outcomes[OK],
        "fail": outcomes[FAIL],
        "info": outcomes[INFO],
        "pending": pending,
        "success_ratio": round(ratio, 6) if ratio is not None else 0.0,
        "faults": len(faults),
        "failovers": len(failovers),
        "never_recovered": len(unrecovered),
        "max_time_to_recover_s": max(recover_times, default=0.0),
        "max_unavailable_s": max(gaps, default=0.0),
        "rpo_msgs": sum(f["rpo_msgs"] for f in failovers),
    }
    return CheckResult(
        name=NAME,
        valid=valid,
        counts=counts,
        examples=examples.items,
        details={"per_second": _per_second(view, mos), "faults": faults, "quiescent": quiescent},
    )


def _is_failover(fault: Fault, opts: AvailabilityOptions) -> bool:
    return fault.kind in opts.failover_kinds if opts.failover_kinds else "failover" in fault.kind


def _lost_acknowledgements(matching: InboundMatching) -> list[int]:
    """Acknowledgement times of acknowledged MOs missing from msgs_msg, earliest first."""
    return sorted(
        m.mo.end_time for m in matching.others if m.mo.outcome == OK and not m.rows and m.mo.end_time is not None
    )


def _fault_report(
    fault: Fault, view: HistoryView, mos: list[Exchange], invoked: list[int], successes: _Successes
) -> dict[str, Any]:
    history_end = view.history.end_time
    first_ok = successes.first_after(fault.start)
    recovered_at = successes.first_after(fault.end) if fault.end is not None else None
    # The fault's effect is measured from its injection until service was seen again after its removal.
    stop = recovered_at or history_end
    gap_from, gap_to = successes.longest_gap(fault.start, max(stop, fault.start))
    # MOs are sorted by invocation, so the ones invoked within the window are a slice.
    first, last = bisect.bisect_left(invoked, fault.start), bisect.bisect_left(invoked, fault.until(history_end))
    during = Counter(m.outcome for m in mos[first:last])
    tried_after = fault.end is not None and invoked and invoked[-1] >= fault.end
    attempts = during[OK] + during[FAIL] + during[INFO]

    def seconds_since(origin: int, moment: int | None) -> float | None:
        return None if moment is None else round((moment - origin) / NS_PER_S, 3)

    return {
        "id": fault.id,
        "fault": fault.kind,
        "targets": fault.targets,
        "inject_outcome": fault.inject_outcome,
        "start_s": round(view.seconds(fault.start), 3),
        "end_s": None if fault.end is None else round(view.seconds(fault.end), 3),
        "first_ok_after_inject_s": seconds_since(fault.start, first_ok),
        "time_to_recover_s": seconds_since(fault.end, recovered_at) if fault.end is not None else None,
        "never_recovered": bool(tried_after) and recovered_at is None,
        "tried_after_recover_s": (
            round((invoked[-1] - fault.end) / NS_PER_S, 3) if tried_after and fault.end is not None else 0.0
        ),
        "unavailable_s": round((gap_to - gap_from) / NS_PER_S, 3),
        "unavailable_from_s": round(view.seconds(gap_from), 3),
        "ops_during": dict(during),
        "success_ratio_during": round(during[OK] / attempts, 6) if attempts else None,
    }


def _per_second(view: HistoryView, mos: list[Exchange]) -> list[list[int]]:
    """[second, ok, fail, info] for every second from the first completion to the last (by completion)."""
    buckets: dict[int, list[int]] = {}
    column = {OK: 1, FAIL: 2, INFO: 3}
    origin = view.origin
    for mo in mos:
        if mo.end_time is None:
            continue
        second = (mo.end_time - origin) // NS_PER_S
        row = buckets.get(second)
        if row is None:
            row = buckets[second] = [second, 0, 0, 0]
        row[column[mo.outcome]] += 1
    if not buckets:
        return []
    return [buckets.get(s, [s, 0, 0, 0]) for s in range(min(buckets), max(buckets) + 1)]
